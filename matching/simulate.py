"""A simulated marketplace to train and evaluate matching on.

Contractors and customers get HIDDEN attributes the product never sees:
skill per trade, quality of work, punctuality, reliability, eagerness, weekly
capacity, price level; customers weigh price, rating, distance and speed of
the offer differently and some come back to the same contractor. They then
play ``months`` of activity on a simulated clock, in time order (a heap of
events), through the project's own services:

- people: ``accounts.services`` (roles, ZIP, verified email, contractor
  profile with trades, rate, radius, weekly hours, onboarding);
- posting: ``tasks.services.task_create`` (with a small drawn photo, as the
  product requires one to publish);
- offers: ``tasks.services.offer_create``;
- hiring: ``payments.services.checkout_start`` then the simulated gateway's
  test card (``confirm``) and ``escrow_funded``: the same path as the demo
  and ``tests/payments/helpers.py``; nothing is assigned without a held escrow;
- the job: ``task_check_in``, ``task_submit_proof``, ``task_approve``,
  cancellations through ``task_cancel``; reviews through
  ``reputation.services.review_submit`` and the beat job's
  ``reviews_publish_due``.

What is muted while it runs: email and in-app notifications (nobody reads a
simulated inbox), and the photo checks of the drawn proof photos. Celery runs
eagerly so webhooks and trust recomputes happen as they would with a worker.

Time: ``django.utils.timezone.now`` is patched to the simulated clock, so
every ``created_at``, ``published_at``, offer time and review time is the
simulated one. The history ends at the real "now": events that would fall
after it are left for the future (tasks still open or booked), as in a live
market.

``MatchEvent`` rows are logged as the product would: ``shown`` (Find work
listed the task to a contractor, position = nearest first), ``viewed``,
``offered``, ``accepted``, ``completed``, ``well_reviewed`` (4+ stars). If the
product's own hooks already logged one (matching.services via tasks.notify),
it is not logged twice.

Deterministic for a seed: the same seed, sizes and start give the same world
and the same history (``SimulationResult.signature``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import heapq
import io
import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone
from PIL import Image

from accounts import services as account_services
from accounts.models import User
from core.errors import ApplicationError
from core.geo import EARTH_RADIUS_KM
from matching import services as matching_services
from matching.models import MatchEvent
from payments import services as payment_services
from payments.gateway import get_gateway
from reputation import services as review_services
from reputation.selectors import contractor_rating
from tasks import services as task_services
from tasks.models import Category, Offer, Task

logger = logging.getLogger(__name__)

TEST_CARD = "4242424242424242"  # the simulated gateway's card that succeeds
EMAIL_DOMAIN = "sim.bittietasks.local"
LOCAL_TZ = ZoneInfo("America/Los_Angeles")
K = MatchEvent.Kind


@dataclass(frozen=True)
class Metro:
    name: str
    latitude: float
    longitude: float
    radius_km: float
    share: float  # of people living there


METROS = (
    Metro("San Francisco Bay", 37.77, -122.33, 32.0, 0.65),
    Metro("Los Angeles", 34.05, -118.30, 30.0, 0.35),
)


@dataclass(frozen=True)
class Trade:
    slug: str
    rate_cents: int  # typical hourly rate
    hours: float  # typical job length
    demand: float  # share of tasks
    words: str  # what the trade's jobs and bios talk about


TRADES = (
    Trade("plumbing", 9_500, 2.5, 0.13, "leak drain pipe faucet toilet water heater"),
    Trade("electrical", 10_500, 2.5, 0.10, "outlet switch wiring light fixture panel"),
    Trade("carpentry", 8_000, 4.0, 0.07, "door trim shelf deck cabinet wood"),
    Trade("handyman", 6_500, 2.0, 0.14, "repair mount hang patch fix small jobs"),
    Trade("painting", 6_500, 6.0, 0.08, "paint walls ceiling primer trim colour"),
    Trade("cleaning", 4_500, 4.0, 0.14, "deep clean kitchen bathroom move-out floors"),
    Trade("moving-help", 5_000, 3.0, 0.08, "move carry boxes sofa truck load"),
    Trade("appliance-repair", 9_000, 1.5, 0.06, "fridge washer dryer oven dishwasher"),
    Trade("hvac", 11_000, 2.0, 0.04, "furnace heating air conditioning vent filter"),
    Trade("landscaping", 5_500, 4.0, 0.07, "lawn hedge garden yard pruning irrigation"),
    Trade("furniture-assembly", 5_500, 2.5, 0.07, "assemble flat-pack wardrobe bed desk shelf"),
    Trade("roofing", 9_500, 4.0, 0.02, "roof shingles gutter leak flashing"),
)
TRADE_BY_SLUG = {t.slug: t for t in TRADES}

# Weekly hours patterns: (weekdays, start hour, end hour) windows.
SCHEDULES: tuple[tuple[tuple[tuple[int, ...], int, int], ...], ...] = (
    (((0, 1, 2, 3, 4), 8, 17),),
    (((0, 1, 2, 3, 4, 5), 7, 16),),
    (((0, 1, 2, 3, 4), 17, 21), ((5, 6), 8, 18)),
    (((0, 2, 4), 9, 15),),
    (((4,), 12, 20), ((5, 6), 8, 18)),
    (((1, 2, 3, 4, 5), 9, 19),),
)
FIRST = [
    "Alex",
    "Sam",
    "Jo",
    "Max",
    "Lee",
    "Kim",
    "Ana",
    "Ben",
    "Cara",
    "Dev",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jin",
    "Kai",
    "Lia",
    "Mo",
    "Nia",
    "Omar",
    "Pia",
    "Raj",
    "Sol",
    "Tia",
    "Uma",
    "Vic",
    "Wes",
    "Yara",
    "Zed",
]
LAST = [
    "Park",
    "Diaz",
    "Chen",
    "Novak",
    "Shah",
    "Reyes",
    "Okoro",
    "Berg",
    "Silva",
    "Tran",
    "Moreau",
    "Haas",
    "Ito",
    "Lund",
    "Costa",
    "Adler",
    "Kaur",
    "Ngata",
    "Ortiz",
    "Quinn",
    "Rossi",
    "Sato",
    "Vance",
    "Weber",
    "Young",
]


@dataclass
class SimContractor:
    """A contractor and what only the simulator knows about them."""

    index: int
    user: User
    metro: int
    latitude: float
    longitude: float
    radius_km: int
    trades: list[str]
    skill: dict[str, float]
    quality: float
    punctuality: float
    reliability: float
    eagerness: float
    capacity: int  # jobs a week they take on
    rate_cents: int
    schedule: tuple[tuple[tuple[int, ...], int, int], ...]
    booked_weeks: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class SimCustomer:
    index: int
    user: User
    metro: int
    postal_code: str
    latitude: float
    longitude: float
    w_price: float
    w_rating: float
    w_distance: float
    w_speed: float
    loyalty: float
    budget_level: float
    needs: list[str]
    activity: float
    history: dict[int, int] = field(default_factory=dict)  # contractor index -> last stars given


@dataclass
class SimTask:
    index: int
    customer: SimCustomer
    trade: str
    hours: float
    task: Task | None = None
    offers: dict[int, Offer] = field(default_factory=dict)  # contractor index -> offer
    offer_delay_h: dict[int, float] = field(default_factory=dict)
    distances: dict[int, float] = field(default_factory=dict)
    hired: int | None = None
    start: dt.datetime | None = None
    stars: int | None = None
    outcome: str = "open"
    decisions_left: int = 2


@dataclass
class SimulationResult:
    seed: int
    started_at: dt.datetime
    ended_at: dt.datetime
    counts: dict[str, int]
    signature: str  # a hash of the whole history in simulation terms: equal runs, equal signature
    contractors: list[SimContractor] = field(repr=False, default_factory=list)
    customers: list[SimCustomer] = field(repr=False, default_factory=list)


class SimClock:
    """The simulated "now", patched in as ``django.utils.timezone.now``."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start
        self.trust_due: list[int] = []

    def __call__(self) -> dt.datetime:
        return self.now


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


