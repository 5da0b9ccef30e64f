"""Chat delivery over WebSockets: send -> receipt latency at 1,000 and 5,000 sockets.

What runs: a real uvicorn (``marketplace.asgi:application``, one process,
``--ws-max-size 65536``, as the Dockerfile) on a free port, settings
``marketplace.settings`` on a SEPARATE PostgreSQL database (default
``bench_chat`` on the server of DATABASE_URL; created and migrated if missing,
flushed each run) and the Redis Pub/Sub channel layer on Redis db 15. Every
message goes through ConversationConsumer -> message_send (row lock, insert,
read state, notification) -> commit -> group_send -> the peer's socket.

This process holds the client sockets (``websockets``, deflate on as browsers
offer it), half of them customers and half contractors in 1:1 conversations,
each logged in through a real session row. Per size:

  - connect N sockets (100 handshakes at a time); server RSS before/after
    -> memory per open socket;
  - --rate messages/s for --seconds from random sockets; latency = the peer's
    receipt time - the send time (same clock); beside it, in the same run and
    at the same rate, a bare Redis PUBLISH -> subscriber round trip (the floor);
  - at the largest size (or --reconnect-size), a reconnect run: 10% of the clients drop their socket
    mid-run, come back after 0-1 s with ``resume`` and resend what was not
    acked. Afterwards every client must hold exactly seqs 1..last_seq of its
    conversation (gap check) and the database exactly one row per client id.

    .venv/bin/python bench/bench_chat.py                      # 1,000 then 5,000 sockets
    .venv/bin/python bench/bench_chat.py --sizes 1000,5000,10000 --reconnect-size 5000   # docs/PERFORMANCE.md
    .venv/bin/python bench/bench_chat.py --sizes 200 --seconds 5   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import os
import random
import resource
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn --workers N: the supervisor and its workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{p}/task/{p}/children").read_text().split():
                todo.append(int(child))
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of the server: the process and its children together."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process tree."""
    ticks = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def bench_db_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    if name.startswith("test") or parts.path.lstrip("/") == name:
        raise SystemExit(f"refusing to use database {name!r}")
    return urlunsplit(parts._replace(path="/" + name))


