"""Messaging pages: the inbox, a conversation (history, a plain HTML form that
works without JavaScript, search), the JSON catch-up the page's script uses
over HTTP, and attachment downloads.

Each view parses input, asks ``messaging.selectors`` who may see what
(``conversation_get_for_user``: participants, and staff with the
``messaging.view_conversation`` permission read-only; 404 for everyone else, so
a stranger cannot tell a conversation exists), calls one service, and renders.
A refusal (``ApplicationError``) re-renders the page with the error next to
the field and the service's status code; nothing was written.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from uuid import UUID

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.api import error_body
from core.errors import ApplicationError, NotFound
from core.errors import PermissionDenied as ServicePermissionDenied
from tasks import selectors as task_selectors

from . import selectors, services
from .forms import MessageForm, SearchForm, add_service_errors
from .models import Conversation, Message, ReadState

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
AFTER_LIMIT = 200
SEARCH_LIMIT = 50


# --- helpers -------------------------------------------------------------------------


def _conversation_for(request: HttpRequest, public_id: UUID) -> Conversation:
    try:
        return selectors.conversation_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _conversation_url(conversation: Conversation, *, anchor: int | None = None) -> str:
    url = reverse("messaging:conversation", args=[conversation.public_id])
    return f"{url}#m-{anchor}" if anchor else url


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _json_error(error: ApplicationError) -> JsonResponse:
    return JsonResponse(error_body(error.code, error.message, error.fields), status=error.status_code)


def _int_param(raw: str | None, *, name: str, default: int | None) -> int | None:
    """A non-negative integer query parameter; ApplicationError for anything else."""
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0 or value > 2**31:
        message = _("Expected a whole number of 0 or more.")
        raise ApplicationError(message, code="invalid", fields={name: [message]})
    return value


# A PING of the channel layer's Redis, remembered for a few seconds per process
# (in memory: the Django cache may live in the same Redis that is down).
_LIVE_TTL_SECONDS = 5.0
_live_lock = threading.Lock()
_live_cache: dict[tuple, tuple[float, bool]] = {}


def _layer_redis_urls() -> list[str]:
    config = settings.CHANNEL_LAYERS.get("default", {})
    # The Redis layers (channels-redis's and core.channel_layer's) have hosts;
    # the in-memory layer of `make run` has none.
    if not config.get("CONFIG", {}).get("hosts"):
        return []
    urls = []
    for host in config.get("CONFIG", {}).get("hosts", []):
        if isinstance(host, str):
            urls.append(host)
        elif isinstance(host, dict) and isinstance(host.get("address"), str):
            urls.append(host["address"])
        elif isinstance(host, (tuple, list)) and len(host) == 2:
            urls.append(f"redis://{host[0]}:{host[1]}/0")
    return urls


def live_updates_available() -> bool:
    """Whether the channel layer can carry live updates right now.

    The services save a message and then ring the channel layer, swallowing a
    failure (Redis down): the message is saved either way. The page tells the
    reader when the bell is broken ("Live updates are paused"), so they know to
    reload rather than wait.
    """
    urls = _layer_redis_urls()
    if not urls:
        return get_channel_layer() is not None
    key = tuple(urls)
    now = time.monotonic()
    with _live_lock:
        cached = _live_cache.get(key)
        if cached and now - cached[0] < _LIVE_TTL_SECONDS:
            return cached[1]
    ok = True
    for url in urls:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            client.ping()
        except Exception:  # noqa: BLE001 - any failure means "paused"
            logger.warning("live updates paused: channel layer Redis %s unreachable", url.split("@")[-1])
            ok = False
        finally:
            client.close()
    with _live_lock:
        _live_cache[key] = (now, ok)
    return ok


def _reset_live_cache() -> None:
    with _live_lock:
        _live_cache.clear()


# --- inbox and conversation ------------------------------------------------------------


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = request.user
    conversations = list(selectors.conversations_for_user(user))
    rows = [
        {
            "conversation": conversation,
            "other": conversation.other_party(user),
            "unread": getattr(conversation, "unread_count", 0) or 0,
            "last_body": getattr(conversation, "last_body", "") or "",
            "last_at": getattr(conversation, "last_at", None) or conversation.last_message_at,
        }
        for conversation in conversations
    ]
    return render(request, "messaging/inbox.html", {"rows": rows, "search_form": SearchForm()})


def _render_conversation(
    request: HttpRequest,
    conversation: Conversation,
    *,
    form: MessageForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    is_participant = conversation.is_participant(user)
    try:
        before = _int_param(request.GET.get("before"), name="before", default=None)
    except ApplicationError:
        before = None
    history = list(selectors.messages_page(conversation, before_seq=before, limit=PAGE_SIZE))
    latest_page = not history or history[-1].seq >= conversation.last_seq
    other = conversation.other_party(user) if is_participant else None
    other_read_seq = 0
    if is_participant:
        if latest_page and conversation.last_seq and status == 200 and request.method == "GET":
            # Opening the newest page is reading it (without JavaScript too); monotonic, so safe to repeat.
            try:
                services.message_mark_read(conversation, by=user, up_to_seq=conversation.last_seq)
            except ApplicationError:
                logger.info("could not mark %s read for %s", conversation.public_id, user.pk, exc_info=True)
        other_read_seq = (
            ReadState.objects.filter(conversation=conversation, user=other)
            .values_list("last_read_seq", flat=True)
            .first()
            or 0
        )
    # "Seen" sits under my message while it is the newest one.
    last_mine = history[-1].seq if history and history[-1].sender_id == user.pk else None
    context = {
        "conversation": conversation,
        "task": conversation.task,
        "other": other,
        "is_participant": is_participant,
        "history": history,
        "older_seq": history[0].seq if history and history[0].seq > 1 else None,
        "latest_page": latest_page,
        "last_seq": history[-1].seq if history else 0,
        "other_read_seq": other_read_seq,
        "seen_seq": last_mine if last_mine is not None and other_read_seq >= last_mine else None,
        "form": form or (MessageForm() if is_participant else None),
        "search_form": SearchForm(initial={"conversation": conversation.public_id}),
        "live": live_updates_available(),
        "max_attachment_mb": 10,
    }
    return render(request, "messaging/conversation.html", context, status=status)


@login_required
@require_GET
def conversation(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _render_conversation(request, _conversation_for(request, public_id))


@login_required
@require_POST
def send(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Post one message (and maybe a file) over HTTP: the page's form without
    JavaScript, and the script's fallback while the socket is down (it sends
    ``Accept: application/json`` and the same client id it would have used)."""
    conversation = _conversation_for(request, public_id)
    form = MessageForm(request.POST, request.FILES)
    as_json = _wants_json(request)
    if not conversation.is_participant(request.user):
        # Staff may read a conversation, never write in it.
        error = ServicePermissionDenied(_("Only the two people in this conversation can write in it."))
        if as_json:
            return _json_error(error)
        raise DjangoPermissionDenied(error.message)
    if form.is_valid():
        data = form.cleaned_data
        try:
            message, created = services.message_send(
                conversation,
                by=request.user,
                body=data["body"],
                client_id=data["client_id"],
                attachment=data["attachment"],
            )
        except ApplicationError as error:
            if as_json:
                return _json_error(error)
            add_service_errors(form, error)
            return _render_conversation(request, conversation, form=form, status=error.status_code)
        live = live_updates_available()
        if as_json:
            payload = {"message": services.message_payload(message), "created": created, "live": live}
            return JsonResponse(payload, status=201 if created else 200)
        if not live:
            messages.warning(
                request,
                _("Your message is saved. Live updates are paused, so %(name)s will see it when their page "
                  "reconnects or reloads.") % {"name": conversation.other_party(request.user).public_name},
            )
        return redirect(_conversation_url(conversation, anchor=message.seq))
    if as_json:
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        first = next(iter(fields.values()))[0]
        return JsonResponse(error_body("invalid", first, fields), status=400)
    if "client_id" in form.errors:
        # A page from an old or broken client: keep what was typed, with a fresh id to send it once.
        data = request.POST.copy()
        data["client_id"] = str(uuid.uuid4())
        form = MessageForm(data)
        form.is_valid()
        form.add_error(None, _("This page was out of date. Check your message and send it again."))
    return _render_conversation(request, conversation, form=form, status=400)


