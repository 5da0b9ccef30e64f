"""Achievements: each rule, awarded once, with one notification."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from accounts.models import User
from messaging.models import Conversation, Message, Notification
from reputation import achievements as ach
from reputation import selectors, services
from reputation.models import Review, UserAchievement
from tests.reputation.review_support import completed_task

pytestmark = pytest.mark.django_db


def codes(user):
    return sorted(UserAchievement.objects.filter(user=user).values_list("code", flat=True))


def test_first_job_is_awarded_once_with_one_notification(customer, contractor):
    assert services.achievements_award(user=contractor) == []
    completed_task(customer, contractor)
    awarded = services.achievements_award(user=contractor)
    assert [a.code for a in awarded] == [ach.FIRST_JOB]
    completed_task(customer, contractor)
    assert services.achievements_award(user=contractor) == []
    services.trust_recompute(user=contractor)
    assert codes(contractor) == [ach.FIRST_JOB]
    notes = Notification.objects.filter(user=contractor, title__startswith="Achievement unlocked")
    assert [n.title for n in notes] == ["Achievement unlocked: First job done"]


def test_customers_earn_no_contractor_achievements(customer, contractor):
    completed_task(customer, contractor)
    User.objects.filter(pk=customer.pk).update(phone_verified_at=timezone.now(), id_verified_at=timezone.now())
    customer.refresh_from_db()
    assert services.achievements_award(user=customer) == []


def test_verified_pro_needs_all_three_badges(contractor):
    User.objects.filter(pk=contractor.pk).update(phone_verified_at=timezone.now())
    contractor.refresh_from_db()
    assert ach.VERIFIED_PRO not in services.achievements_due(contractor)
    User.objects.filter(pk=contractor.pk).update(id_verified_at=timezone.now())
    contractor.refresh_from_db()
    services.achievements_award(user=contractor)
    assert codes(contractor) == [ach.VERIFIED_PRO]
    assert [a.title for a in selectors.achievements_for(contractor)] == ["Verified pro"]


def _five_star(customer, contractor, stars=5):
    task = completed_task(customer, contractor)
    Review.objects.create(
        task=task, reviewer=customer, reviewee=contractor, role=Review.Role.CUSTOMER_TO_CONTRACTOR, stars=stars,
        window_closes_at=task.completed_at + dt.timedelta(days=14), published_at=timezone.now(),
    )


def test_ten_five_star_jobs(customer, contractor):
    for _ in range(9):
        _five_star(customer, contractor)
    _five_star(customer, contractor, stars=4)
    assert ach.FIVE_STAR_10 not in services.achievements_due(contractor)
    _five_star(customer, contractor)
    assert ach.FIVE_STAR_10 in services.achievements_due(contractor)


def _conversation_with_reply(customer, contractor, delay):
    task = completed_task(customer, contractor)
    conversation = Conversation.objects.create(task=task, customer=customer, contractor=contractor)
    start = timezone.now() - dt.timedelta(days=1)
    for seq, sender, at in ((1, customer, start), (2, contractor, start + delay)):
        message = Message.objects.create(conversation=conversation, seq=seq, sender=sender, client_id=uuid.uuid4(), body="hi")
        Message.objects.filter(pk=message.pk).update(created_at=at)


def test_fast_responder_needs_20_conversations_and_a_median_under_an_hour(customer, contractor):
    for _ in range(19):
        _conversation_with_reply(customer, contractor, dt.timedelta(minutes=20))
    assert ach.FAST_RESPONDER not in services.achievements_due(contractor)
    _conversation_with_reply(customer, contractor, dt.timedelta(hours=5))
    # 20 conversations; delays 19 x 20 min + 5 h -> median 20 min < 1 h
    assert ach.FAST_RESPONDER in services.achievements_due(contractor)


def test_fifty_jobs_without_a_dispute(customer, contractor):
    for _ in range(49):
        completed_task(customer, contractor)
    assert ach.NO_DISPUTE_50 not in services.achievements_due(contractor)
    completed_task(customer, contractor)
    services.achievements_award(user=contractor)
    assert codes(contractor) == [ach.FIRST_JOB, ach.NO_DISPUTE_50]
