"""Every write to a dispute: open, evidence, respond, propose, accept/reject,
escalate, decide, and the deadline sweep.

Rules (issue 7, "Disputes"):

- Either party opens a dispute on submitted work, or on completed work until
  the payout hold ends (``escrow.payout_due_at``; without an escrow,
  ``completed_at + PAYMENTS_PAYOUT_HOLD_HOURS``). The task moves to
  ``disputed`` (``tasks.services.task_open_dispute``), the escrow is frozen
  (``payments.services.escrow_freeze``) so neither a release nor a payout
  happens while it is argued.
- The other side has 48 hours to respond; either side may propose a
  settlement (full refund, partial refund 1-99 % of the price, release) and the
  other may accept it, which settles the dispute. Not settled after 7 days, no
  response after 48 hours, or on request: mediation, where staff with
  ``reputation.decide_dispute`` decide with written reasons.
- Settling moves the money through ``payments.services`` only (release,
  refund, split), in the same transaction as the decision; the task is
  completed or cancelled by ``tasks.services.task_resolve_dispute``.

Locks: the task row first, then the dispute row (the same order as
``tasks.services``, which lock the task before anything else), then the
escrow (inside the payments services). Two admins deciding at once: the second
waits for the task lock, then finds the dispute resolved and gets a Conflict.
Every step appends a ``DisputeEvent`` and notifies both parties after commit
(``messaging.notifications.notify``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import user_require_verified
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from core.files import atomic_with_files, file_stored
from core.images import ImageRejected, clean_image
from messaging.notifications import notify
from payments.models import Chargeback, Escrow
from tasks import services as task_services
from tasks.models import Task

from .dispute_models import (
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_PHOTOS,
    MAX_TEXT_CHARS,
    MIN_TEXT_CHARS,
    Dispute,
    DisputeEvent,
    DisputeEvidence,
    DisputeProposal,
)

logger = logging.getLogger(__name__)

RESPONSE_WINDOW = dt.timedelta(hours=48)
MEDIATION_AFTER = dt.timedelta(days=7)
MIN_DECISION_REASON_CHARS = 20
DECIDE_PERMISSION = "reputation.decide_dispute"

DS = Dispute.Status
EV = DisputeEvent.Kind
PK = DisputeProposal.Kind
PS = DisputeProposal.Status
TS = Task.Status
ES = Escrow.Status

# Escrows whose money a dispute can still reach.
LIVE_ESCROW = (ES.HELD, ES.RELEASED, ES.FROZEN)


# --- helpers ---------------------------------------------------------------------


def _invalid(fields: dict[str, list[str]]) -> ApplicationError:
    first = next(iter(fields.values()))[0]
    return ApplicationError(first, code="invalid", fields=fields)


def payout_hold() -> dt.timedelta:
    return dt.timedelta(hours=int(getattr(settings, "PAYMENTS_PAYOUT_HOLD_HOURS", 72)))


def _lock_task(task_pk: int) -> Task:
    task = Task.objects.select_for_update(no_key=True).filter(pk=task_pk).first()
    if task is None:
        raise NotFound(_("This task no longer exists."))
    return task


def _lock(dispute: Dispute) -> Dispute:
    """Task row, then dispute row, both locked for the rest of the transaction."""
    _lock_task(dispute.task_id)
    locked = Dispute.objects.select_for_update(no_key=True).select_related("task", "opened_by", "against").filter(
        pk=dispute.pk
    ).first()
    if locked is None:
        raise NotFound(_("This dispute no longer exists."))
    return locked


def _require_party(dispute: Dispute, by: User) -> None:
    if by.pk not in dispute.party_ids():
        # Strangers learn nothing: the same answer as a dispute that doesn't exist.
        raise NotFound(_("No such dispute."))


def _require_open(dispute: Dispute) -> None:
    if dispute.status == DS.RESOLVED:
        raise Conflict(_("This dispute has already been resolved."), code="dispute_resolved")


def _other(dispute: Dispute, by: User) -> User:
    return dispute.against if by.pk == dispute.opened_by_id else dispute.opened_by


def _clean_text(value: Any, field: str, *, minimum: int = 0, what: str = "") -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise _invalid({field: [_("Enter text.")]})
    if minimum and len(text) < minimum:
        raise _invalid(
            {field: [_("%(what)s (at least %(n)d characters).") % {"what": what, "n": minimum}]}
        )
    if len(text) > MAX_TEXT_CHARS:
        raise _invalid({field: [_("Use at most %(n)d characters.") % {"n": MAX_TEXT_CHARS}]})
    return text


def _event(dispute: Dispute, kind: str, actor: User | None, message: str = "", **data: Any) -> DisputeEvent:
    return DisputeEvent.objects.create(dispute=dispute, kind=kind, actor=actor, message=message, data=data)


def dispute_url(dispute: Dispute) -> str:
    return reverse("disputes:detail", kwargs={"public_id": dispute.public_id})


def _notify_parties(dispute: Dispute, event: DisputeEvent, title: str, body: str = "", *, skip: User | None = None):
    """Tell both sides (except ``skip``, the one who acted) what happened."""
    for user in (dispute.opened_by, dispute.against):
        if skip is not None and user.pk == skip.pk:
            continue
        notify(
            user,
            kind="task_update",
            title=title,
            body=body,
            url=dispute_url(dispute),
            task=dispute.task,
            dedupe_key=f"dispute:{dispute.public_id}:{event.pk}",
        )


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return ""
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}"


def _live_escrow(task: Task, *, lock: bool = False) -> Escrow | None:
    qs = Escrow.objects.filter(task=task, status__in=LIVE_ESCROW).order_by("-pk")
    if lock:
        qs = qs.select_for_update(no_key=True)
    return qs.first()


def _price_cents(dispute: Dispute) -> int:
    if dispute.escrow_id is not None:
        return dispute.escrow.price_cents
    return dispute.task.agreed_price_cents or 0


def _total_cents(dispute: Dispute) -> int:
    if dispute.escrow_id is not None:
        return dispute.escrow.total_cents
    return dispute.task.agreed_price_cents or 0


def split_for_percent(price_cents: int, percent: int) -> tuple[int, int]:
    """A partial refund of ``percent`` % of the price: (contractor, refunded
    price) cents. The refunded part is rounded half up to the cent; the
    contractor gets the rest, so the two always add up to the price."""
    refunded = (price_cents * percent + 50) // 100
    return price_cents - refunded, refunded


def refund_for(dispute: Dispute, contractor_cents: int) -> int:
    """What the customer gets back when the contractor gets ``contractor_cents``
    of the price: everything they paid (price and service fee) minus that."""
    return _total_cents(dispute) - contractor_cents


# --- open ------------------------------------------------------------------------


def _window_closed() -> Conflict:
    return Conflict(
        _(
            "The time to open a dispute has passed: disputes can be opened while the work waits for approval, "
            "or after approval until the payout is made (%(hours)d hours). Contact support if something is wrong."
        )
        % {"hours": int(payout_hold().total_seconds() // 3600)},
        code="dispute_window_closed",
    )


def _check_window(task: Task, escrow: Escrow | None, now: dt.datetime) -> None:
    if task.status == TS.SUBMITTED:
        return
    if task.status != TS.COMPLETED:
        raise Conflict(
            _("Only work that was submitted or completed can be disputed; this task is %(status)s.")
            % {"status": task.get_status_display().lower()},
            code="not_disputable",
        )
    if escrow is None:
        if task.completed_at is None or task.completed_at + payout_hold() <= now:
            raise _window_closed()
        return
    due = escrow.payout_due_at
    if escrow.status != ES.RELEASED or due is None or due <= now:
        raise _window_closed()
    payout = getattr(escrow, "payout", None)
    if payout is not None and payout.status == payout.Status.PAID:
        raise _window_closed()


def dispute_window_open(task: Task, *, now: dt.datetime | None = None) -> bool:
    """May this task be disputed now (for showing the button; the service decides)?"""
    try:
        _check_window(task, _live_escrow(task), now or timezone.now())
    except Conflict:
        return False
    return True


def _store_photos(dispute: Dispute, by: User, photos: Sequence[Any], *, field: str = "photos") -> list[DisputeEvidence]:
    """Check every photo first (nothing is stored if one is bad), then store them."""
    photos = [p for p in (photos or []) if p]
    if len(photos) > MAX_EVIDENCE_PHOTOS:
        raise _invalid({field: [_("Attach at most %(n)d photos.") % {"n": MAX_EVIDENCE_PHOTOS}]})
    cleaned = []
    for upload in photos:
        try:
            cleaned.append(clean_image(upload, max_bytes=MAX_EVIDENCE_BYTES))
        except ImageRejected as exc:
            raise _invalid({field: [str(exc)]}) from exc
    rows = []
    for image in cleaned:
        row = DisputeEvidence(dispute=dispute, by=by, width=image.width, height=image.height)
        row.photo.save("evidence.jpg", ContentFile(image.content.read()), save=False)
        file_stored(row.photo)
        row.save()
        rows.append(row)
    return rows


def _validate_photos_early(photos: Sequence[Any], field: str = "photos") -> None:
    if len([p for p in (photos or []) if p]) > MAX_EVIDENCE_PHOTOS:
        raise _invalid({field: [_("Attach at most %(n)d photos.") % {"n": MAX_EVIDENCE_PHOTOS}]})


@atomic_with_files()
def dispute_open(
    task: Task, *, by: User, reason: str, text: str, evidence: Sequence[Any] = ()
) -> Dispute:
    """Open a dispute on ``task`` as its customer or assigned contractor.

    Locks the task (then the escrow, inside ``escrow_freeze``). Refuses:
    strangers (NotFound), unverified users, tasks that are not submitted or
    completed, completed tasks whose payout hold has ended
    (``dispute_window_closed``), a second open dispute (``dispute_exists``),
    and bad input (400 with ``fields``). ``evidence`` is a list of photo
    uploads, checked by content. Notifies the other side.
    """
    user_require_verified(by)
    task = _lock_task(task.pk)
    if by.pk not in (task.customer_id, task.contractor_id) or task.contractor_id is None:
        raise NotFound(_("No such task."))
    fields: dict[str, list[str]] = {}
    if reason not in Dispute.Reason.values:
        fields["reason"] = [_("Choose what the dispute is about.")]
    try:
        text = _clean_text(text, "text", minimum=MIN_TEXT_CHARS, what=_("Say what went wrong"))
    except ApplicationError as exc:
        fields.update(exc.fields)
    try:
        _validate_photos_early(evidence)
    except ApplicationError as exc:
        fields.update(exc.fields)
    if fields:
        raise _invalid(fields)
    if Dispute.objects.filter(task=task, status__in=Dispute.OPEN_STATUSES).exists():
        raise Conflict(_("There is already an open dispute on this task."), code="dispute_exists")
    now = timezone.now()
    escrow = _live_escrow(task, lock=True)
    if escrow is not None and escrow.status == ES.FROZEN:
        raise Conflict(
            _("This payment is already on hold for a bank dispute; contact support."), code="payment_frozen"
        )
    _check_window(task, escrow, now)

    task_status = task.status
    task_services.task_open_dispute(task, by=by)
    against = task.contractor if by.pk == task.customer_id else task.customer
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                task=task,
                escrow=escrow,
                opened_by=by,
                against=against,
                reason=reason,
                text=text,
                task_status_at_open=task_status,
                currency=escrow.currency if escrow else task.currency,
                response_due_at=now + RESPONSE_WINDOW,
                mediation_due_at=now + MEDIATION_AFTER,
            )
    except IntegrityError as exc:  # an open dispute raced in (the task lock makes this rare)
        raise Conflict(_("There is already an open dispute on this task."), code="dispute_exists") from exc
    photos = _store_photos(dispute, by, evidence)
    if escrow is not None:
        # The system freezes (parties are not staff): no release, refund or
        # payout moves this money until the dispute is settled.
        _payments().escrow_freeze(escrow, reason=f"dispute {dispute.public_id}", by=None)
    event = _event(
        dispute,
        EV.OPENED,
        by,
        text,
        reason=reason,
        photos=[str(p.public_id) for p in photos],
        task_status=task_status,
    )
    _notify_parties(
        dispute,
        event,
        _("A dispute was opened on “%(title)s”") % {"title": task.title},
        _("%(name)s opened a dispute. The money stays on hold. Respond by %(due)s, or an admin will mediate.")
        % {"name": by.full_name or by.email, "due": timezone.localtime(dispute.response_due_at).strftime("%a %d %b %H:%M")},
    )
    return dispute


def _payments():
    # Imported when used: payments.services is written alongside this module
    # (issue 4) and imports tasks; importing it lazily keeps app loading simple.
    from payments import services

    return services


# --- evidence, response, proposals --------------------------------------------------


@atomic_with_files()
def dispute_add_evidence(dispute: Dispute, *, by: User, text: str = "", photos: Sequence[Any] = ()) -> list[DisputeEvidence]:
    """A party adds text and/or photos while the dispute is open."""
    user_require_verified(by)
    dispute = _lock(dispute)
    _require_party(dispute, by)
    _require_open(dispute)
    text = _clean_text(text, "text")
    _validate_photos_early(photos)
    if not text and not [p for p in (photos or []) if p]:
        raise _invalid({"text": [_("Write something or attach a photo.")]})
    rows = []
    if text:
        rows.append(DisputeEvidence.objects.create(dispute=dispute, by=by, text=text))
    rows.extend(_store_photos(dispute, by, photos))
    event = _event(dispute, EV.EVIDENCE, by, text, evidence=[str(r.public_id) for r in rows])
    _notify_parties(
        dispute,
        event,
        _("New evidence in the dispute on “%(title)s”") % {"title": dispute.task.title},
        skip=by,
    )
    return rows


def _mark_responded(dispute: Dispute, now: dt.datetime) -> None:
    if dispute.status == DS.AWAITING_RESPONSE:
        dispute.status = DS.NEGOTIATING
        dispute.responded_at = now
        dispute.save(update_fields=["status", "responded_at", "updated_at"])


def _require_response_window(dispute: Dispute, now: dt.datetime) -> None:
    if dispute.status == DS.AWAITING_RESPONSE and dispute.response_due_at <= now:
        raise Conflict(
            _("The 48 hours to respond have passed; an admin will mediate. You can still add evidence."),
            code="response_window_closed",
        )


@atomic_with_files()
def dispute_respond(
    dispute: Dispute,
    *,
    by: User,
    text: str,
    photos: Sequence[Any] = (),
    proposal_kind: str = "",
    percent: Any = None,
) -> Dispute:
    """The other side answers within 48 hours, optionally with photos and a
    settlement proposal. The dispute moves to negotiating."""
    user_require_verified(by)
    dispute = _lock(dispute)
    _require_party(dispute, by)
    _require_open(dispute)
    if by.pk != dispute.against_id:
        raise PermissionDenied(_("Only the other side responds to a dispute."), code="not_respondent")
    if dispute.status != DS.AWAITING_RESPONSE:
        raise Conflict(_("You have already responded to this dispute."), code="already_responded")
    now = timezone.now()
    _require_response_window(dispute, now)
    fields: dict[str, list[str]] = {}
    try:
        text = _clean_text(text, "text", minimum=MIN_TEXT_CHARS, what=_("Give your side"))
    except ApplicationError as exc:
        fields.update(exc.fields)
    try:
        _validate_photos_early(photos)
    except ApplicationError as exc:
        fields.update(exc.fields)
    terms = None
    if proposal_kind:
        try:
            terms = _proposal_terms(dispute, proposal_kind, percent)
        except ApplicationError as exc:
            fields.update(exc.fields)
    if fields:
        raise _invalid(fields)
    rows = _store_photos(dispute, by, photos)
    _mark_responded(dispute, now)
    event = _event(dispute, EV.RESPONDED, by, text, photos=[str(r.public_id) for r in rows])
    if terms is not None:
        _create_proposal(dispute, by, terms, message="")
    _notify_parties(
        dispute,
        event,
        _("%(name)s responded to the dispute on “%(title)s”")
        % {"name": by.full_name or by.email, "title": dispute.task.title},
        skip=by,
    )
    return dispute


def _proposal_terms(dispute: Dispute, kind: Any, percent: Any) -> dict[str, Any]:
    if kind not in PK.values:
        raise _invalid({"kind": [_("Choose a full refund, a partial refund or full payment.")]})
    price = _price_cents(dispute)
    if kind == PK.PARTIAL_REFUND:
        value = percent
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
            raise _invalid({"percent": [_("A partial refund is a whole percentage from 1 to 99.")]})
        contractor, _refunded_price = split_for_percent(price, value)
        return {"kind": kind, "percent": value, "contractor_cents": contractor}
    if percent not in (None, ""):
        raise _invalid({"percent": [_("A percentage goes only with a partial refund.")]})
    contractor = 0 if kind == PK.FULL_REFUND else price
    return {"kind": kind, "percent": None, "contractor_cents": contractor}


def _create_proposal(dispute: Dispute, by: User, terms: dict[str, Any], *, message: str) -> DisputeProposal:
    now = timezone.now()
    superseded = list(
        DisputeProposal.objects.select_for_update(no_key=True).filter(dispute=dispute, status=PS.OPEN).values_list("pk", flat=True)
    )
    if superseded:
        DisputeProposal.objects.filter(pk__in=superseded).update(status=PS.SUPERSEDED, decided_at=now)
    proposal = DisputeProposal.objects.create(
        dispute=dispute,
        by=by,
        kind=terms["kind"],
        percent=terms["percent"],
        contractor_cents=terms["contractor_cents"],
        refund_cents=refund_for(dispute, terms["contractor_cents"]),
        message=message,
    )
    event = _event(
        dispute,
        EV.PROPOSED,
        by,
        message,
        proposal=str(proposal.public_id),
        proposal_kind=proposal.kind,
        percent=proposal.percent,
        contractor_cents=proposal.contractor_cents,
        refund_cents=proposal.refund_cents,
        superseded=len(superseded),
    )
    _notify_parties(
        dispute,
        event,
        _("New settlement proposal on “%(title)s”: %(terms)s")
        % {"title": dispute.task.title, "terms": proposal_summary(proposal, dispute.currency)},
        skip=by,
    )
    return proposal


def proposal_summary(proposal: DisputeProposal, currency: str = "USD") -> str:
    if proposal.kind == PK.FULL_REFUND:
        return _("full refund of %(refund)s") % {"refund": money(proposal.refund_cents, currency)}
    if proposal.kind == PK.RELEASE:
        return _("pay the contractor in full (%(amount)s)") % {"amount": money(proposal.contractor_cents, currency)}
    return _("refund %(percent)d%% of the price: %(refund)s back, %(amount)s to the contractor") % {
        "percent": proposal.percent,
        "refund": money(proposal.refund_cents, currency),
        "amount": money(proposal.contractor_cents, currency),
    }


@transaction.atomic
def dispute_propose(
    dispute: Dispute, *, by: User, kind: str, percent: Any = None, message: str = ""
) -> DisputeProposal:
    """Either party puts a settlement on the table; it replaces the open one.
    From the other side while awaiting a response, it counts as the response."""
    user_require_verified(by)
    dispute = _lock(dispute)
    _require_party(dispute, by)
    _require_open(dispute)
    now = timezone.now()
    if by.pk == dispute.against_id:
        _require_response_window(dispute, now)
    fields: dict[str, list[str]] = {}
    terms = None
    try:
        terms = _proposal_terms(dispute, kind, percent)
    except ApplicationError as exc:
        fields.update(exc.fields)
    try:
        message = _clean_text(message, "message")
    except ApplicationError as exc:
        fields.update(exc.fields)
    if fields or terms is None:
        raise _invalid(fields)
    if by.pk == dispute.against_id:
        _mark_responded(dispute, now)
    return _create_proposal(dispute, by, terms, message=message)


def _lock_proposal(proposal: DisputeProposal, by: User) -> tuple[Dispute, DisputeProposal]:
    dispute = _lock(proposal.dispute)
    _require_party(dispute, by)
    locked = DisputeProposal.objects.select_for_update(no_key=True).get(pk=proposal.pk)
    if locked.status != PS.OPEN:
        raise Conflict(
            _("This proposal is no longer open (%(status)s).") % {"status": locked.get_status_display().lower()},
            code="proposal_closed",
        )
    if locked.by_id == by.pk:
        raise PermissionDenied(_("The other side accepts or rejects your proposal."), code="own_proposal")
    return dispute, locked


@transaction.atomic
def dispute_reject_proposal(proposal: DisputeProposal, *, by: User, message: str = "") -> DisputeProposal:
    user_require_verified(by)
    dispute, proposal = _lock_proposal(proposal, by)
    _require_open(dispute)
    message = _clean_text(message, "message")
    proposal.status = PS.REJECTED
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decided_at"])
    _mark_responded(dispute, proposal.decided_at)
    event = _event(dispute, EV.PROPOSAL_REJECTED, by, message, proposal=str(proposal.public_id))
    _notify_parties(
        dispute, event, _("Your proposal on “%(title)s” was rejected") % {"title": dispute.task.title}, skip=by
    )
    return proposal


@transaction.atomic
def dispute_accept_proposal(proposal: DisputeProposal, *, by: User) -> Dispute:
    """The other party accepts an open proposal: the dispute is resolved and
    the money moves as proposed, in this transaction."""
    user_require_verified(by)
    dispute, proposal = _lock_proposal(proposal, by)
    _require_open(dispute)
    now = timezone.now()
    proposal.status = PS.ACCEPTED
    proposal.decided_at = now
    proposal.save(update_fields=["status", "decided_at"])
    outcome = {PK.FULL_REFUND: "refund", PK.RELEASE: "release", PK.PARTIAL_REFUND: "split"}[proposal.kind]
    event = _event(dispute, EV.PROPOSAL_ACCEPTED, by, proposal=str(proposal.public_id), outcome=outcome)
    _settle(
        dispute,
        outcome=outcome,
        contractor_cents=proposal.contractor_cents,
        by=by,
        now=now,
        decided_by=None,
        reason=_("Settled by agreement: %(terms)s.") % {"terms": proposal_summary(proposal, dispute.currency)},
        proposal=proposal,
        event=event,
    )
    return dispute


# --- escalation and decision ---------------------------------------------------------


def _escalate(dispute: Dispute, *, by: User | None, why: str, now: dt.datetime) -> DisputeEvent:
    dispute.status = DS.MEDIATION
    dispute.escalated_at = now
    dispute.escalated_by = by
    dispute.escalation_reason = why
    dispute.save(update_fields=["status", "escalated_at", "escalated_by", "escalation_reason", "updated_at"])
    messages = {
        "requested": _("Mediation was requested."),
        "no_response": _("No response within 48 hours."),
        "timeout": _("Not settled within 7 days."),
    }
    event = _event(dispute, EV.ESCALATED, by, messages[why], why=why)
    _notify_parties(
        dispute,
        event,
        _("The dispute on “%(title)s” is with an admin now") % {"title": dispute.task.title},
        _("%(why)s An admin will read the evidence and the chat and decide.") % {"why": messages[why]},
    )
    return event


@transaction.atomic
def dispute_escalate(dispute: Dispute, *, by: User) -> Dispute:
    """A party asks for an admin to mediate."""
    user_require_verified(by)
    dispute = _lock(dispute)
    _require_party(dispute, by)
    _require_open(dispute)
    if dispute.status == DS.MEDIATION:
        raise Conflict(_("This dispute is already with an admin."), code="already_in_mediation")
    _escalate(dispute, by=by, why="requested", now=timezone.now())
    return dispute


def can_decide(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
        and user.has_perm(DECIDE_PERMISSION)
    )


def _as_cents(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


@transaction.atomic
def dispute_decide(
    dispute: Dispute, *, by: User, outcome: str, contractor_cents: Any = None, reason: str
) -> Dispute:
    """Staff with ``reputation.decide_dispute`` decide a dispute in mediation.

    ``outcome``: "release" (the contractor gets the whole price), "refund"
    (the customer gets everything back) or "split" (``contractor_cents`` of
    the price to the contractor, 1 cent to price-1, the rest refunded). A
    written reason is required. Locks the task then the dispute, so of two
    admins deciding at once one decides and the other gets
    ``Conflict(code="dispute_resolved")``.
    """
    if not can_decide(by):
        raise PermissionDenied(_("Only staff allowed to decide disputes can do that."), code="cannot_decide")
    dispute = _lock(dispute)
    _require_open(dispute)
    if dispute.status != DS.MEDIATION:
        raise Conflict(
            _("This dispute is not in mediation; the parties still have time to settle it."),
            code="not_in_mediation",
        )
    price = _price_cents(dispute)
    fields: dict[str, list[str]] = {}
    cents = None
    if outcome not in Dispute.Outcome.values:
        fields["outcome"] = [_("Choose release, refund or split.")]
    elif outcome == "split":
        cents = _as_cents(contractor_cents)
        if cents is None or not 1 <= cents <= price - 1:
            fields["contractor_cents"] = [
                _("A split gives the contractor between 1 and %(max)d cents of the %(price)s price.")
                % {"max": price - 1, "price": money(price, dispute.currency)}
            ]
    elif contractor_cents not in (None, ""):
        expected = price if outcome == "release" else 0
        if _as_cents(contractor_cents) != expected:
            fields["contractor_cents"] = [
                _("A %(outcome)s gives the contractor %(cents)d cents; leave it empty or use a split.")
                % {"outcome": outcome, "cents": expected}
            ]
    try:
        reason = _clean_text(
            reason, "reason", minimum=MIN_DECISION_REASON_CHARS, what=_("Write the reasons for the decision")
        )
    except ApplicationError as exc:
        fields.update(exc.fields)
    if fields:
        raise _invalid(fields)
    if outcome == "release":
        cents = price
    elif outcome == "refund":
        cents = 0
    now = timezone.now()
    DisputeProposal.objects.filter(dispute=dispute, status=PS.OPEN).update(status=PS.SUPERSEDED, decided_at=now)
    event = _event(dispute, EV.DECIDED, by, reason, outcome=outcome, contractor_cents=cents)
    _settle(
        dispute,
        outcome=outcome,
        contractor_cents=cents,
        by=by,
        now=now,
        decided_by=by,
        reason=reason,
        proposal=None,
        event=event,
    )
    return dispute


def _move_money(dispute: Dispute, *, outcome: str, contractor_cents: int, by: User | None) -> int:
    """Unfreeze the escrow and settle it through payments.services; return
    the cents refunded to the customer (read back from the escrow).

    The payments services accept the system (``by=None``) or staff: a
    settlement the parties agreed is made by the system, an admin's decision
    in the admin's name."""
    if dispute.escrow_id is None:
        return refund_for(dispute, contractor_cents)
    payments = _payments()
    actor = by if by is not None and by.is_staff else None
    escrow = Escrow.objects.get(pk=dispute.escrow_id)
    refunded_before = escrow.refunded_cents
    if escrow.status == ES.CHARGEBACK:
        return 0  # the customer's bank took the money back (a lost chargeback): nothing left to move
    if Chargeback.objects.filter(escrow=escrow, status=Chargeback.Status.OPEN).exists():
        # The bank is deciding who gets this money: a refund now would pay the
        # customer twice if the bank sides with them (and Stripe refuses to
        # refund a disputed charge); a release would pay out money the bank
        # may take back. The dispute waits for the bank's decision.
        raise Conflict(
            _(
                "The customer's bank is disputing this payment (a chargeback). This dispute can be settled "
                "once the bank has decided."
            ),
            code="chargeback_open",
        )
    memo = f"dispute {dispute.public_id}: {outcome}"
    if escrow.status == ES.FROZEN:
        escrow = payments.escrow_unfreeze(escrow, by=actor, reason=memo)
    if outcome == "release":
        if escrow.status == ES.HELD:
            escrow = payments.escrow_release(escrow, by=actor)
        # Already released (disputed after approval): unfrozen, its payout goes on.
    elif outcome == "refund":
        escrow = payments.escrow_refund(escrow, reason=memo, by=actor)
    else:
        escrow = payments.escrow_split(escrow, contractor_cents=contractor_cents, reason=memo, by=actor)
    escrow.refresh_from_db()
    return escrow.refunded_cents - refunded_before


