"""Helpers for the photo verification tests: a fake of OpenAI's HTTP API on
loopback, photos made with Pillow, and a task with proof sent through the
real services."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from tasks import services
from tasks.models import PhotoCheck, Task, TaskPhoto
from tasks.photos import photo_add
from tests.tasks.factories import TaskFactory

EXIF_IFD = 0x8769
GPS_IFD = 0x8825

# --- Photos ---------------------------------------------------------------------


def tiles(seed: int, size: tuple[int, int] = (800, 600), tile: int = 80) -> Image.Image:
    """A synthetic photo of a tiled wall: tiles of random colours and a dark
    crack. Different seeds give different photos of the same kind of thing."""
    rnd = random.Random(seed)
    image = Image.new("RGB", size, (200, 200, 200))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], tile):
        for y in range(0, size[1], tile):
            draw.rectangle([x + 3, y + 3, x + tile - 3, y + tile - 3], fill=tuple(rnd.randint(90, 240) for _ in range(3)))
    draw.line([(rnd.randint(0, size[0]), rnd.randint(0, size[1])) for _ in range(5)], fill=(30, 30, 30), width=9)
    return image


def jpeg(image: Image.Image, *, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def resized_copy(image: Image.Image, *, scale: float = 0.5, quality: int = 60) -> bytes:
    """The same photo scaled and re-compressed, as a re-upload of a stock photo would be."""
    smaller = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BILINEAR)
    return jpeg(smaller, quality=quality)


def with_exif(image: Image.Image, *, taken: dt.datetime | None = None, place: tuple[float, float] | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if place is not None:
        lat, lon = place

        def dms(value: float) -> tuple[float, float, float]:
            value = abs(value)
            degrees = int(value)
            minutes = int((value - degrees) * 60)
            return (float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4))

        exif.get_ifd(GPS_IFD).update(
            {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
        )
    return jpeg(image, exif=exif)


def upload(content: bytes, name: str = "photo.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/jpeg")


# --- Tasks --------------------------------------------------------------------------


def task_in_progress(customer, contractor, *, before: list[bytes] | None = None, **fields) -> Task:
    """An in-progress task with its "before" photos stored through photo_add."""
    task = TaskFactory(customer=customer, contractor=contractor, in_progress=True, photos=0, **fields)
    for position, content in enumerate(before or []):
        photo_add(task, by=customer, upload=upload(content), kind=TaskPhoto.Kind.PROBLEM, position=position)
    return task


def submit_proof(task: Task, contractor, photos: list[bytes], note: str = "New cartridge fitted; no more drips.", *, capture):
    """Send proof through the real service and run what it queues after
    commit (the Celery task, eagerly). ``capture`` is pytest-django's
    django_capture_on_commit_callbacks fixture."""
    with capture(execute=True):
        proof = services.task_submit_proof(task, by=contractor, note=note, files=[upload(p) for p in photos])
    return proof


def check_of(proof) -> PhotoCheck:
    return PhotoCheck.objects.get(proof=proof)


# --- A fake of OpenAI's Chat Completions API ------------------------------------------


def verdict(**overrides: Any) -> dict[str, Any]:
    value = {
        "matches_task": True,
        "work_visible": True,
        "complete": True,
        "confidence": 0.93,
        "problems": [],
        "summary": "The tap is reassembled with a new cartridge and is not dripping.",
    }
    value.update(overrides)
    return value


def completion(content: str | None, *, refusal: str | None = None, finish_reason: str = "stop", model: str = "gpt-4o-2024-08-06") -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280},
    }


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    delay: float = 0.0


@dataclass
class FakeOpenAI:
    """Answers POST /v1/chat/completions with the next scripted Reply (the last
    one repeats) and records every request it got."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def _next(self) -> Reply:
        with self._lock:
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0]

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.requests.append(
                        {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": json.loads(raw or b"{}")}
                    )
                reply = fake._next()
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, (bytes, str)) else json.dumps(reply.body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def json_reply(content: dict | str, **kwargs: Any) -> Reply:
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(body=completion(text, **kwargs))

