"""Two bookings of the same task at the same moment, as real concurrent
transactions on PostgreSQL: exactly one wins, the other hears "already booked".

Each thread has its own database connection. The winner holds the task's row
lock a little longer (a slow payment hook) so the loser is certainly waiting
on the lock, not simply arriving after the winner committed.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from core.errors import Conflict
from tasks import services
from tasks.models import Offer, Task, TaskEvent
from tests.tasks._services_support import make_contractor
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 3


@pytest.fixture
def slow_payment(monkeypatch):
    def on_assigned(task, offer):
        time.sleep(0.3)

    monkeypatch.setattr("tasks.payment_hooks.on_assigned", on_assigned)


def race(*calls):
    """Run the calls in threads released together; return each one's outcome."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            call()
            outcomes[index] = "ok"
        except Conflict as exc:
            outcomes[index] = exc.code
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            outcomes[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def assert_one_winner(task, outcomes, contractors):
    assert sorted(outcomes) == ["already_booked", "ok"], outcomes
    task.refresh_from_db()
    assert task.status == Task.Status.ASSIGNED
    accepted = Offer.objects.filter(task=task, status="accepted")
    assert accepted.count() == 1
    winner = accepted.get()
    assert task.contractor_id == winner.contractor_id
    assert task.agreed_price_cents == winner.price_cents
    assert task.contractor_id in {c.pk for c in contractors}
    assert TaskEvent.objects.filter(task=task, kind__in=["offer_accepted", "instant_booked"]).count() == 1
    assert not Offer.objects.filter(task=task, status="pending").exists()


def test_two_accepts_at_once_exactly_one_wins(customer, contractor, slow_payment):
    rival = make_contractor("rival@example.com")
    for _round in range(ROUNDS):
        task = TaskFactory(customer=customer)
        first = OfferFactory(task=task, contractor=contractor, price_cents=11_000)
        second = OfferFactory(task=task, contractor=rival, price_cents=10_000)
        outcomes = race(
            lambda first=first: services.offer_accept(first, by=customer),
            lambda second=second: services.offer_accept(second, by=customer),
        )
        assert_one_winner(task, outcomes, [contractor, rival])
        # The losing offer was declined by the winner's transaction.
        assert Offer.objects.filter(task=task, status="declined").count() == 1


def test_two_instant_bookings_at_once_exactly_one_wins(customer, contractor, slow_payment):
    rival = make_contractor("rival@example.com")
    for _round in range(ROUNDS):
        task = TaskFactory(customer=customer, instant_book=True)
        outcomes = race(
            lambda task=task: services.task_instant_book(task, by=contractor),
            lambda task=task: services.task_instant_book(task, by=rival),
        )
        assert_one_winner(task, outcomes, [contractor, rival])
        assert Offer.objects.filter(task=task).count() == 1  # the loser left no offer behind


def test_accept_and_instant_booking_at_once_exactly_one_wins(customer, contractor, slow_payment):
    rival = make_contractor("rival@example.com")
    results = set()
    for _round in range(ROUNDS):
        task = TaskFactory(customer=customer, instant_book=True)
        offer = OfferFactory(task=task, contractor=contractor, price_cents=11_000)
        outcomes = race(
            lambda offer=offer: services.offer_accept(offer, by=customer),
            lambda task=task: services.task_instant_book(task, by=rival),
        )
        assert_one_winner(task, outcomes, [contractor, rival])
        results.add(tuple(outcomes))
        if outcomes[1] == "ok":
            # The instant booking won: the pending offer was declined, not left hanging.
            assert Offer.objects.get(pk=offer.pk).status == "declined"