def _settle(
    dispute: Dispute,
    *,
    outcome: str,
    contractor_cents: int,
    by: User | None,
    now: dt.datetime,
    decided_by: User | None,
    reason: str,
    proposal: DisputeProposal | None,
    event: DisputeEvent,
) -> None:
    refunded = _move_money(dispute, outcome=outcome, contractor_cents=contractor_cents, by=decided_by)
    dispute.status = DS.RESOLVED
    dispute.outcome = outcome
    dispute.contractor_cents = contractor_cents
    dispute.refund_cents = refunded
    dispute.decided_by = decided_by
    dispute.decision_reason = reason
    dispute.decided_at = now
    dispute.settled_by_proposal = proposal
    dispute.save(
        update_fields=[
            "status",
            "outcome",
            "contractor_cents",
            "refund_cents",
            "decided_by",
            "decision_reason",
            "decided_at",
            "settled_by_proposal",
            "updated_at",
        ]
    )
    task_services.task_resolve_dispute(dispute.task, outcome=outcome, by=decided_by or by)
    if dispute.escrow_id:
        _event(dispute, EV.MONEY_MOVED, None, contractor_cents=contractor_cents, refund_cents=dispute.refund_cents)
    labels = {
        "release": _("The contractor is paid in full (%(amount)s of the price)."),
        "refund": _("The customer gets %(refund)s back; the contractor gets nothing."),
        "split": _("The contractor gets %(amount)s of the price; the customer gets %(refund)s back."),
    }
    body = labels[outcome] % {
        "amount": money(contractor_cents, dispute.currency),
        "refund": money(dispute.refund_cents, dispute.currency),
    }
    _notify_parties(
        dispute,
        event,
        _("The dispute on “%(title)s” is resolved") % {"title": dispute.task.title},
        f"{body} {reason}",
    )