@functools.lru_cache(maxsize=8)
def _metro_zips(metro: Metro) -> list[tuple[str, float, float]]:
    """Standard ZIP codes (offline, from ``zipcodes``) within the metro's radius."""
    import zipcodes

    out = []
    for z in zipcodes.filter_by(state="CA"):
        if z.get("zip_code_type") != "STANDARD" or not z.get("lat") or not z.get("long"):
            continue
        lat, lon = float(z["lat"]), float(z["long"])
        d = float(_haversine_km(metro.latitude, metro.longitude, np.array([lat]), np.array([lon]))[0])
        if d <= metro.radius_km:
            out.append((z["zip_code"], lat, lon))
    out.sort()
    return out


def _photo(rng: np.random.Generator) -> SimpleUploadedFile:
    """A tiny drawn JPEG: publishing a task (and proof of work) needs a photo."""
    colour = tuple(int(c) for c in rng.integers(40, 220, size=3))
    image = Image.new("RGB", (48, 48), colour)
    x, y = (int(v) for v in rng.integers(0, 32, size=2))
    image.paste(tuple(255 - c for c in colour), (x, y, x + 16, y + 16))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return SimpleUploadedFile("sim.jpg", out.getvalue(), content_type="image/jpeg")


def _synchronous_commit_on() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO ON")


