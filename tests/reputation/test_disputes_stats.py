"""Dispute figures for the trust score and the admin."""

from __future__ import annotations

import pytest
from django.utils import timezone

from reputation import disputes
from reputation.disputes_selectors import dispute_stats, platform_dispute_rate
from tasks.models import Task
from tests.reputation.dispute_support import TEXT, mediator, submitted_task

pytestmark = pytest.mark.django_db


def test_stats_by_hand(customer, contractor, outsider):
    # Three completed jobs for Bob, one more disputed and lost (refunded), one
    # disputed and won (released).
    for _ in range(3):
        task = submitted_task(customer, contractor)
        Task.objects.filter(pk=task.pk).update(status="completed", completed_at=timezone.now())
    lost = submitted_task(customer, contractor)
    won = submitted_task(outsider, contractor)
    d1 = disputes.dispute_open(lost, by=customer, reason="poor_quality", text=TEXT)
    d2 = disputes.dispute_open(won, by=outsider, reason="poor_quality", text=TEXT)
    mia = mediator()
    for dispute, outcome in ((d1, "refund"), (d2, "release")):
        disputes.dispute_escalate(dispute, by=dispute.opened_by)
        disputes.dispute_decide(dispute, by=mia, outcome=outcome, reason="Decided on the photos and the chat.")
    # Bob: 2 disputed tasks; completed = 3 + the released one = 4; the refunded
    # one is cancelled, so the base is 4 + 1 = 5.
    assert dispute_stats(contractor) == {"opened_against": 2, "lost": 1, "disputed": 2, "completed": 4, "rate": 0.4}
    # Dana: one dispute she opened (won: refund), 3 completed + 1 disputed not completed.
    assert dispute_stats(customer) == {"opened_against": 0, "lost": 0, "disputed": 1, "completed": 3, "rate": 0.25}
    # Charlie lost his (released to Bob): 1 disputed over 1 completed.
    assert dispute_stats(outsider) == {"opened_against": 0, "lost": 1, "disputed": 1, "completed": 1, "rate": 1.0}
    assert platform_dispute_rate() == {"disputed": 2, "completed": 4, "open": 0, "in_mediation": 0, "rate": 0.4}


def test_stats_for_nobody(outsider):
    assert dispute_stats(outsider) == {"opened_against": 0, "lost": 0, "disputed": 0, "completed": 0, "rate": 0.0}
