"""Plain-text emails about a task, sent only once the change is committed.

Services call these inside their transaction; the message is rendered there
(so a template error fails the service, not a later callback) and handed to
``transaction.on_commit``, so a rolled-back booking never emails anyone. A
failing mail server is logged, not raised: the change it reports is already
committed and the user's request must not turn into an error page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from matching import hooks as matching_hooks
from messaging import notifications

if TYPE_CHECKING:
    from accounts.models import User

    from .models import Offer, ProofSubmission, Task

logger = logging.getLogger(__name__)


def task_url(task: Task) -> str:
    return f"{settings.SITE_URL}/tasks/{task.public_id}/"


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return ""
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}"


def price_label(task: Task, cents: int | None) -> str:
    label = money(cents, task.currency)
    return _("%(price)s an hour") % {"price": label} if task.budget_type == task.BudgetType.HOURLY else label


def name_of(user: User | None) -> str:
    if user is None:
        return ""
    return user.full_name or user.email.split("@")[0]


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%a %d %b %Y, %H:%M %Z")


def _send(
    recipients: Iterable[User | None], subject: str, template: str, context: dict, *, kind: str = "task_update"
) -> None:
    for user in recipients:
        if user is None or not user.email or not user.is_active:
            continue
        # The notification centre entry (and SMS where chosen) comes from
        # messaging; the email stays this richer one, sent only if the user
        # wants this kind by email, with the unsubscribe link and headers.
        notifications.notify(
            user,
            kind=kind,
            title=subject,
            url=reverse("tasks:detail", args=[context["task"].public_id]),
            task=context["task"],
            email=False,
        )
        if not notifications.email_wanted(user, kind):
            continue
        footer, headers = notifications.unsubscribe_email_parts(user, kind)
        body = render_to_string(
            f"tasks/email/{template}.txt",
            {"recipient_name": name_of(user), "site_url": settings.SITE_URL, **context},
        ) + footer
        full_subject = f"[BittieTasks] {subject}"
        email = user.email

        def deliver(full_subject=full_subject, body=body, email=email, headers=headers) -> None:
            try:
                EmailMessage(full_subject, body, None, [email], headers=headers).send()
            except Exception:  # noqa: BLE001 - the change is committed; log and carry on
                logger.exception("Could not send %r to %s", full_subject, email)

        transaction.on_commit(deliver)


def _task_context(task: Task) -> dict:
    return {"task": task, "task_title": task.title, "task_url": task_url(task)}


def offer_received(offer: Offer) -> None:
    task = offer.task
    matching_hooks.offer_made(offer)
    _send(
        [task.customer],
        _("New offer on “%(title)s”") % {"title": task.title},
        "offer_received",
        {
            **_task_context(task),
            "contractor_name": name_of(offer.contractor),
            "price": price_label(task, offer.price_cents),
            "message": offer.message,
            "proposed_start": _when(offer.proposed_start),
        },
        kind="new_offer",
    )


def offer_accepted(offer: Offer) -> None:
    task = offer.task
    matching_hooks.offer_accepted(offer)
    _send(
        [offer.contractor],
        _("You got the job: “%(title)s”") % {"title": task.title},
        "offer_accepted",
        {
            **_task_context(task),
            "customer_name": name_of(task.customer),
            "price": price_label(task, offer.price_cents),
            "instant": offer.is_instant,
        },
        kind="offer_accepted",
    )


def task_published(task: Task) -> None:
    """A task opened to offers: no email of its own; smart alerts go to the
    best-matched pros (matching), after commit."""
    matching_hooks.task_published(task)


def task_booked(task: Task, offer: Offer) -> None:
    """Instant booking: tell the customer who booked it."""
    _send(
        [task.customer],
        _("“%(title)s” was booked") % {"title": task.title},
        "task_booked",
        {
            **_task_context(task),
            "contractor_name": name_of(offer.contractor),
            "price": price_label(task, offer.price_cents),
            "proposed_start": _when(offer.proposed_start),
        },
    )


def offer_declined(offer: Offer, *, reason: str = "") -> None:
    task = offer.task
    _send(
        [offer.contractor],
        _("Your offer on “%(title)s” was not accepted") % {"title": task.title},
        "offer_declined",
        {**_task_context(task), "price": price_label(task, offer.price_cents), "reason": reason},
        kind="offer_declined",
    )


def task_cancelled(task: Task, *, by: User, recipients: Iterable[User | None], refund: str) -> None:
    _send(
        recipients,
        _("“%(title)s” was cancelled") % {"title": task.title},
        "task_cancelled",
        {
            **_task_context(task),
            "cancelled_by": _("BittieTasks support") if by.is_staff and by.pk not in (task.customer_id, task.contractor_id) else name_of(by),
            "reason": task.cancel_reason,
            "refund": refund,
        },
    )


def proof_submitted(task: Task, proof: ProofSubmission, *, photo_count: int) -> None:
    _send(
        [task.customer],
        _("The work on “%(title)s” is done: please check it") % {"title": task.title},
        "proof_submitted",
        {
            **_task_context(task),
            "contractor_name": name_of(task.contractor),
            "note": proof.note,
            "photo_count": photo_count,
            "auto_approve_at": _when(task.auto_approve_at),
        },
    )


def approval_reminder(task: Task, *, which: str) -> None:
    _send(
        [task.customer],
        _("Reminder: check the work on “%(title)s”") % {"title": task.title},
        "approval_reminder",
        {
            **_task_context(task),
            "contractor_name": name_of(task.contractor),
            "which": which,
            "auto_approve_at": _when(task.auto_approve_at),
        },
    )


def task_approved(task: Task) -> None:
    matching_hooks.task_completed(task)
    _send(
        [task.contractor],
        _("“%(title)s” was approved") % {"title": task.title},
        "task_approved",
        {**_task_context(task), "customer_name": name_of(task.customer)},
    )


def task_auto_approved(task: Task) -> None:
    matching_hooks.task_completed(task)
    _send(
        [task.customer, task.contractor],
        _("“%(title)s” was approved automatically") % {"title": task.title},
        "task_auto_approved",
        {**_task_context(task), "contractor_name": name_of(task.contractor)},
    )


def changes_requested(task: Task, *, reason: str) -> None:
    _send(
        [task.contractor],
        _("Changes requested on “%(title)s”") % {"title": task.title},
        "changes_requested",
        {**_task_context(task), "customer_name": name_of(task.customer), "reason": reason},
    )


def checked_in(task: Task) -> None:
    """The contractor arrived: the customer is told in the app, and by text or
    email if they chose to (no task email of its own)."""
    notifications.notify(
        task.customer,
        kind="checked_in",
        title=_("%(name)s checked in at “%(title)s”") % {"name": task.contractor.public_name, "title": task.title},
        url=reverse("tasks:detail", args=[task.public_id]),
        task=task,
        dedupe_key=f"checked_in:{task.public_id}:{task.started_at.isoformat() if task.started_at else ''}",
    )