@login_required
@require_GET
def after(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """Everything after ``seq`` (up to 200), for the script to catch up over HTTP."""
    conversation = _conversation_for(request, public_id)
    try:
        after_seq = _int_param(request.GET.get("seq"), name="seq", default=0)
    except ApplicationError as error:
        return _json_error(error)
    found = selectors.messages_after(conversation, after_seq=after_seq, limit=AFTER_LIMIT)
    payload = [services.message_payload(message) for message in found]
    return JsonResponse(
        {"messages": payload, "last_seq": conversation.last_seq, "has_more": len(found) >= AFTER_LIMIT},
    )


@login_required
@require_POST
def read(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Mark read up to ``seq`` (JSON for the script; a redirect for a form)."""
    conversation = _conversation_for(request, public_id)
    try:
        seq = _int_param(request.POST.get("seq"), name="seq", default=conversation.last_seq)
        if not conversation.is_participant(request.user):
            raise ServicePermissionDenied(_("Only the two people in this conversation have read receipts."))
        state = services.message_mark_read(conversation, by=request.user, up_to_seq=seq)
    except ApplicationError as error:
        if _wants_json(request):
            return _json_error(error)
        if error.status_code == 403:
            raise DjangoPermissionDenied(error.message) from error
        messages.error(request, error.message)
        return redirect(_conversation_url(conversation))
    if _wants_json(request):
        return JsonResponse({"seq": state.last_read_seq})
    return redirect(_conversation_url(conversation))


# --- starting a conversation --------------------------------------------------------------


@login_required
@require_POST
def start(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Open (or find) the conversation about a task: a contractor with its
    customer, or the customer with ``contractor`` (a public id)."""
    try:
        task = task_selectors.task_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    contractor = None
    raw = request.POST.get("contractor", "").strip()
    if raw:
        try:
            contractor_id = uuid.UUID(raw)
        except ValueError as exc:
            raise Http404(_("No such person.")) from exc
        contractor = get_user_model().objects.filter(public_id=contractor_id, is_active=True).first()
        if contractor is None:
            raise Http404(_("No such person."))
    try:
        opened = services.conversation_open(task, by=request.user, contractor=contractor)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as error:
        if error.status_code == 403:
            raise DjangoPermissionDenied(error.message) from error
        messages.error(request, error.message)
        return redirect("tasks:detail", public_id=task.public_id)
    return redirect(_conversation_url(opened))


# --- search ------------------------------------------------------------------------


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Full-text search across my conversations, or within one (``conversation``)."""
    form = SearchForm(request.GET if "q" in request.GET else None)
    scope = None
    results: list = []
    if form.is_bound and form.is_valid():
        if form.cleaned_data.get("conversation"):
            scope = _conversation_for(request, form.cleaned_data["conversation"])
        results = list(selectors.search_messages(request.user, form.cleaned_data["q"], conversation=scope,
                                                 limit=SEARCH_LIMIT))
    elif form.is_bound and request.GET.get("conversation"):
        try:
            scope = _conversation_for(request, uuid.UUID(request.GET["conversation"]))
        except ValueError as exc:
            raise Http404 from exc
    rows = []
    for message in results:
        conv = message.conversation
        rows.append(
            {
                "message": message,
                "conversation": conv,
                "other": conv.other_party(request.user) if conv.is_participant(request.user) else None,
                "headline": getattr(message, "headline", "") or message.body,
                # The page of history that holds this message, scrolled to it.
                "url": f"{reverse('messaging:conversation', args=[conv.public_id])}"
                f"?before={message.seq + PAGE_SIZE // 2}#m-{message.seq}",
            }
        )
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(
        request, "messaging/search.html", {"form": form, "rows": rows, "scope": scope}, status=status
    )


# --- attachments -------------------------------------------------------------------


def _attachment_response(request: HttpRequest, public_id: UUID, *, thumb: bool) -> FileResponse:
    """Files come only through here (never a public media URL), and only to
    the conversation's participants and permitted staff; 404 to everyone else."""
    if not request.user.is_authenticated:
        raise Http404
    message = Message.objects.select_related("conversation").filter(public_id=public_id).first()
    if message is None:
        raise Http404
    _conversation_for(request, message.conversation.public_id)
    stored = message.attachment_thumbnail if thumb else message.attachment
    if not stored or not stored.name:
        raise Http404
    try:
        handle = stored.storage.open(stored.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    is_pdf = message.attachment_kind == Message.AttachmentKind.PDF and not thumb
    response = FileResponse(
        handle,
        content_type="application/pdf" if is_pdf else "image/jpeg",
        as_attachment=is_pdf,
        filename=message.attachment_name or ("document.pdf" if is_pdf else "photo.jpg"),
    )
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if is_pdf:
        # Opened from the chat, a PDF is downloaded, never rendered in our origin.
        response["Content-Security-Policy"] = "sandbox"
    return response


@require_GET
def attachment(request: HttpRequest, public_id: UUID) -> FileResponse:
    return _attachment_response(request, public_id, thumb=False)


@require_GET
def attachment_thumb(request: HttpRequest, public_id: UUID) -> FileResponse:
    return _attachment_response(request, public_id, thumb=True)