def ensure_database(db_url: str) -> None:
    import psycopg

    parts = urlsplit(db_url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


# --- Data --------------------------------------------------------------------------


def make_cast(pairs: int) -> list[tuple[str, str, str]]:
    """Flush the bench database and create ``pairs`` conversations, each with a
    customer and a contractor with a live session. Returns (conversation
    public_id, customer session key, contractor session key)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from messaging.models import Conversation
    from tests.factories import CategoryFactory
    from tests.tasks.factories import TaskFactory

    call_command("flush", interactive=False, verbosity=0)
    now = timezone.now()
    users = []
    for n in range(pairs * 2):
        user = User(
            email=f"bench{n}@example.com",
            full_name=f"Bench {n}",
            is_customer=n % 2 == 0,
            is_contractor=n % 2 == 1,
            email_verified_at=now,
        )
        user.set_unusable_password()
        users.append(user)
    users = User.objects.bulk_create(users, batch_size=1000)
    category = CategoryFactory(name="Plumbing", slug="plumbing")
    tasks = [TaskFactory.build(customer=users[2 * i], category=category) for i in range(pairs)]
    from tasks.models import Task

    Task.objects.bulk_create(tasks, batch_size=1000)
    conversations = Conversation.objects.bulk_create(
        [Conversation(task=tasks[i], customer=users[2 * i], contractor=users[2 * i + 1]) for i in range(pairs)],
        batch_size=1000,
    )
    store = SessionStore()
    sessions, keys = [], []
    for user in users:
        key = secrets.token_hex(16)
        data = {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=now + dt.timedelta(days=1)))
        keys.append(key)
    Session.objects.bulk_create(sessions, batch_size=1000)
    return [(str(conversations[i].public_id), keys[2 * i], keys[2 * i + 1]) for i in range(pairs)]


# --- Clients -----------------------------------------------------------------------


ALL_SENT: set[str] = set()  # client ids sent in every run of this process (each must be saved once)


class Stats:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.latency_ms: list[float] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.duplicate_frames = 0
        self.handshake_failures: collections.Counter[str] = collections.Counter()
        self.server_closes: collections.Counter[str] = collections.Counter()  # sockets the server closed, by code
        self.measuring = True


class ChatClient:
    def __init__(self, url: str, origin: str, session_key: str, conversation: str, stats: Stats) -> None:
        self.url = url
        self.origin = origin
        self.session_key = session_key
        self.conversation = conversation
        self.stats = stats
        self.seen: set[int] = set()
        self.last_seq = 0
        self.unacked: dict[str, str] = {}
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.own: set[str] = set()  # client ids this client sent

    async def connect(self) -> bool:
        from websockets.asyncio.client import connect

        try:
            self.ws = await connect(
                self.url,
                origin=self.origin,
                additional_headers={"Cookie": f"sessionid={self.session_key}"},
                open_timeout=120,
                ping_interval=None,
                proxy=None,
                max_queue=None,
            )
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.stats.handshake_failures[type(exc).__name__ + ": " + str(exc)[:60]] += 1
            self.ws = None
            return False
        await self.ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
        self.reader = asyncio.create_task(self._read())
        return True

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message":
                    message = frame["message"]
                    seq = message["seq"]
                    if seq in self.seen:
                        self.stats.duplicate_frames += 1
                        continue
                    self.seen.add(seq)
                    self.last_seq = max(self.last_seq, seq)
                    sent = self.stats.sent_at.get(message["client_id"])
                    # The peer's receipt; a sender's own echo is not a delivery.
                    if sent is not None and message["client_id"] not in self.own and self.stats.measuring:
                        self.stats.latency_ms.append((now - sent) * 1000)
                elif kind == "ack":
                    self.unacked.pop(frame["client_id"], None)
                elif kind == "error":
                    self.stats.errors[frame["code"]] += 1
        except Exception:  # noqa: BLE001, S110 - the socket closed (drop() cancels this task instead)
            pass
        # Closed, and not by drop(): by the server, or by close() at the end of a run.
        self.stats.server_closes[str(getattr(self.ws, "close_code", None))] += 1

    async def send(self, body: str, client_id: str | None = None) -> None:
        client_id = client_id or str(uuid.uuid4())
        self.unacked[client_id] = body
        self.own.add(client_id)
        self.stats.sent_at.setdefault(client_id, time.perf_counter())
        await self.ws.send(json.dumps({"type": "send", "client_id": client_id, "body": body}))

    async def drop(self) -> None:
        if self.ws is not None:
            self.ws.transport.abort()  # no close handshake: a train into a tunnel
        if self.reader is not None:
            self.reader.cancel()
        self.ws = None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def connect_all(clients: list[ChatClient], concurrency: int = 100) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(client: ChatClient) -> None:
        async with gate:
            await client.connect()

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clients))
    return time.perf_counter() - started


async def redis_floor(redis_url: str, rate: float, seconds: float) -> list[float]:
    """Bare PUBLISH -> subscriber round trips at ``rate``/s, in ms."""
    from redis import asyncio as aioredis

    channel = f"bench:floor:{uuid.uuid4().hex}"
    sub_client = aioredis.Redis.from_url(redis_url)
    pub_client = aioredis.Redis.from_url(redis_url)
    pubsub = sub_client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    results: list[float] = []

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                results.append((time.perf_counter() - float(message["data"])) * 1000)

    listener = asyncio.create_task(listen())
    start = time.perf_counter()
    for k in range(int(rate * seconds)):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub_client.publish(channel, repr(time.perf_counter()))
    await asyncio.sleep(1)
    listener.cancel()
    await pubsub.aclose()
    await sub_client.aclose()
    await pub_client.aclose()
    return results


async def drive(clients: list[ChatClient], rate: float, seconds: float, *, drops: list[ChatClient] | None = None) -> int:
    """Send ``rate`` messages/s from random connected sockets; with ``drops``,
    those clients lose their socket a third of the way in and come back."""
    start = time.perf_counter()
    total = int(rate * seconds)
    reconnects: list[asyncio.Task] = []

    async def bounce(client: ChatClient) -> None:
        await client.drop()
        await asyncio.sleep(random.uniform(0, 1))
        while not await client.connect():
            await asyncio.sleep(0.5)
        for client_id, body in list(client.unacked.items()):  # resend: saved once
            await client.ws.send(json.dumps({"type": "send", "client_id": client_id, "body": body}))

    for k in range(total):
        if drops and k == total // 3:
            reconnects = [asyncio.create_task(bounce(c)) for c in drops]
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for _attempt in range(20):
            client = random.choice(clients)
            if client.ws is not None:
                break
        # A socket that drops under us: the send stays unacked and is resent on reconnect.
        with contextlib.suppress(Exception):
            await client.send(f"bench message {k}")
    if reconnects:
        await asyncio.gather(*reconnects)
    return total


async def sample_redis_clients(redis_url: str, stop: asyncio.Event) -> int:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    peak = 0
    while not stop.is_set():
        info = await client.info("clients")
        peak = max(peak, int(info["connected_clients"]))
        await asyncio.sleep(0.05)
    await client.aclose()
    return peak


# --- Main --------------------------------------------------------------------------


def start_server(port: int, env: dict[str, str], workers: int = 1, ping_interval: float | None = None) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "marketplace.asgi:application",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--lifespan", "off",
            "--ws-max-size", "65536",
            "--no-access-log",
            "--log-level", "warning",
            *(["--workers", str(workers)] if workers > 1 else []),
            *(["--ws-ping-interval", str(ping_interval)] if ping_interval is not None else []),
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit("uvicorn did not start")


async def run_size(n: int, cast, port: int, redis_url: str, server_pid: int, args, *, reconnect: bool) -> dict:
    url_base = f"ws://127.0.0.1:{port}/ws/conversations/"
    origin = f"http://127.0.0.1:{port}"
    stats = Stats()
    clients: list[ChatClient] = []
    for conversation, customer_key, contractor_key in cast[: n // 2]:
        for key in (customer_key, contractor_key):
            clients.append(ChatClient(f"{url_base}{conversation}/", origin, key, conversation, stats))
    rss_before = rss_mb(server_pid)
    connect_s = await connect_all(clients)
    await asyncio.sleep(2)  # resume replies (history of earlier sizes) drain
    connected = sum(1 for c in clients if c.ws is not None)
    rss_after = rss_mb(server_pid)

    stats.sent_at.clear()
    print(f"... {connected} of {n} sockets open, sending", flush=True)
    load_before = loadavg()
    server_cpu, client_cpu = cpu_s(server_pid), own_cpu_s()
    floor_task = asyncio.create_task(redis_floor(redis_url, args.rate, args.seconds))
    started = time.perf_counter()
    sent = await drive(clients, args.rate, args.seconds)
    floor = await floor_task
    await drain(stats, sent, clients)
    delivered_by = time.perf_counter() - started
    server_cpu, client_cpu = cpu_s(server_pid) - server_cpu, own_cpu_s() - client_cpu
    result = {
        "sockets": n,
        "connected": connected,
        "connect_s": connect_s,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "kb_per_socket": (rss_after - rss_before) * 1024 / max(1, connected),
        "sent": sent,
        "received": len(stats.latency_ms),
        "delivered_per_s": len(stats.latency_ms) / delivered_by,
        "lat": stats.latency_ms,
        "floor": floor,
        "errors": dict(stats.errors),
        "handshake_failures": dict(stats.handshake_failures),
        # CPU per message sent, over the load phase (send -> last delivery):
        # the server's and this client process's, in ms.
        "server_cpu_ms": server_cpu * 1000 / max(1, sent),
        "client_cpu_ms": client_cpu * 1000 / max(1, sent),
        "load": f"{load_before} -> {loadavg()}",
    }
    if reconnect:
        result["reconnect_load_before"] = loadavg()
        stats.measuring = False
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_redis_clients(redis_url, stop))
        drops = random.sample(clients, max(1, n // 10))
        sent_before = len(stats.sent_at)
        await drive(clients, args.rate, args.seconds, drops=drops)
        await drain(stats, None, clients)
        stop.set()
        result["redis_clients_peak"] = await sampler
        result["reconnected"] = len(drops)
        result["reconnect_sent"] = len(stats.sent_at) - sent_before
        result["gap"] = await asyncio.to_thread(gap_check, clients, len(ALL_SENT | set(stats.sent_at)))
        result["duplicate_frames"] = stats.duplicate_frames
        result["reconnect_errors"] = dict(stats.errors)  # error frames of both phases
        result["unacked_at_check"] = sum(len(c.unacked) for c in clients)
        result["server_closes"] = dict(stats.server_closes)
        result["not_reconnected"] = sum(1 for c in drops if c.ws is None)
        result["handshake_failures"] = dict(stats.handshake_failures)
        result["reconnect_load_after"] = loadavg()
    ALL_SENT.update(stats.sent_at)
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    await asyncio.sleep(2)
    return result


async def drain(stats: Stats, sent: int | None, clients: list[ChatClient], timeout: float = 120) -> None:
    """Wait until every send is acked (and, with ``sent``, every delivery seen),
    at most ``timeout`` s: the server may be running behind the offered rate."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        pending = sum(len(c.unacked) for c in clients)
        if pending == 0 and (sent is None or len(stats.latency_ms) >= sent):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)


