"""Demo tasks for ``make run``: jobs in every state around San Francisco.

Called by ``manage.py seed_demo`` (after ``accounts.demo`` has made the demo
people) as ``seed(stdout)``. Every task is built through ``tasks.services``
exactly as the pages would build it (post with a photo, offers, accept or
instant booking, check-in, proof, approval, cancellation, and a dispute
through ``reputation.disputes``), so its events,
photos and invariants are real. Each task is made in one transaction; a task
that already exists (same customer and title) is left exactly as it is, so a
second run changes nothing.

Maya Chen posts nothing: she is the demo's brand-new customer, and she stays
deletable (tasks protect their customer) so an admin can remove and re-seed
her. The emails these steps would send are not sent: the console backend of
``make run`` would bury the demo logins under sixty messages.

Photos are drawn with Pillow here (no files from the internet). Bookings are
paid through the simulated gateway with its test card (escrow, ledger and, for
finished jobs, the release and pending payout are real).
"""

from __future__ import annotations

import datetime as dt
import io
import random
import zlib
from dataclasses import dataclass
from typing import TextIO

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.utils import override_settings
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from accounts.models import User
from core.files import atomic_with_files
from payments import accounts as payment_accounts
from payments import services as payment_services
from payments.gateway import get_gateway
from payments.models import SavedPaymentMethod

from . import services
from .models import Category, Offer, Task

S = Task.Status

# Trade colours for the drawn photos.
PALETTE = {
    "plumbing": (52, 120, 178),
    "electrical": (222, 170, 40),
    "carpentry": (150, 100, 60),
    "handyman": (110, 110, 120),
    "painting": (190, 90, 140),
    "cleaning": (70, 170, 160),
    "moving-help": (200, 120, 60),
    "appliance-repair": (90, 130, 90),
    "hvac": (200, 70, 60),
    "landscaping": (70, 140, 60),
    "furniture-assembly": (160, 130, 90),
    "roofing": (120, 80, 80),
}


@dataclass(frozen=True)
class DemoOffer:
    contractor: str  # email
    price_cents: int
    message: str
    days_ahead: int = 2


@dataclass(frozen=True)
class DemoTask:
    title: str
    description: str
    customer: str  # email
    trade: str  # category slug
    postal_code: str
    address: str
    budget_cents: int
    status: str  # the state the demo leaves it in
    estimated_hours: int | None = None  # set: an hourly task
    window_in_days: int | None = None  # set: a 3-hour window that day, else a deadline
    deadline_in_days: int = 14
    urgency: str = Task.Urgency.FLEXIBLE
    instant_book: bool = False
    offers: tuple[DemoOffer, ...] = ()
    # From assigned on: the first offer wins, or this contractor books instantly.
    instant_booker: str = ""
    changes_requested: str = ""  # set: proof sent back once with this reason
    cancelled_by: str = ""  # email; set for cancelled tasks
    cancel_reason: str = ""
    # Disputed tasks: the customer opens a dispute on the submitted work
    # (reputation.disputes), with this reason (Dispute.Reason) and account.
    dispute_reason: str = ""
    dispute_text: str = ""


JAMES, PRIYA, LEO = "james@bittietasks.local", "priya@bittietasks.local", "leo@bittietasks.local"
ROSA, MARCUS, ANA = "rosa@bittietasks.local", "marcus@bittietasks.local", "ana@bittietasks.local"
TOM, GRACE = "tom@bittietasks.local", "grace@bittietasks.local"


