"""Identity verification (phone codes, ID documents) and the audit log.

Every staff decision about a person or their work goes through a service
here or in ``tasks.verification`` and is written with ``audit_record`` in
the same transaction: if the decision rolls back, so does its entry.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from .models import AuditEntry, User


@transaction.atomic
def audit_record(
    actor: User | None,
    action: str,
    subject: models.Model | None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log: ``actor`` (None for the system)
    did ``action`` (a short dotted name, e.g. ``"id.approve"``) to
    ``subject`` (any saved model instance, or None) because ``reason``.

    Call it inside the transaction of the decision it records. ``data`` must
    be JSON-serialisable (ids as strings). Entries are never changed or
    deleted afterwards.
    """
    if not action or len(action) > 64:
        raise ValueError("An audit action is a short name of at most 64 characters.")
    subject_type = None
    subject_id = ""
    subject_repr = ""
    if subject is not None:
        if subject.pk is None:
            raise ValueError("Audit a saved object: it has no primary key yet.")
        subject_type = ContentType.objects.get_for_model(subject, for_concrete_model=True)
        subject_id = str(subject.pk)
        subject_repr = str(subject)[:200]
    actor_repr = ""
    if actor is not None and actor.is_authenticated:
        actor_repr = actor.email[:254]
    else:
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_repr=actor_repr,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_repr=subject_repr,
        reason=reason or "",
        data=data or {},
    )