@contextlib.contextmanager
def _quiet_product(clock: SimClock) -> Iterator[None]:
    """Simulated time; no emails or in-app notifications; no photo checks of
    drawn photos; Celery eager (webhooks, trust recomputes run now)."""
    from marketplace.celery import app as celery_app

    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with contextlib.ExitStack() as stack:
            if connection.vendor == "postgresql" and connection.get_autocommit():
                # Thousands of small commits: don't wait for each to reach the disk
                # (a crash loses the last simulated moments, never consistency).
                with connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit TO OFF")
                stack.callback(_synchronous_commit_on)
            stack.enter_context(mock.patch("django.utils.timezone.now", clock))
            # Trust scores are recomputed once a simulated day for the people
            # whose history changed (as the beat job does), not per review.
            stack.enter_context(
                mock.patch(
                    "reputation.tasks.recompute_trust.delay",
                    lambda user_id, reason="": clock.trust_due.append(user_id),
                )
            )
            stack.enter_context(mock.patch("tasks.notify._send", lambda *a, **k: None))
            stack.enter_context(mock.patch("messaging.notifications.notify", lambda *a, **k: None))
            stack.enter_context(mock.patch("tasks.verification.queue_photo_check", lambda proof: None))
            stack.enter_context(
                override_settings(
                    EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
                    # The simulated gateway in this process's memory, not make run's
                    # shared state file (rewritten on every call, shared between processes).
                    PAYMENTS_SIMULATED_STATE_FILE="",
                    # Smart alerts would rank with the model being evaluated: not simulated.
                    MATCHING_ALERTS_ON_PUBLISH=False,
                )
            )
            yield
    finally:
        celery_app.conf.task_always_eager = eager