TASKS: list[DemoTask] = [
    # --- draft -------------------------------------------------------------------
    DemoTask(
        "Install a ceiling fan in the living room",
        "There is a light fixture in the middle of the living room ceiling. I'd like it swapped for a fan "
        "with a light (fan already bought, in the box). Ceiling is about 9 ft.",
        PRIYA, "electrical", "94107", "600 Minnesota St, Apt 4", 22_000, S.DRAFT,
    ),
    # --- open, spread around the city ----------------------------------------------
    DemoTask(
        "Kitchen sink drains slowly",
        "The double kitchen sink takes minutes to drain and gurgles. Plunger didn't help. Probably a clog "
        "further down the line.",
        JAMES, "plumbing", "94122", "1450 Irving St", 15_000, S.OPEN,
        urgency=Task.Urgency.SOON, deadline_in_days=5,
        offers=(DemoOffer(ROSA, 14_000, "I can snake the line Thursday morning; camera inspection included."),),
    ),
    DemoTask(
        "Replace two light switches with dimmers",
        "Two standard switches in the dining room should become dimmers (LED-compatible). Dimmers are here.",
        PRIYA, "electrical", "94103", "1200 Folsom St", 18_000, S.OPEN,
        window_in_days=3, instant_book=True,
    ),
    DemoTask(
        "Assemble a PAX wardrobe",
        "One IKEA PAX wardrobe, 200 cm wide with sliding doors, needs assembling and anchoring to the wall.",
        JAMES, "furniture-assembly", "94115", "2100 Pine St", 6_000, S.OPEN,
        estimated_hours=3, instant_book=True, deadline_in_days=10,
    ),
    DemoTask(
        "Paint the back bedroom",
        "About 12 x 11 ft, walls only, one colour change (light grey to white). Paint and tape provided.",
        PRIYA, "painting", "94110", "3100 22nd St", 65_000, S.OPEN,
        deadline_in_days=21,
        offers=(
            DemoOffer(ANA, 60_000, "Two coats, done in a day. I bring drop cloths and rollers.", 6),
            DemoOffer(LEO, 58_000, "Free next week; I'll patch the nail holes too.", 8),
        ),
    ),
    DemoTask(
        "Deep clean before move-out",
        "One-bedroom apartment, move-out clean: oven, fridge, bathroom, floors and inside the cabinets.",
        LEO, "cleaning", "94133", "500 Columbus Ave", 4_500, S.OPEN,
        estimated_hours=5, window_in_days=5, urgency=Task.Urgency.SOON,
        offers=(DemoOffer(GRACE, 4_500, "Supplies included. I can bring a helper to finish in three hours.", 5),),
    ),
    DemoTask(
        "Fix a running toilet",
        "The upstairs toilet keeps running after every flush. Flapper or fill valve, I guess.",
        PRIYA, "plumbing", "94109", "1500 Polk St", 12_000, S.OPEN,
        urgency=Task.Urgency.URGENT, deadline_in_days=1, instant_book=True,
    ),
    DemoTask(
        "Help carry a sofa up two flights",
        "A three-seat sofa is in the lobby and needs to go up two narrow flights of stairs. Two people needed.",
        JAMES, "moving-help", "94117", "800 Haight St", 9_000, S.OPEN,
        window_in_days=2, urgency=Task.Urgency.SOON,
        offers=(DemoOffer(TOM, 9_000, "I'll bring a friend and straps.", 2),),
    ),
    DemoTask(
        "Fridge stopped cooling",
        "Side-by-side fridge: the freezer is fine, the fridge side is warm. Fan sounds normal.",
        LEO, "appliance-repair", "94124", "1700 Oakdale Ave", 20_000, S.OPEN,
        urgency=Task.Urgency.URGENT, deadline_in_days=2,
        offers=(DemoOffer(MARCUS, 18_500, "Sounds like the damper or a frosted evaporator. Tomorrow at 10?", 1),),
    ),
    DemoTask(
        "Trim an overgrown hedge",
        "A 20 ft privet hedge along the front path, about 6 ft tall, needs trimming and the clippings hauled.",
        JAMES, "landscaping", "94118", "400 Clement St", 14_000, S.OPEN,
        deadline_in_days=14,
        offers=(DemoOffer(LEO, 13_000, "I'll take the clippings to the green waste.", 4),),
    ),
    # --- booked and beyond --------------------------------------------------------------
    DemoTask(
        "Mount a TV on a brick wall",
        "55 inch TV, wall mount bought. The wall is brick, so it needs the right anchors and a hammer drill.",
        JAMES, "handyman", "94121", "3500 Balboa St", 15_000, S.ASSIGNED,
        window_in_days=4,
        offers=(
            DemoOffer(TOM, 14_000, "I have masonry anchors and a hammer drill. Cables hidden in a raceway.", 4),
            DemoOffer(ANA, 17_000, "Happy to do it; I can also add a shelf underneath.", 5),
        ),
    ),
    DemoTask(
        "Assemble a bunk bed",
        "Kids' bunk bed from a flat-pack, with the safety rails. Instructions are in the box.",
        PRIYA, "furniture-assembly", "94114", "4000 18th St", 7_000, S.ASSIGNED,
        estimated_hours=2, instant_book=True, deadline_in_days=6, instant_booker=ANA,
    ),
    DemoTask(
        "Replace a leaking water heater valve",
        "The pressure relief valve on the water heater drips into the pan. Heater is 6 years old, 40 gallons.",
        LEO, "plumbing", "94112", "900 Geneva Ave", 25_000, S.IN_PROGRESS,
        urgency=Task.Urgency.SOON, deadline_in_days=3,
        offers=(DemoOffer(ROSA, 23_000, "I carry the valve in the van; 1-2 hours including a flush.", 1),),
    ),
    DemoTask(
        "Patch and paint hallway scuffs",
        "The hallway has scuffs and two dents near the front door. Patch, sand and repaint to match (paint here).",
        JAMES, "painting", "94131", "100 Diamond St", 30_000, S.IN_PROGRESS,
        deadline_in_days=9,
        offers=(DemoOffer(ANA, 28_000, "I'll match the sheen; half a day.", 2),),
        changes_requested="The patch by the front door still shows through the paint. Another coat, please.",
    ),
    DemoTask(
        "Repair a sticking front door",
        "The front door sticks at the top corner since the rains. Needs planing or the hinges adjusted.",
        PRIYA, "carpentry", "94109", "1600 Pacific Ave", 16_000, S.SUBMITTED,
        deadline_in_days=8,
        offers=(DemoOffer(ANA, 15_000, "Likely the top hinge; I'll plane and reseal the edge if needed.", 2),),
    ),
    DemoTask(
        "Furnace tune-up before winter",
        "Gas furnace, about 10 years old. Yearly service: filter, burners, igniter, and a CO check.",
        JAMES, "hvac", "94116", "2200 Taraval St", 18_000, S.COMPLETED,
        deadline_in_days=20,
        offers=(DemoOffer(ROSA, 16_500, "Full tune-up with a combustion analysis report.", 3),),
    ),
    DemoTask(
        "Replace a scorched kitchen outlet",
        "One kitchen outlet has scorch marks and stopped working. Should be a GFCI.",
        LEO, "electrical", "94127", "50 West Portal Ave", 14_000, S.COMPLETED,
        urgency=Task.Urgency.SOON, deadline_in_days=4,
        offers=(DemoOffer(MARCUS, 13_500, "I'll check the circuit too and fit a GFCI outlet.", 1),),
    ),
    DemoTask(
        "Clean out the gutters",
        "Two-storey house, front and back gutters full of leaves. Downspouts may be blocked.",
        PRIYA, "roofing", "94107", "700 Arkansas St", 20_000, S.CANCELLED,
        deadline_in_days=12,
        offers=(DemoOffer(LEO, 19_000, "Ladder and gutter scoop ready; I'll flush the downspouts.", 5),),
        cancelled_by=PRIYA,
        cancel_reason="The building manager is having all the gutters done next week.",
    ),
    DemoTask(
        "Window cleaning, inside and out",
        "Twelve windows in a flat on the second floor. Outside ones reachable from the fire escape.",
        JAMES, "cleaning", "94122", "1800 Judah St", 12_000, S.CANCELLED,
        window_in_days=6,
        offers=(DemoOffer(GRACE, 11_000, "I'll bring squeegees and a pole; about three hours.", 6),),
        cancelled_by=GRACE,
        cancel_reason="Sorry, I've hurt my wrist and can't work that week. Please book someone else.",
    ),
    # --- disputed ---------------------------------------------------------------------
    DemoTask(
        "Regrout the shower tiles",
        "The grout in the walk-in shower is cracked and stained. Rake it out, regrout (white) and reseal the "
        "corners and the tray with silicone.",
        JAMES, "handyman", "94117", "1300 Fulton St", 24_000, S.DISPUTED,
        deadline_in_days=7,
        offers=(DemoOffer(TOM, 22_000, "Epoxy grout, so it won't stain again. One day plus a day to cure.", 2),),
        dispute_reason="poor_quality",
        dispute_text="Two days after the job the new grout is cracking in both back corners and the silicone "
        "along the tray has gaps. I'd like it redone or part of the money back.",
    ),
]