def gap_check(clients: list[ChatClient], distinct_sent: int) -> dict:
    from django.db import connection
    from django.db.models import Count, Max

    from messaging.models import Conversation, Message

    last = dict(Conversation.objects.values_list("public_id", "last_seq"))
    missing = extra = clients_with_gaps = 0
    for client in clients:
        expected = set(range(1, last[uuid.UUID(client.conversation)] + 1))
        lost = expected - client.seen
        missing += len(lost)
        extra += len(client.seen - expected)
        clients_with_gaps += bool(lost)
    per_conv = Message.objects.values("conversation").annotate(n=Count("id"), top=Max("seq"))
    seq_holes = sum(1 for row in per_conv if row["n"] != row["top"])
    saved = Message.objects.count()
    connection.close()
    return {
        "messages_missing_at_clients": missing,
        "unexpected_seqs": extra,
        "clients_with_gaps": clients_with_gaps,
        "conversations_with_seq_holes": seq_holes,
        "rows_saved": saved,
        "distinct_client_ids_sent": distinct_sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000", help="open sockets per run, comma-separated")
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per size")
    parser.add_argument("--db", default="bench_chat", help="database name on the server of DATABASE_URL")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (the Dockerfile runs 1)")
    parser.add_argument(
        "--ws-ping-interval",
        type=float,
        default=None,
        help="uvicorn's keepalive ping interval in s (default: uvicorn's 20, as the Dockerfile; 0 = no pings)",
    )
    parser.add_argument(
        "--reconnect-size", type=int, default=None, help="run the 10%% reconnect check at this size (default: the largest)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    reconnect_size = args.reconnect_size or max(sizes)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    db_url = bench_db_url(base, args.db)
    ensure_database(db_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "DATABASE_URL": db_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": args.redis_url,
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-use"),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CACHE_KEY_PREFIX": "bench",
        "CHANNEL_LAYER_PREFIX": "bench",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    cast = make_cast(max(sizes) // 2)
    port = free_port()
    server = start_server(port, env, args.workers, args.ws_ping_interval)
    try:
        results = []
        for n in sizes:
            results.append(
                asyncio.run(run_size(n, cast, port, args.redis_url, server.pid, args, reconnect=n == reconnect_size))
            )
            print(f"... {n} sockets done", flush=True)
        peak_rss = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print()
    print(
        f"bench_chat  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  {os.cpu_count()} CPUs  rate {args.rate:g}/s for"
        f" {args.seconds:g} s  uvicorn workers {args.workers}"
        f"{'' if args.ws_ping_interval is None else f'  ws ping interval {args.ws_ping_interval:g} s'}"
    )
    print(f"{'sockets':>8} {'conn':>6} {'sent':>6} {'recv':>6} {'recv/s':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f" | {'redis p50':>9} {'p95':>6} {'p99':>6} | {'KB/socket':>9} {'RSS MB':>7} {'connect s':>9}")
    for r in results:
        lat, floor = r["lat"], r["floor"]
        print(
            f"{r['sockets']:>8} {r['connected']:>6} {r['sent']:>6} {r['received']:>6} {r['delivered_per_s']:>6.0f} {pct(lat, 50):>8.1f} {pct(lat, 95):>8.1f}"
            f" {pct(lat, 99):>8.1f} {max(lat, default=float('nan')):>8.1f} | {pct(floor, 50):>9.2f} {pct(floor, 95):>6.2f}"
            f" {pct(floor, 99):>6.2f} | {r['kb_per_socket']:>9.1f} {r['rss_after_mb']:>7.0f} {r['connect_s']:>9.1f}"
        )
        print(
            f"         CPU per message: server {r['server_cpu_ms']:.1f} ms, bench client {r['client_cpu_ms']:.1f} ms;"
            f" load average {r['load']}"
        )
        if r["errors"] or r["handshake_failures"]:
            print(f"         errors: {r['errors']}  handshake failures: {r['handshake_failures']}")
    for last in results:
        if "gap" not in last:
            continue
        print(
            f"reconnect run at {last['sockets']} sockets: {last['reconnected']} clients dropped and resumed;"
            f" {last['reconnect_sent']} messages sent; peak Redis clients {last['redis_clients_peak']};"
            f" duplicate frames (dropped by the client by seq) {last['duplicate_frames']}"
        )
        print(f"gap check: {json.dumps(last['gap'])}")
        print(
            f"error frames (both phases): {last['reconnect_errors']}; sends still unacked at the check:"
            f" {last['unacked_at_check']}; handshake failures: {last['handshake_failures']}; sockets closed by the"
            f" server: {last['server_closes']}; dropped clients not reconnected: {last['not_reconnected']}"
        )
        print(f"load average during the reconnect run {last['reconnect_load_before']} -> {last['reconnect_load_after']}")
    print(f"server RSS at exit {peak_rss:.0f} MB")


if __name__ == "__main__":
    main()
