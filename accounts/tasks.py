"""Celery tasks for accounts: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="accounts.purge_id_documents", ignore_result=True, soft_time_limit=240, time_limit=300)
def purge_id_documents() -> int:
    """Run hourly by beat: delete ID document and selfie files whose
    retention (decision + ID_DOCUMENT_RETENTION_DAYS) has passed. The due
    date is a column, so a missed run is caught up by the next one."""
    from .verification import id_documents_purge

    return id_documents_purge()
