"""The market simulator: a tiny world plays deterministically for a seed,
through the services (nothing booked without money, simulated timestamps,
outcomes logged for training)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from accounts.models import User
from matching.models import MatchEvent
from matching.simulate import METROS, simulate
from payments.models import Escrow
from tasks.models import Offer, Task

pytestmark = pytest.mark.django_db

END = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
TINY = {"months": 1, "customers": 6, "contractors": 18, "tasks": 14, "end": END, "metros": METROS[:1]}


def _snapshot() -> list[tuple]:
    return list(
        Task.objects.order_by("published_at", "pk").values_list(
            "title",
            "customer__email",
            "category__slug",
            "budget_cents",
            "status",
            "contractor__email",
            "agreed_price_cents",
        )
    )


def test_same_seed_same_market_other_seed_another():
    with transaction.atomic():
        first = simulate(seed=7, **TINY)
        first_rows = _snapshot()
        transaction.set_rollback(True)
    assert not Task.objects.exists()

    second = simulate(seed=7, **TINY)
    assert second.signature == first.signature
    assert second.counts == first.counts
    assert _snapshot() == first_rows

    other = simulate(seed=8, **TINY)
    assert other.signature != first.signature


def test_tiny_market_goes_through_the_product():
    result = simulate(seed=3, **TINY)
    start = END - dt.timedelta(days=30)
    tasks = Task.objects.all()
    assert tasks.count() == 14 == result.counts["tasks"]
    assert User.objects.filter(email__endswith="@sim.bittietasks.local", is_contractor=True).count() == 18
    # Simulated time: every posting, offer and outcome falls inside the history.
    assert all(start <= t.published_at <= END and t.created_at == t.published_at for t in tasks)
    assert all(start <= o.created_at <= END for o in Offer.objects.all())
    assert Offer.objects.count() == result.counts["offers"] > 0
    # Something was hired, and nothing is booked without a held (or released) escrow.
    booked = tasks.exclude(contractor__isnull=True)
    assert booked.count() == result.counts["hired"] > 0
    for task in booked:
        escrow = Escrow.objects.get(task=task, offer__status=Offer.Status.ACCEPTED)
        assert escrow.contractor_id == task.contractor_id
        assert escrow.status in {Escrow.Status.HELD, Escrow.Status.RELEASED, Escrow.Status.REFUNDED}
    assert tasks.filter(status=Task.Status.COMPLETED).count() == result.counts.get("completed", 0)
    # The outcomes the model trains on, at simulated times.
    kinds = set(MatchEvent.objects.values_list("kind", flat=True))
    assert {"shown", "offered", "accepted"} <= kinds
    assert MatchEvent.objects.filter(kind="offered").count() == Offer.objects.filter(is_instant=False).count()
    assert MatchEvent.objects.filter(kind="accepted").count() == booked.count()
    assert all(start <= at <= END for at in MatchEvent.objects.values_list("created_at", flat=True))


def test_command_refuses_bad_sizes_and_a_seed_already_there(capsys):
    with pytest.raises(CommandError, match="--customers must be at least 1"):
        call_command("simulate_market", "--customers", "0")
    assert not User.objects.exists()
    simulate(seed=5, months=1, customers=1, contractors=1, tasks=1, end=END, metros=METROS[:1])
    users = User.objects.count()
    with pytest.raises(CommandError, match="seed 5 is already in this database"):
        call_command("simulate_market", "--seed", "5", "--customers", "1", "--contractors", "1", "--tasks", "1")
    assert User.objects.count() == users
