"""The marketplace's core loop in real Chromium: a customer posts a task with
a photo, a contractor finds it and offers, the customer accepts and pays on the
(simulated) checkout, the contractor checks in (with the browser's position) and sends proof with a
photo, the customer approves. Two browser contexts, one per person; a
screenshot of every step at phone width, and the key pages at desktop width."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from payments.models import Escrow, Payout
from tasks.models import CheckIn, Offer, Task
from tests.browser.conftest import ARTIFACTS, PHONE, shot
from tests.factories import PASSWORD, CategoryFactory, ContractorProfileFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# 24th St at Treat Ave, in the Mission: the job, and where the pro's phone says he is.
ON_SITE = {"latitude": 37.7526, "longitude": -122.4135}


def jpeg_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def phone_shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)


def log_in(page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")


def test_post_offer_accept_check_in_proof_approve(browser, browser_context_args, live_server):
    plumbing = CategoryFactory(name="Plumbing", slug="plumbing", sort_order=1)
    CategoryFactory(name="Electrical", slug="electrical", sort_order=2)
    UserFactory(email="dana@example.com", full_name="Dana Lee")
    ContractorProfileFactory(
        user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-builder", trades=[plumbing]
    )
    base = live_server.url

    dana_context = browser.new_context(**browser_context_args)
    bob_context = browser.new_context(**browser_context_args, geolocation=ON_SITE, permissions=["geolocation"])
    dana, bob = dana_context.new_page(), bob_context.new_page()
    for page in (dana, bob):
        page.set_default_timeout(15_000)

    # 1. Dana posts a task with a photo.
    log_in(dana, base, "dana@example.com")
    dana.get_by_role("link", name="Post a task").first.click()
    dana.wait_for_url("**/tasks/new")
    expect(dana.get_by_role("heading", name="Post a task")).to_be_visible()
    dana.get_by_label("What do you need done?").fill("Fix the dripping kitchen tap")
    dana.get_by_label("Trade").select_option(label="Plumbing")
    dana.get_by_label("Describe the job").fill("The kitchen tap drips all night. Probably a worn washer or cartridge.")
    dana.get_by_label("Photos of the job").set_input_files(
        files=[{"name": "tap.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((70, 110, 190))}]
    )
    dana.get_by_label("Street address").fill("3250 24th St")
    dana.get_by_label("ZIP code").fill("94110")
    dana.get_by_label("Fixed price").check()
    dana.get_by_label("Amount (US dollars)").fill("120")
    dana.get_by_label("Flexible, by a deadline").check()
    expect(dana.get_by_label("Window starts")).to_be_hidden()
    deadline = timezone.localtime(timezone.now() + dt.timedelta(days=5)).replace(hour=18, minute=0)
    dana.get_by_label("Done by").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    dana.get_by_label("Urgency").select_option(label="Within a few days")
    shot(dana, "task-01-post-form")
    dana.get_by_role("button", name="Post task").click()

    task = Task.objects.get()
    dana.wait_for_url(f"**/tasks/{task.public_id}")
    main = dana.locator("main")
    expect(main).to_contain_text("Your task is posted.")
    expect(dana.get_by_role("heading", name="Fix the dripping kitchen tap")).to_be_visible()
    expect(dana.locator(".task-head .status")).to_have_text("Open")
    expect(dana.locator(".steps [aria-current=step]")).to_have_text("Posted")
    expect(main).to_contain_text("$120.00 fixed price")
    expect(main).to_contain_text("3250 24th St, San Francisco, CA 94110")
    expect(dana.locator("#timeline")).to_contain_text("Posted · Dana Lee")
    thumb = dana.locator(".photo-strip img").first
    expect(thumb).to_be_visible()
    dana.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.evaluate("img => img.naturalWidth") == 400
    phone_shot(dana, "task-02-posted")

    # 2. Bob finds it in Find work, nearby, and makes an offer.
    log_in(bob, base, "bob@example.com")
    bob.get_by_role("link", name="Find work").click()
    bob.wait_for_url("**/tasks/find")
    card = bob.locator(".task-card", has_text="Fix the dripping kitchen tap")
    expect(card).to_contain_text("Plumbing · San Francisco")
    expect(card).to_contain_text("km away")
    expect(card).to_contain_text("$120.00 fixed price")
    shot(bob, "task-03-find-work")
    bob.get_by_role("searchbox", name="Search").fill("tap")
    bob.get_by_role("button", name="Show tasks").click()
    expect(bob.locator(".task-card")).to_have_count(1)
    bob.get_by_role("link", name="Fix the dripping kitchen tap").click()
    bob.wait_for_url(f"**/tasks/{task.public_id}")
    expect(bob.locator("#task-location")).to_contain_text("Near San Francisco, CA 94110 (about 1 km)")
    expect(bob.locator("main")).not_to_contain_text("3250 24th St")
    bob.get_by_label("Your price (US dollars)").fill("110")
    bob.get_by_label("Message to the customer").fill("I can come Thursday morning with a new cartridge.")
    phone_shot(bob, "task-04-offer-form")
    bob.get_by_role("button", name="Send offer").click()
    expect(bob.locator("main")).to_contain_text("Your offer is sent.")
    expect(bob.locator("main")).to_contain_text("You offered $110.00")
    phone_shot(bob, "task-05-offer-sent")
    offer = Offer.objects.get()
    assert (offer.contractor.email, offer.price_cents, offer.status) == ("bob@example.com", 11000, "pending")

    # 3. Dana compares and accepts.
    dana.reload()
    offers = dana.locator("#offers")
    expect(offers).to_contain_text("1 offer")
    expect(offers).to_contain_text("Bob Builder")
    expect(offers).to_contain_text("$110.00 total for the job")
    expect(offers).to_contain_text("$85.00/hour")
    expect(offers).to_contain_text("No reviews yet")
    expect(offers).to_contain_text("I can come Thursday morning")
    expect(offers.get_by_role("link", name="Bob Builder")).to_have_attribute("href", "/pros/bob-builder/")
    shot(dana, "task-06-offers")
    dana.get_by_role("button", name="Accept Bob for $110.00").click()
    # Accepting opens the checkout; the demo gateway's success card pays and books Bob.
    dana.wait_for_url("**/payments/checkout/**")
    expect(dana.locator("main")).to_contain_text("$115.50")
    dana.get_by_label("Card number").fill("4242 4242 4242 4242")
    dana.get_by_label("Expiry (MM/YY)").fill("12/34")
    dana.get_by_label("CVC").fill("123")
    phone_shot(dana, "task-06b-checkout")
    dana.get_by_role("button", name="Pay $115.50").click()
    dana.wait_for_url(f"**/tasks/{task.public_id}")
    expect(dana.locator("main")).to_contain_text("You booked Bob Builder.")
    expect(dana.locator("#money")).to_contain_text("Payment held until you approve")
    expect(dana.locator(".task-head .status")).to_have_text("Assigned")
    expect(dana.locator(".steps [aria-current=step]")).to_have_text("Booked")
    expect(dana.locator("#timeline")).to_contain_text("Offer accepted · Dana Lee")
    phone_shot(dana, "task-07-booked")

    # 4. Bob now sees the address, checks in with his position, sends proof.
    bob.reload()
    expect(bob.locator("#task-location")).to_contain_text("3250 24th St, San Francisco, CA 94110")
    phone_shot(bob, "task-08-booked-contractor")
    bob.get_by_role("button", name="I'm here: check in").click()
    expect(bob.locator("main")).to_contain_text("Checked in.")
    expect(bob.locator(".task-head .status")).to_have_text("In progress")
    expect(bob.locator(".steps [aria-current=step]")).to_have_text("On site")
    check_in = CheckIn.objects.get()
    assert (check_in.latitude, check_in.longitude) == (ON_SITE["latitude"], ON_SITE["longitude"])
    bob.get_by_label("What you did").fill("Replaced the cartridge and the washer. No more drips.")
    bob.get_by_label("Photos of the finished work").set_input_files(
        files=[{"name": "done.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((40, 160, 90))}]
    )
    phone_shot(bob, "task-09-proof-form")
    bob.get_by_role("button", name="Send proof of work").click()
    expect(bob.locator("main")).to_contain_text("Proof of work sent.")
    expect(bob.locator(".task-head .status")).to_have_text("Submitted")
    expect(bob.locator("#timeline")).to_contain_text("Proof of work submitted · Bob Builder")
    phone_shot(bob, "task-10-proof-sent")

    # 5. Dana sees the proof and approves.
    dana.reload()
    expect(dana.locator("#auto-approve")).to_contain_text("Approves automatically in 2")
    expect(dana.locator("main")).to_contain_text("Replaced the cartridge and the washer.")
    expect(dana.get_by_role("img", name="Proof photo 1")).to_be_visible()
    phone_shot(dana, "task-11-review-proof")
    dana.get_by_role("button", name="Approve the work").click()
    expect(dana.locator("main")).to_contain_text("Approved. Thank you!")
    expect(dana.locator(".task-head .status")).to_have_text("Completed")
    expect(dana.locator(".steps [aria-current=step]")).to_have_text("Approved")
    timeline = dana.locator("#timeline")
    for line in ("Posted · Dana Lee", "Offer made · Bob Builder", "Offer accepted · Dana Lee",
                 "Contractor checked in · Bob Builder", "Proof of work submitted · Bob Builder", "Approved · Dana Lee"):
        expect(timeline).to_contain_text(line)
    shot(dana, "task-12-approved")

    task.refresh_from_db()
    assert (task.status, task.contractor.email, task.agreed_price_cents) == ("completed", "bob@example.com", 11000)
    # Approval released the money: Bob's $99.00 share waits out the payout hold.
    escrow = Escrow.objects.get(task=task)
    assert (escrow.status, escrow.captured_cents, escrow.released_cents) == ("released", 11550, 11000)
    assert Payout.objects.get(escrow=escrow).amount_cents == 9900

    dana.get_by_role("link", name="My tasks").click()
    dana.get_by_role("link", name="Done").click()
    expect(dana.locator(".task-card")).to_contain_text("Completed")
    phone_shot(dana, "task-13-my-tasks-done")
    bob.get_by_role("link", name="My jobs").click()
    bob.get_by_role("link", name="Completed").click()
    expect(bob.locator(".task-card")).to_contain_text("Fix the dripping kitchen tap")
    phone_shot(bob, "task-14-my-jobs-done")
    dana_context.close()
    bob_context.close()