def demo_photo(title: str, trade: str, *, done: bool = False) -> SimpleUploadedFile:
    """A drawn 800x600 JPEG: a tinted room, a work area and the job's title.

    The room's layout is laid out from the title (and before/after), so every
    demo photo is its own picture: the proof-photo check's duplicate finder
    (tasks.phash) would rightly fail reused pictures.
    """
    rng = random.Random(zlib.crc32(f"{title}|{done}".encode()))
    colour = PALETTE.get(trade, (120, 120, 120))
    wall = tuple(min(255, c + rng.randint(40, 120)) for c in colour)
    image = Image.new("RGB", (800, 600), wall)
    draw = ImageDraw.Draw(image)
    floor_y = rng.randint(330, 470)
    draw.rectangle((0, floor_y, 800, 600), fill=tuple(max(0, c - rng.randint(20, 80)) for c in colour))  # floor
    for _ in range(rng.randint(3, 6)):  # cupboards, shelves, pictures
        x, y = rng.randint(0, 700), rng.randint(80, floor_y)
        w, h = rng.randint(60, 260), rng.randint(40, 220)
        shade = tuple(rng.randint(30, 230) for _ in range(3))
        draw.rectangle((x, y, x + w, y + h), fill=shade, outline=(40, 40, 40), width=3)
    wx, wy = rng.randint(380, 620), rng.randint(90, 200)
    draw.rectangle((wx, wy, wx + 160, wy + 160), fill=(235, 240, 245), outline=(60, 60, 60), width=6)  # window
    draw.line((wx + 80, wy, wx + 80, wy + 160), fill=(60, 60, 60), width=4)
    cx, cy = rng.randint(60, 360), rng.randint(200, 330)
    draw.ellipse((cx, cy, cx + 260, cy + 220), fill=colour, outline=(30, 30, 30), width=5)  # the thing to fix
    if done:
        draw.line((cx + 60, cy + 110, cx + 120, cy + 170), fill=(40, 160, 60), width=18)
        draw.line((cx + 120, cy + 170, cx + 220, cy + 40), fill=(40, 160, 60), width=18)
    else:
        draw.line((cx + 50, cy + 50, cx + 210, cy + 170), fill=(200, 40, 40), width=12)
    font = ImageFont.load_default(size=34)
    draw.rectangle((0, 0, 800, 70), fill=(255, 255, 255))
    draw.text((20, 16), ("Done: " if done else "") + title[:40], fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return SimpleUploadedFile("demo.jpg", out.getvalue(), content_type="image/jpeg")


def _at(days: int, hour: int) -> dt.datetime:
    local = timezone.localtime() + dt.timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def _input(spec: DemoTask, category: Category) -> services.TaskInput:
    data = services.TaskInput(
        title=spec.title,
        description=spec.description,
        category=category,
        postal_code=spec.postal_code,
        address=spec.address,
        budget_type=Task.BudgetType.HOURLY if spec.estimated_hours else Task.BudgetType.FIXED,
        budget_cents=spec.budget_cents,
        estimated_hours=spec.estimated_hours,
        urgency=spec.urgency,
        instant_book=spec.instant_book,
    )
    if spec.window_in_days is not None:
        data.schedule_type = Task.ScheduleType.WINDOW
        data.window_start = _at(spec.window_in_days, 9)
        data.window_end = _at(spec.window_in_days, 12)
    else:
        data.schedule_type = Task.ScheduleType.FLEXIBLE
        data.deadline = _at(spec.deadline_in_days, 18)
    return data


@atomic_with_files()
def _create_task(spec: DemoTask, people: dict[str, User], category: Category) -> Task:
    """Walk one task through the services to ``spec.status``. The services'
    transactions nest in this one, so an interrupted run leaves no half task
    (and no photo files: ``core.files.atomic_with_files``)."""
    customer = people[spec.customer]
    task = services.task_create(
        customer=customer,
        data=_input(spec, category),
        photos=[demo_photo(spec.title, spec.trade)],
        publish=spec.status != S.DRAFT,
    )
    if spec.status == S.DRAFT:
        return task
    offers: list[Offer] = [
        services.offer_create(
            task,
            by=people[o.contractor],
            price_cents=o.price_cents,
            message=o.message,
            proposed_start=_at(o.days_ahead, 9),
        )
        for o in spec.offers
    ]
    if spec.status == S.OPEN:
        return task
    # A customer cancels while the task is open; a contractor only once hired.
    if spec.status != S.CANCELLED or spec.cancelled_by != spec.customer:
        if spec.instant_booker:
            _demo_card(customer)
            payment_services.instant_book_start(task, by=people[spec.instant_booker], proposed_start=_at(2, 9))
        else:
            _demo_pay(payment_services.checkout_start(offers[0], by=customer))
        task.refresh_from_db()
    if spec.status in (S.IN_PROGRESS, S.SUBMITTED, S.COMPLETED, S.DISPUTED):
        contractor = task.contractor
        # Checked in from the street outside (about 30 m off the ZIP point).
        services.task_check_in(
            task, by=contractor, latitude=task.latitude + 0.0003, longitude=task.longitude, accuracy_m=12
        )
        if spec.changes_requested:
            services.task_submit_proof(
                task,
                by=contractor,
                note="Patched, sanded and painted. Let it dry for a day.",
                files=[demo_photo(spec.title, spec.trade, done=True)],
            )
            services.task_request_changes(task, by=customer, reason=spec.changes_requested)
        elif spec.status in (S.SUBMITTED, S.COMPLETED, S.DISPUTED):
            services.task_submit_proof(
                task,
                by=contractor,
                note="All done. Photos of the finished work attached; tested before I left.",
                files=[demo_photo(spec.title, spec.trade, done=True)],
            )
            if spec.status == S.COMPLETED:
                services.task_approve(task, by=customer)
    if spec.status == S.CANCELLED:
        services.task_cancel(task, by=people[spec.cancelled_by], reason=spec.cancel_reason)
    if spec.status == S.DISPUTED:
        # Disputes belong to reputation: opened through its service (which
        # moves the task to disputed and freezes the escrow), as the page does.
        from reputation import disputes

        disputes.dispute_open(task, by=customer, reason=spec.dispute_reason, text=spec.dispute_text)
    task.refresh_from_db()
    if task.status != spec.status:  # a services change the demo didn't expect: say so loudly
        raise RuntimeError(f"Demo task {spec.title!r} ended {task.status}, not {spec.status}")
    return task


DEMO_CARD = "4242424242424242"  # the simulated gateway's test card that succeeds


def _demo_card(customer: User) -> None:
    """The customer's saved card for instant booking, through the gateway's set-up flow."""
    if not SavedPaymentMethod.objects.filter(user=customer).exists():
        payment_accounts.payment_method_save(customer, card_number=DEMO_CARD)


def _demo_pay(escrow) -> None:
    """Pay a checkout with the test card through the simulated gateway, as the
    checkout page does. The gateway's signed ``payment_intent.succeeded``
    webhook is stored now but handled after this task's transaction commits;
    the demo needs the booking inside it, so it does what that handler does
    (``escrow_funded``, idempotent: the webhook then finds it done)."""
    result = get_gateway().confirm(escrow.payment_intent_id, DEMO_CARD)
    payment_services.escrow_funded(
        escrow, payment_intent_id=result.id, charge_id=result.charge_id or "", amount_cents=result.amount_cents
    )


def seed(stdout: TextIO) -> list[Task]:
    """Create the demo tasks that are missing and say how many there are."""
    emails = {spec.customer for spec in TASKS} | {o.contractor for spec in TASKS for o in spec.offers}
    emails |= {spec.instant_booker for spec in TASKS if spec.instant_booker}
    emails |= {spec.cancelled_by for spec in TASKS if spec.cancelled_by}
    people = {user.email: user for user in User.objects.filter(email__in=emails)}
    missing = sorted(emails - people.keys())
    if missing:
        raise RuntimeError(f"Demo people are missing ({', '.join(missing)}): seed accounts.demo first.")
    categories = {c.slug: c for c in Category.objects.filter(slug__in={spec.trade for spec in TASKS})}

    tasks = []
    created_count = 0
    # The emails these steps send would only flood make run's console.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        for spec in TASKS:
            task = Task.objects.filter(customer=people[spec.customer], title=spec.title).first()
            if task is None:
                task = _create_task(spec, people, categories[spec.trade])
                created_count += 1
            tasks.append(task)
    stdout.write(f"Demo tasks: {created_count} created, {len(TASKS) - created_count} already there.\n")
    return tasks