class Market:
    """One simulated world and its history. ``run()`` plays it."""

    def __init__(
        self,
        *,
        seed: int = 1,
        months: int = 4,
        customers: int = 300,
        contractors: int = 150,
        tasks: int | None = None,
        end: dt.datetime | None = None,
        metros: tuple[Metro, ...] = METROS,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if months < 1 or customers < 1 or contractors < 1:
            raise ValueError("months, customers and contractors must be at least 1")
        self.seed = seed
        self.metros = metros
        self.rng = np.random.default_rng(seed)
        self.months = months
        self.n_customers = customers
        self.n_contractors = contractors
        # About 6.7 tasks per customer over four months by default (2,000 for 300).
        self.n_tasks = tasks if tasks is not None else max(1, round(customers * 20 * months / 12))
        real_now = end or timezone.now()
        self.end = real_now.replace(minute=0, second=0, microsecond=0)
        self.start = self.end - dt.timedelta(days=30 * months)
        self.clock = SimClock(self.start)
        self.progress = progress or (lambda message: None)
        self.events: list[tuple[dt.datetime, int, str, Any]] = []
        self._seq = itertools.count()
        self.contractors: list[SimContractor] = []
        self.customers: list[SimCustomer] = []
        self.tasks: list[SimTask] = []
        self.categories: dict[str, Category] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.trace: list[tuple] = []

    # --- set-up ----------------------------------------------------------------------

    def _email(self, kind: str, index: int) -> str:
        return f"sim{self.seed}.{kind}{index:04d}@{EMAIL_DOMAIN}"

    def _name(self) -> str:
        return f"{FIRST[int(self.rng.integers(len(FIRST)))]} {LAST[int(self.rng.integers(len(LAST)))]}"

    def _person(self, email: str, *, contractor: bool, postal_code: str) -> User:
        user = User.objects.create_user(email, None, full_name=self._name())
        account_services.user_set_roles(user=user, is_customer=not contractor, is_contractor=contractor)
        account_services.user_update_profile(user=user, postal_code=postal_code)
        account_services.user_mark_email_verified(user=user, at=self.clock.now)
        return user

    def _categories(self) -> None:
        from accounts.demo import seed_categories

        if Category.objects.filter(slug__in=[t.slug for t in TRADES]).count() < len(TRADES):
            seed_categories(io.StringIO())
        self.categories = {c.slug: c for c in Category.objects.filter(slug__in=[t.slug for t in TRADES])}

    def setup(self) -> None:
        if User.objects.filter(email=self._email("k", 0)).exists():
            raise ApplicationError(
                f"A market with seed {self.seed} is already in this database.", code="already_simulated"
            )
        self._categories()
        rng = self.rng
        zips = [_metro_zips(m) for m in self.metros]
        shares = np.array([m.share for m in self.metros])
        shares = shares / shares.sum()
        demand = np.array([t.demand for t in TRADES])
        demand = demand / demand.sum()
        slugs = [t.slug for t in TRADES]

        for i in range(self.n_contractors):
            metro = int(rng.choice(len(self.metros), p=shares))
            postal_code, lat, lon = zips[metro][int(rng.integers(len(zips[metro])))]
            primary = slugs[int(rng.choice(len(slugs), p=demand))]
            extra = int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))
            others = [s for s in rng.choice(slugs, size=extra + 2, replace=False, p=demand) if s != primary][:extra]
            trades = [primary, *others]
            skill = {primary: float(rng.beta(5, 2))}
            skill.update({s: float(rng.beta(2.5, 2.5)) for s in others})
            price_level = float(np.exp(rng.normal(0, 0.22)))
            rate = int(round(TRADE_BY_SLUG[primary].rate_cents * price_level / 250) * 250)
            schedule = SCHEDULES[int(rng.integers(len(SCHEDULES)))]
            radius = int(rng.choice([8, 12, 15, 20, 25, 35]))
            years = max(1, int(round(2 + 18 * skill[primary] + rng.normal(0, 3))))
            words = " ".join(TRADE_BY_SLUG[s].words for s in trades)
            bio = (
                f"{years} years of {primary.replace('-', ' ')} work"
                + (f", also {', '.join(s.replace('-', ' ') for s in others)}" if others else "")
                + f". I handle {words}."
            )
            user = self._person(self._email("k", i), contractor=True, postal_code=postal_code)
            account_services.contractor_profile_update(
                user=user,
                bio=bio,
                trade_ids=[self.categories[s].pk for s in trades],
                hourly_rate_cents=rate,
                location=postal_code,
                service_radius_km=radius,
                availability=[
                    account_services.AvailabilityWindow(weekday=d, start_time=dt.time(a), end_time=dt.time(b))
                    for days, a, b in schedule
                    for d in days
                ],
            )
            account_services.contractor_onboarding_complete(user=user)
            self.contractors.append(
                SimContractor(
                    index=i,
                    user=user,
                    metro=metro,
                    latitude=lat,
                    longitude=lon,
                    radius_km=radius,
                    trades=trades,
                    skill=skill,
                    quality=float(rng.beta(4, 2)),
                    punctuality=float(rng.beta(4, 1.5)),
                    reliability=float(rng.beta(9, 1)),
                    eagerness=float(rng.beta(2, 2)),
                    capacity=int(rng.integers(2, 7)),
                    rate_cents=rate,
                    schedule=schedule,
                )
            )
        self.progress(f"{self.n_contractors} contractors")

        for i in range(self.n_customers):
            metro = int(rng.choice(len(self.metros), p=shares))
            postal_code, lat, lon = zips[metro][int(rng.integers(len(zips[metro])))]
            w = rng.dirichlet([2.0, 2.0, 2.0, 1.0])
            needs = list(dict.fromkeys(rng.choice(slugs, size=3, replace=True, p=demand)))
            user = self._person(self._email("c", i), contractor=False, postal_code=postal_code)
            self.customers.append(
                SimCustomer(
                    index=i,
                    user=user,
                    metro=metro,
                    postal_code=postal_code,
                    latitude=lat,
                    longitude=lon,
                    w_price=float(w[0]),
                    w_rating=float(w[1]),
                    w_distance=float(w[2]),
                    w_speed=float(w[3]),
                    loyalty=float(rng.beta(2, 3)),
                    budget_level=float(np.exp(rng.normal(0.05, 0.2))),
                    needs=needs,
                    activity=float(rng.gamma(2.0, 0.5)),
                )
            )
        self.progress(f"{self.n_customers} customers")

        self.k_lat = np.array([c.latitude for c in self.contractors])
        self.k_lon = np.array([c.longitude for c in self.contractors])
        self.k_radius = np.array([c.radius_km for c in self.contractors], dtype=float)

        # The posting times: customers in proportion to their activity, times
        # spread over the history (leave the last day for offers to arrive).
        activity = np.array([c.activity for c in self.customers])
        who = rng.choice(self.n_customers, size=self.n_tasks, p=activity / activity.sum())
        span = (self.end - self.start - dt.timedelta(days=1)).total_seconds()
        offsets = np.sort(rng.uniform(0, span, size=self.n_tasks))
        for n, (c, off) in enumerate(zip(who, offsets, strict=True)):
            customer = self.customers[int(c)]
            trade = (
                customer.needs[int(rng.integers(len(customer.needs)))]
                if rng.random() < 0.85
                else slugs[int(rng.choice(len(slugs), p=demand))]
            )
            hours = max(1.0, TRADE_BY_SLUG[trade].hours * float(np.exp(rng.normal(0, 0.35))))
            sim_task = SimTask(index=n, customer=customer, trade=trade, hours=hours)
            self.tasks.append(sim_task)
            self._at(self.start + dt.timedelta(seconds=float(off)), "publish", sim_task)

    # --- the event loop --------------------------------------------------------------

    def _at(self, when: dt.datetime, kind: str, payload: Any) -> None:
        if when <= self.end:
            heapq.heappush(self.events, (when, next(self._seq), kind, payload))

    def run(self) -> SimulationResult:
        with _quiet_product(self.clock):
            self.setup()
            day = self.start + dt.timedelta(days=1)
            while day <= self.end:
                self._at(day, "daily", None)
                day += dt.timedelta(days=1)
            handled = 0
            while self.events:
                when, _seq, kind, payload = heapq.heappop(self.events)
                self.clock.now = when
                getattr(self, f"_on_{kind}")(payload)
                handled += 1
                if kind == "daily" and (when - self.start).days % 15 == 0:
                    self.progress(f"day {(when - self.start).days}: {dict(self.counts)}")
        self._trace()
        return SimulationResult(
            seed=self.seed,
            started_at=self.start,
            ended_at=self.end,
            counts=dict(self.counts),
            signature=hashlib.sha256(repr(self.trace).encode()).hexdigest()[:16],
            contractors=self.contractors,
            customers=self.customers,
        )

    def _on_daily(self, _payload: None) -> None:
        # The beat jobs: reviews whose 14-day window closed are published;
        # trust scores of the people whose history changed are recomputed.
        review_services.reviews_publish_due(now=self.clock.now)
        due = sorted(set(self.clock.trust_due))
        self.clock.trust_due.clear()
        for user in User.objects.filter(pk__in=due, is_active=True).order_by("pk"):
            review_services.trust_recompute(user=user, reason="review_published", now=self.clock.now)

    def _local(self, when: dt.datetime) -> dt.datetime:
        return timezone.localtime(when, LOCAL_TZ)

    def _free(self, contractor: SimContractor, when: dt.datetime) -> bool:
        local = self._local(when)
        return any(local.weekday() in days and a <= local.hour < b for days, a, b in contractor.schedule)

    def _next_free(self, contractor: SimContractor, after: dt.datetime, before: dt.datetime) -> dt.datetime | None:
        """The first hour in the contractor's weekly hours after ``after`` (a start they'd propose)."""
        local = self._local(after).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        for _h in range(24 * 14):
            if local >= before:
                return None
            if self._free(contractor, local):
                return local.astimezone(dt.UTC)
            local += dt.timedelta(hours=1)
        return None

    def _on_publish(self, sim: SimTask) -> None:
        rng = self.rng
        customer, trade = sim.customer, TRADE_BY_SLUG[sim.trade]
        now = self.clock.now
        lat = customer.latitude + float(rng.normal(0, 0.008))
        lon = customer.longitude + float(rng.normal(0, 0.008))
        hourly = rng.random() < 0.3
        rate = trade.rate_cents * customer.budget_level * float(np.exp(rng.normal(0, 0.12)))
        budget = int(round(rate / 100) * 100) if hourly else int(round(rate * sim.hours / 500) * 500)
        budget = max(budget, 1_000 if hourly else 500)
        urgency = str(rng.choice(Task.Urgency.values, p=[0.6, 0.3, 0.1]))
        lead = {"flexible": 7.0, "soon": 3.0, "urgent": 1.0}[urgency]
        data = task_services.TaskInput(
            title=f"{trade.slug.replace('-', ' ').capitalize()} job #{sim.index + 1}",
            description=f"About {sim.hours:.0f} hours of work: {trade.words}. Simulated task {sim.index + 1}.",
            category=self.categories[trade.slug],
            postal_code=customer.postal_code,
            budget_type=Task.BudgetType.HOURLY if hourly else Task.BudgetType.FIXED,
            budget_cents=budget,
            estimated_hours=max(1, round(sim.hours)) if hourly else None,
            urgency=urgency,
            latitude=lat,
            longitude=lon,
        )
        if rng.random() < 0.4:
            day = self._local(now + dt.timedelta(days=max(1.0, float(rng.uniform(0.5, 2.0)) * lead)))
            hour = int(rng.choice([8, 9, 13, 17, 18]))
            start = day.replace(hour=hour, minute=0, second=0, microsecond=0)
            data.schedule_type = Task.ScheduleType.WINDOW
            data.window_start = start
            data.window_end = start + dt.timedelta(hours=max(3, math.ceil(sim.hours) + 1))
        else:
            data.schedule_type = Task.ScheduleType.FLEXIBLE
            data.deadline = now + dt.timedelta(days=lead + float(rng.uniform(1, 10)))
        sim.task = task_services.task_create(customer=customer.user, data=data, photos=[_photo(rng)])
        self.counts["tasks"] += 1

        # Who sees it: contractors of the trade with the task inside their radius.
        d = _haversine_km(sim.task.latitude, sim.task.longitude, self.k_lat, self.k_lon)
        in_range = [
            int(i)
            for i in np.argsort(d, kind="stable")
            if d[i] <= self.k_radius[i] and sim.trade in self.contractors[i].trades
        ]
        shown, viewed = [], []
        for i in in_range:
            contractor = self.contractors[i]
            sim.distances[i] = float(d[i])
            if rng.random() > 0.65 + 0.35 * contractor.eagerness:
                continue  # didn't open Find work while it was new
            shown.append(i)
            fit = self._fit(contractor, sim, float(d[i]))
            if rng.random() < _sigmoid(fit + 2.5):
                if rng.random() < _sigmoid(2.0 * fit + 3.2):
                    delay_h = float(rng.exponential(2.0 + 10.0 * (1 - contractor.eagerness)))
                    self._at(now + dt.timedelta(hours=delay_h), "offer", (sim, i))
                    sim.offer_delay_h[i] = delay_h
                else:
                    viewed.append(i)
        # What the Find work page and the task page would log for them.
        for pos, i in enumerate(shown, start=1):
            matching_services.log_shown([sim.task], self.contractors[i].user, offset=pos - 1)
        for i in viewed:
            matching_services.log_event(sim.task, self.contractors[i].user, K.VIEWED)
        decide_after = {"flexible": 30.0, "soon": 14.0, "urgent": 5.0}[urgency] * float(rng.uniform(0.7, 1.4))
        decide_at = now + dt.timedelta(hours=decide_after)
        if sim.task.window_start is not None:
            decide_at = min(decide_at, sim.task.window_start - dt.timedelta(hours=3))
        self._at(decide_at, "decide", sim)

    def _fit(self, contractor: SimContractor, sim: SimTask, distance_km: float) -> float:
        """How much this contractor wants this task (hidden): skill in the
        trade, pay against their rate, distance against their radius, the
        time against their hours, how busy they already are."""
        task = sim.task
        assert task is not None
        per_hour = task.budget_cents if task.budget_type == Task.BudgetType.HOURLY else task.budget_cents / sim.hours
        pay = max(-1.0, min(0.5, math.log(per_hour / contractor.rate_cents)))
        when = task.window_start or task.deadline
        if task.window_start is not None:
            time_fit = 0.6 if self._free(contractor, task.window_start) else -1.8
        else:
            time_fit = 0.3
        week = self._local(when).isocalendar()[:2]
        load = contractor.booked_weeks.get(week, 0)
        busy = -1.5 * max(0, load - contractor.capacity + 1)
        return (
            2.5 * (contractor.skill[sim.trade] - 0.55)
            + 1.6 * pay
            - 2.0 * (distance_km / contractor.radius_km) ** 1.5
            + time_fit
            + busy
            + 0.8 * (contractor.eagerness - 0.5)
            + float(self.rng.logistic(0, 0.5))
        )

    def _log(self, task: Task, contractor: SimContractor, kinds: list[str]) -> None:
        """Log these outcomes unless the product's own hooks already did (they
        run on commit, so inside a test's transaction they have not)."""
        have = set(
            MatchEvent.objects.filter(task=task, contractor=contractor.user, kind__in=kinds).values_list(
                "kind", flat=True
            )
        )
        for kind in kinds:
            if kind not in have:
                matching_services.log_event(task, contractor.user, kind)

    def _on_offer(self, payload: tuple[SimTask, int]) -> None:
        sim, i = payload
        task, contractor, rng = sim.task, self.contractors[payload[1]], self.rng
        assert task is not None
        if sim.outcome != "open":
            return
        now = self.clock.now
        noise = float(np.exp(rng.normal(0, 0.06)))
        if task.budget_type == Task.BudgetType.HOURLY:
            price = int(round(contractor.rate_cents * noise / 100) * 100)
            price = min(max(price, task_services.MIN_HOURLY_RATE_CENTS), task_services.MAX_HOURLY_RATE_CENTS)
        else:
            perceived = sim.hours * float(np.exp(rng.normal(0, 0.15)))
            price = max(
                task_services.MIN_FIXED_BUDGET_CENTS, int(round(contractor.rate_cents * perceived * noise / 500) * 500)
            )
        if task.window_start is not None:
            start = task.window_start
        else:
            start = self._next_free(contractor, now + dt.timedelta(hours=12), task.deadline)
        if start is not None and start <= now:
            return  # too late for this window
        try:
            offer = task_services.offer_create(task, by=contractor.user, price_cents=price, proposed_start=start)
        except ApplicationError as exc:  # booked or cancelled meanwhile
            self.counts[f"offer_refused_{exc.code}"] += 1
            return
        sim.offers[i] = offer
        self._log(task, contractor, [K.VIEWED, K.OFFERED])
        self.counts["offers"] += 1

    def _on_decide(self, sim: SimTask) -> None:
        task, customer, rng = sim.task, sim.customer, self.rng
        assert task is not None
        if sim.outcome != "open":
            return
        now = self.clock.now
        if not sim.offers:
            sim.decisions_left -= 1
            late = task.window_start is not None and task.window_start - now < dt.timedelta(hours=6)
            if sim.decisions_left > 0 and not late:
                self._at(now + dt.timedelta(hours=24), "decide", sim)
            else:
                self._cancel_open(sim, "No offers came in time.")
            return
        budget_total = task.budget_total_cents
        best, best_u = None, -1.2 + float(rng.gumbel(0, 0.3))
        for i, offer in sim.offers.items():
            contractor = self.contractors[i]
            total = offer.price_cents * (task.estimated_hours or 1)
            bayes, _raw, count = contractor_rating(contractor.user)
            past = customer.history.get(i)
            u = (
                -3.0 * customer.w_price * math.log(total / budget_total)
                + 2.5 * customer.w_rating * (bayes - 4.0) * min(1.0, 0.3 + count / 5)
                - 3.0 * customer.w_distance * sim.distances[i] / 10
                - 1.5 * customer.w_speed * sim.offer_delay_h[i] / 24
                + 0.8 * (contractor.quality - 0.6)  # the offer's message and profile read professional
                + (2.0 * customer.loyalty if past is not None and past >= 4 else 0.0)
                - (2.0 if past is not None and past <= 2 else 0.0)
                + float(rng.gumbel(0, 0.35))
            )
            if u > best_u:
                best, best_u = i, u
        if best is None:
            self._cancel_open(sim, "The offers did not suit me.")
            return
        contractor = self.contractors[best]
        offer = sim.offers[best]
        try:
            escrow = payment_services.checkout_start(offer, by=customer.user)
            result = get_gateway().confirm(escrow.payment_intent_id, TEST_CARD)
            payment_services.escrow_funded(
                escrow,
                payment_intent_id=result.id,
                charge_id=result.charge_id or "",
                amount_cents=result.amount_cents,
            )
        except ApplicationError as exc:
            self.counts[f"hire_refused_{exc.code}"] += 1
            self._cancel_open(sim, "Booking did not go through.")
            return
        task.refresh_from_db()
        if task.status != Task.Status.ASSIGNED or task.contractor_id != contractor.user.pk:
            self.counts["hire_not_booked"] += 1
            return
        sim.hired, sim.outcome = best, "hired"
        self._log(task, contractor, [K.ACCEPTED])
        self.counts["hired"] += 1
        start = offer.proposed_start or task.window_start or (task.deadline - dt.timedelta(hours=sim.hours + 2))
        start = max(start, now + dt.timedelta(hours=1))
        sim.start = start
        contractor.booked_weeks[self._local(start).isocalendar()[:2]] += 1
        if rng.random() < 0.8 * (1 - contractor.reliability):
            self._at(now + (start - now) * float(rng.uniform(0.2, 0.9)), "contractor_cancel", sim)
        else:
            late_min = max(-10.0, float(rng.normal(70 * (1 - contractor.punctuality), 12)))
            self._at(start + dt.timedelta(minutes=late_min), "check_in", sim)

    def _cancel_open(self, sim: SimTask, reason: str) -> None:
        assert sim.task is not None
        try:
            task_services.task_cancel(sim.task, by=sim.customer.user, reason=reason)
        except ApplicationError as exc:
            self.counts[f"cancel_refused_{exc.code}"] += 1
            return
        sim.outcome = "cancelled"
        self.counts["cancelled_unhired"] += 1

    def _on_contractor_cancel(self, sim: SimTask) -> None:
        contractor = self.contractors[sim.hired]  # type: ignore[index]
        assert sim.task is not None
        task_services.task_cancel(sim.task, by=contractor.user, reason="Something came up, sorry.")
        sim.outcome = "contractor_cancelled"
        self.counts["contractor_cancelled"] += 1

    def _on_check_in(self, sim: SimTask) -> None:
        contractor = self.contractors[sim.hired]  # type: ignore[index]
        task = sim.task
        assert task is not None
        task_services.task_check_in(
            task, by=contractor.user, latitude=task.latitude + 0.0002, longitude=task.longitude, accuracy_m=15
        )
        self._at(self.clock.now + dt.timedelta(hours=sim.hours * float(np.exp(self.rng.normal(0, 0.2)))), "proof", sim)

    def _on_proof(self, sim: SimTask) -> None:
        contractor = self.contractors[sim.hired]  # type: ignore[index]
        task_services.task_submit_proof(sim.task, by=contractor.user, note="Done.", files=[_photo(self.rng)])
        self._at(self.clock.now + dt.timedelta(hours=float(self.rng.uniform(1, 30))), "approve", sim)

    def _on_approve(self, sim: SimTask) -> None:
        contractor, rng = self.contractors[sim.hired], self.rng  # type: ignore[index]
        task = sim.task
        assert task is not None
        task_services.task_approve(task, by=sim.customer.user)
        sim.outcome = "completed"
        self._log(task, contractor, [K.COMPLETED])
        self.counts["completed"] += 1
        # How it went (hidden): care, skill in this trade, and turning up on time.
        started = task.started_at or self.clock.now
        on_time = 1.0 if sim.start is None or started <= sim.start + dt.timedelta(minutes=15) else 0.3
        score = (
            0.45 * contractor.quality + 0.35 * contractor.skill[sim.trade] + 0.2 * on_time + float(rng.normal(0, 0.08))
        )
        sim.stars = 5 if score > 0.74 else 4 if score > 0.62 else 3 if score > 0.5 else 2 if score > 0.4 else 1
        if rng.random() < 0.85:
            self._at(self.clock.now + dt.timedelta(hours=float(rng.uniform(1, 96))), "review", sim)
        if rng.random() < 0.6:
            self._at(self.clock.now + dt.timedelta(hours=float(rng.uniform(1, 120))), "contractor_review", sim)

    def _on_review(self, sim: SimTask) -> None:
        contractor = self.contractors[sim.hired]  # type: ignore[index]
        stars = sim.stars or 3
        task = sim.task
        assert task is not None
        review_services.review_submit(
            task=task,
            by=sim.customer.user,
            stars=stars,
            sub_ratings={"quality": stars, "punctuality": 5 if contractor.punctuality > 0.7 else 3},
        )
        sim.customer.history[contractor.index] = stars  # "well_reviewed" is logged by the product on publication
        self.counts["reviews"] += 1

    def _on_contractor_review(self, sim: SimTask) -> None:
        contractor = self.contractors[sim.hired]  # type: ignore[index]
        review_services.review_submit(task=sim.task, by=contractor.user, stars=int(self.rng.choice([4, 5, 5])))

    def _trace(self) -> None:
        for sim in self.tasks:
            self.trace.append(
                (
                    sim.index,
                    sim.customer.index,
                    sim.trade,
                    sim.task.budget_cents if sim.task else None,
                    sim.outcome,
                    sim.hired,
                    sorted((i, o.price_cents) for i, o in sim.offers.items()),
                    sim.stars,
                )
            )


def simulate(
    *,
    seed: int = 1,
    months: int = 4,
    customers: int = 300,
    contractors: int = 150,
    tasks: int | None = None,
    end: dt.datetime | None = None,
    metros: tuple[Metro, ...] = METROS,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Create a simulated market in this database and play its history.

    Refuses (``ApplicationError(code="already_simulated")``) if a market with
    this seed is already there. Not one transaction: months of activity
    commit as they happen, as they would in production."""
    market = Market(
        seed=seed,
        months=months,
        customers=customers,
        contractors=contractors,
        tasks=tasks,
        end=end,
        metros=metros,
        progress=progress,
    )
    return market.run()