# --- deadlines -----------------------------------------------------------------------


def dispute_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send disputes past a deadline to mediation: no response within 48 hours,
    or not settled within 7 days. Run every minute by beat
    (``reputation.sweep_disputes``). Each dispute in its own transaction with
    ``skip_locked``: one being acted on right now is left for the next run."""
    now = now or timezone.now()
    due = (
        Dispute.objects.filter(
            Q(status=DS.AWAITING_RESPONSE, response_due_at__lte=now)
            | Q(status__in=[DS.AWAITING_RESPONSE, DS.NEGOTIATING], mediation_due_at__lte=now)
        )
        .order_by("response_due_at", "pk")
        .values_list("pk", "task_id")[:limit]
    )
    counts = {"no_response": 0, "timeout": 0, "errors": 0}
    for pk, task_id in list(due):
        try:
            why = _sweep_one(pk, task_id, now)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others
            logger.exception("Dispute sweep failed for dispute %s", pk)
            counts["errors"] += 1
            continue
        if why:
            counts[why] += 1
    return counts


@transaction.atomic
def _sweep_one(pk: int, task_id: int, now: dt.datetime) -> str | None:
    if Task.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=task_id).first() is None:
        return None
    dispute = Dispute.objects.select_for_update(no_key=True, skip_locked=True).select_related("task", "opened_by", "against")
    dispute = dispute.filter(pk=pk, status__in=[DS.AWAITING_RESPONSE, DS.NEGOTIATING]).first()
    if dispute is None:
        return None
    if dispute.status == DS.AWAITING_RESPONSE and dispute.response_due_at <= now:
        why = "no_response"
    elif dispute.mediation_due_at <= now:
        why = "timeout"
    else:
        return None
    _escalate(dispute, by=None, why=why, now=now)
    return why
