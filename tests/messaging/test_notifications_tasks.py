"""Task events reach the notification centre (and SMS where chosen) through
messaging.notifications, each user gets one email per event (the task's own,
only if they want it, always with an unsubscribe link), and the job-starting
beat tells both sides once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from messaging import digest
from messaging import notifications as service
from messaging.models import Notification, NotificationPreference
from messaging.sms import ConsoleSMS
from messaging.tasks import notify_jobs_starting
from tasks import services as task_services
from tests.payments.helpers import fund
from tests.tasks.factories import OfferFactory, TaskFactory

Kind = Notification.Kind


@pytest.fixture(autouse=True)
def _offline(settings, monkeypatch):
    settings.SMS_BACKEND = "messaging.sms.ConsoleSMS"
    settings.SITE_URL = "https://bittie.example"
    monkeypatch.setattr(service, "_group_send", lambda group, event: None)
    ConsoleSMS.outbox.clear()
    yield
    ConsoleSMS.outbox.clear()


def kinds_for(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("kind", flat=True))


def test_new_offer_notifies_the_customer_in_app_and_by_one_email(
    task, contractor, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task_services.offer_create(task, by=contractor, price_cents=9_000, message="Thursday works.")

    notification = Notification.objects.get(user=customer)
    assert notification.kind == "new_offer"
    assert notification.title == "New offer on “Fix the leaking kitchen tap”"
    assert notification.url == f"/tasks/{task.public_id}"
    assert notification.task == task
    assert service.unread_count(customer) == 1
    assert kinds_for(contractor) == []
    # One email: the task's own (with its details), carrying the unsubscribe link.
    [email] = mail.outbox
    assert email.to == [customer.email]
    assert "Thursday works." in email.body
    assert "https://bittie.example/notifications/unsubscribe/" in email.body
    assert email.extra_headers["List-Unsubscribe"].startswith("<https://bittie.example/notifications/unsubscribe/")
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_new_offer_email_off_keeps_the_in_app_notification(
    task, contractor, customer, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.create(user=customer, kind="new_offer", in_app=True, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        task_services.offer_create(task, by=contractor, price_cents=9_000)

    assert kinds_for(customer) == ["new_offer"]
    assert mail.outbox == []


def test_a_refused_offer_notifies_nobody(task, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(task_services.PermissionDenied):
        task_services.offer_create(task, by=customer, price_cents=9_000)
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_accepting_tells_the_winner_and_the_other_bidders(task, offer, contractor, customer, other_contractor):
    OfferFactory(task=task, contractor=other_contractor)
    fund(offer)  # the customer accepts and pays; the payment books the task (commits run there)

    assert kinds_for(contractor) == ["offer_accepted"]
    assert kinds_for(other_contractor) == ["offer_declined"]
    assert kinds_for(customer) == []
    # The two bidders hear about the decision; the customer gets the payment receipt.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([contractor.email, other_contractor.email, customer.email])
    assert [m.subject for m in mail.outbox if m.to == [customer.email]][0].startswith("[BittieTasks] Receipt: ")


def test_check_in_notifies_the_customer_and_texts_when_chosen(customer, contractor, django_capture_on_commit_callbacks):
    customer.phone = "+14155550100"
    customer.save(update_fields=["phone"])
    NotificationPreference.objects.create(user=customer, kind="checked_in", in_app=True, email=False, sms=True)
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True, title="Fix the tap")

    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_check_in(task, by=contractor)

    notification = Notification.objects.get(user=customer)
    assert (notification.kind, notification.title) == ("checked_in", "Bob Builder checked in at “Fix the tap”")
    assert [(s.to, s.body) for s in ConsoleSMS.outbox] == [
        ("+14155550100", f"BittieTasks: Bob Builder checked in at “Fix the tap” https://bittie.example/tasks/{task.public_id}")
    ]
    assert mail.outbox == []  # checked_in email is off by default
    assert kinds_for(contractor) == []


def test_proof_and_approval_are_task_updates_for_the_other_side(customer, contractor, django_capture_on_commit_callbacks):
    task = TaskFactory(customer=customer, contractor=contractor, submitted=True)
    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_approve(task, by=customer)

    assert kinds_for(contractor) == ["task_update"]
    assert kinds_for(customer) == []
    [email] = mail.outbox
    assert email.to == [contractor.email]
    assert "List-Unsubscribe" in email.extra_headers


# --- job starting within the hour ---------------------------------------------------


@pytest.fixture
def booked_soon(customer, contractor):
    return TaskFactory(
        customer=customer,
        contractor=contractor,
        assigned=True,
        title="Fix the tap",
        schedule_type="window",
        window_start=timezone.now() + dt.timedelta(minutes=40),
        window_end=timezone.now() + dt.timedelta(hours=3),
    )


def test_job_starting_tells_both_sides_once(booked_soon, customer, contractor, django_capture_on_commit_callbacks):
    later = TaskFactory(
        customer=customer,
        contractor=contractor,
        assigned=True,
        window_start=timezone.now() + dt.timedelta(hours=3),
    )
    TaskFactory(customer=customer, window_start=timezone.now() + dt.timedelta(minutes=30))  # open, not booked

    with django_capture_on_commit_callbacks(execute=True):
        assert digest.jobs_starting_notify() == 2
        assert digest.jobs_starting_notify() == 0  # the next minute's run

    for user in (customer, contractor):
        notification = Notification.objects.get(user=user)
        assert notification.kind == "job_starting"
        assert notification.task == booked_soon
        assert notification.dedupe_key == f"job_starting:{booked_soon.public_id}"
        assert "Fix the tap" in notification.title
    assert not Notification.objects.filter(task=later).exists()
    assert mail.outbox == []  # in-app only by default


def test_job_starting_uses_the_accepted_offers_start_without_a_window(customer, contractor):
    task = TaskFactory(customer=customer, contractor=contractor, assigned=True)
    OfferFactory(task=task, contractor=contractor, status="accepted", proposed_start=timezone.now() + dt.timedelta(minutes=20))

    assert digest.jobs_starting_notify() == 2
    assert Notification.objects.filter(task=task, kind="job_starting").count() == 2


def test_job_starting_texts_a_contractor_who_chose_sms(booked_soon, contractor, django_capture_on_commit_callbacks):
    contractor.phone = "+14155550111"
    contractor.save(update_fields=["phone"])
    NotificationPreference.objects.create(user=contractor, kind="job_starting", in_app=True, email=True, sms=True)

    with django_capture_on_commit_callbacks(execute=True):
        notify_jobs_starting.apply().get()

    assert [s.to for s in ConsoleSMS.outbox] == ["+14155550111"]
    assert [m.to for m in mail.outbox] == [[contractor.email]]


def test_beat_runs_job_starting_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["messaging.notify_jobs_starting"]
    assert entry["task"] == notify_jobs_starting.name
    assert entry["schedule"] == 60.0

