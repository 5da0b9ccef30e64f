"""A review and a dispute in real Chromium (issue 7), one browser context per
person, screenshots of every step at phone width under test-artifacts/.

The tasks get to their starting state through the product's own services:
Bob's offer is paid on the simulated gateway (tests/payments/helpers.fund, the
same webhook path the checkout page uses), he checks in and sends proof with
a photo; for the review, Dana approves (the money is released). Money then
moves through the payments services, so a dispute's refund really goes to the
(in-memory) simulated gateway that took the payment.

Prices: $110.00, 5 % service fee ($5.50) on top, 10 % commission from the
price. A 30 % partial refund gives the contractor $77.00 of the price (less
$7.70 commission: $69.30 payable) and the customer $33.00 + $5.50 = $38.50.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from payments import ledger
from payments.models import Escrow, Payout, Refund
from reputation.dispute_models import Dispute
from reputation.models import Review
from tasks import services as task_services
from tasks.models import Task
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, shot
from tests.browser.test_task_loop import jpeg_bytes, log_in
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory
from tests.payments.helpers import fund
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DANA_REVIEW = "Bob was on time, explained what was wrong and left the kitchen spotless."
BOB_REVIEW = "Clear description, easy access, paid straight away. Would work for Dana again."
BOB_REPLY = "Thanks Dana! Call me if the bathroom tap starts too."


def phone_shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)


def assert_fits_phone(page) -> None:
    """Nothing on the page is wider than the phone's screen."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a 390px phone"


def box_text(page, selector: str) -> str:
    """What the person reads in a box, whitespace collapsed."""
    return " ".join(page.locator(selector).inner_text().split())


def proof_photo() -> SimpleUploadedFile:
    return SimpleUploadedFile("done.jpg", jpeg_bytes((40, 160, 90)), content_type="image/jpeg")


def submitted_task(title: str):
    """Dana's task, Bob's $110 offer paid on the simulated gateway, Bob checked
    in and sent proof: submitted, $115.50 held."""
    plumbing = CategoryFactory(name="Plumbing", slug="plumbing")
    dana = UserFactory(email="dana@example.com", full_name="Dana Lee")
    bob = ContractorProfileFactory(
        user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-builder", trades=[plumbing]
    ).user
    task = TaskFactory(customer=dana, category=plumbing, title=title, photos=0)
    escrow = fund(OfferFactory(task=task, contractor=bob, price_cents=11_000))
    assert (escrow.status, escrow.total_cents) == ("held", 11_550)
    task_services.task_check_in(task, by=bob)
    task_services.task_submit_proof(
        task, by=bob, note="Replaced the cartridge and the washer. No more drips.", files=[proof_photo()]
    )
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED
    return task, dana, bob


def people(browser, browser_context_args, base: str):
    pages = []
    for email in ("dana@example.com", "bob@example.com"):
        context = browser.new_context(**browser_context_args)
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, base, email)
        pages.append(page)
    return pages


def rate(form, legend: str, stars: int) -> None:
    form.locator("fieldset", has=form.page.locator("legend", has_text=legend)).get_by_text(f"{stars}★").click()


def test_double_blind_reviews_then_public_reply(browser, browser_context_args, live_server):
    task, _dana, bob_user = submitted_task("Fix the dripping kitchen tap")
    task_services.task_approve(task, by=task.customer)
    assert Escrow.objects.get(task=task).status == "released"
    base = live_server.url
    task_url = f"{base}/tasks/{task.public_id}"
    dana, bob = people(browser, browser_context_args, base)

    # 1. Dana reviews Bob from the task page: overall stars, sub-ratings, text.
    dana.goto(task_url)
    panel = dana.locator("#reviews")
    expect(panel.get_by_role("heading", name="Reviews")).to_be_visible()
    expect(panel).to_contain_text("Your review stays hidden until Bob Builder reviews you too")
    form = panel.locator("form.review-form")
    rate(form, "Overall", 5)
    rate(form, "quality of work", 5)
    rate(form, "punctuality", 4)
    rate(form, "communication", 5)
    rate(form, "value for money", 4)
    form.get_by_label("Your review").fill(DANA_REVIEW)
    phone_shot(dana, "review-01-dana-form")
    form.get_by_role("button", name="Review Bob Builder").click()

    # Hidden until Bob reviews: Dana is told so and can still edit it.
    dana.wait_for_url(f"**/tasks/{task.public_id}")
    expect(dana.locator("main")).to_contain_text(
        "Thanks! Your review stays hidden until Bob Builder reviews you or the window closes."
    )
    expect(panel.get_by_role("button", name="Update your review")).to_be_visible()
    expect(panel.get_by_label("Your review")).to_have_value(DANA_REVIEW)
    phone_shot(dana, "review-02-dana-hidden")
    review = Review.objects.get(task=task, reviewer__email="dana@example.com")
    assert (review.stars, review.quality, review.punctuality, review.communication, review.value) == (5, 5, 4, 5, 4)
    assert review.published_at is None

    # Nobody else sees it yet: not Bob's profile, not Bob's task page.
    bob.goto(f"{base}/pros/bob-builder/")
    expect(bob.locator("#reputation-title")).to_be_visible()
    expect(bob.locator("main")).not_to_contain_text(DANA_REVIEW)
    expect(bob.locator(".reputation")).to_contain_text("No reviews yet")
    bob.goto(task_url)
    bob_panel = bob.locator("#reviews")
    expect(bob_panel).to_contain_text("Dana Lee has reviewed you. Leave yours to see it.")
    expect(bob.locator("main")).not_to_contain_text(DANA_REVIEW)
    phone_shot(bob, "review-03-bob-before")

    # 2. Bob reviews Dana: both reviews are published at once.
    form = bob_panel.locator("form.review-form")
    rate(form, "Overall", 5)
    rate(form, "clarity of the job", 5)
    rate(form, "communication", 4)
    rate(form, "payment promptness", 5)
    form.get_by_label("Your review").fill(BOB_REVIEW)
    form.get_by_role("button", name="Review Dana Lee").click()
    bob.wait_for_url(f"**/tasks/{task.public_id}")
    expect(bob.locator("main")).to_contain_text("Thanks! Both reviews are now published.")
    expect(bob_panel.get_by_role("heading", name="Your review")).to_be_visible()
    expect(bob_panel.get_by_role("heading", name="Dana Lee's review of you")).to_be_visible()
    theirs = bob_panel.locator(f"#review-{task.public_id}-customer_to_contractor")
    expect(theirs).to_contain_text(DANA_REVIEW)
    expect(theirs.locator(".review-head").get_by_role("img", name="5 out of 5 stars")).to_be_visible()
    expect(theirs).to_contain_text("quality of work")
    expect(bob_panel.locator("form.review-form")).to_have_count(0)
    phone_shot(bob, "review-04-bob-published")
    assert Review.objects.filter(task=task, published_at__isnull=False).count() == 2

    # 3. Bob replies publicly under Dana's review.
    theirs.get_by_text("Reply publicly").click()
    theirs.get_by_label("Your public reply").fill(BOB_REPLY)
    phone_shot(bob, "review-05-bob-reply-form")
    theirs.get_by_role("button", name="Publish reply").click()
    bob.wait_for_url(f"**/tasks/{task.public_id}")
    expect(bob.locator("main")).to_contain_text("Your reply is published under the review.")
    expect(theirs.locator(".review-reply")).to_contain_text("Reply from Bob Builder")
    expect(theirs.locator(".review-reply")).to_contain_text(BOB_REPLY)
    expect(theirs.get_by_text("Reply publicly")).to_have_count(0)
    phone_shot(bob, "review-06-bob-replied")

    # 4. Dana now sees both reviews and the reply on the task page.
    dana.reload()
    expect(panel.get_by_role("heading", name="Your review")).to_be_visible()
    expect(panel.get_by_role("heading", name="Bob Builder's review of you")).to_be_visible()
    expect(panel).to_contain_text(DANA_REVIEW)
    expect(panel).to_contain_text(BOB_REVIEW)
    expect(panel).to_contain_text(BOB_REPLY)
    expect(panel.locator("form.review-form")).to_have_count(0)
    phone_shot(dana, "review-07-dana-both")

    # 5. Bob's public profile: rating with its count, the review and the reply.
    dana.goto(f"{base}/pros/bob-builder/")
    section = dana.locator(".reputation")
    expect(section).to_contain_text("from 1 review")
    expect(section).to_contain_text("average of the stars given: 5.00")
    expect(section).to_contain_text(DANA_REVIEW)
    expect(section).to_contain_text(BOB_REPLY)
    expect(section.locator(".review-card")).to_have_count(1)
    expect(section).not_to_contain_text(BOB_REVIEW)  # Bob's review of Dana is about Dana
    assert_fits_phone(dana)
    shot(dana, "review-08-profile")  # 390 and 1280 px
    dana.set_viewport_size(DESKTOP)
    expect(section.locator(".review-card")).to_be_visible()
    dana.set_viewport_size(PHONE)
    for page in (dana, bob):
        page.goto(task_url)
        assert_fits_phone(page)
    assert Review.objects.filter(reviewee=bob_user, published_at__isnull=False).count() == 1
    dana.context.close()
    bob.context.close()


def test_dispute_partial_refund_accepted(browser, browser_context_args, live_server):
    task, dana_user, bob_user = submitted_task("Fix the dripping bathroom tap")
    escrow = Escrow.objects.get(task=task)
    base = live_server.url
    task_url = f"{base}/tasks/{task.public_id}"
    dana, bob = people(browser, browser_context_args, base)

    # 1. Dana opens a dispute from the task page with a reason and a photo.
    dana.goto(task_url)
    expect(dana.locator(".task-head .status")).to_have_text("Submitted")
    dana.locator("#open-dispute").click()
    dana.wait_for_url(f"**/disputes/open/{task.public_id}/")
    expect(dana.get_by_role("heading", name="Open a dispute")).to_be_visible()
    dana.get_by_label("What is the dispute about?").select_option(label="The work is poor or unfinished")
    dana.get_by_label("What happened").fill("The tap still drips after the visit; the washer was never replaced.")
    dana.get_by_label("Photos (optional)").set_input_files(
        files=[{"name": "drip.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes((30, 90, 200))}]
    )
    phone_shot(dana, "dispute-01-open-form")
    dana.get_by_role("button", name="Open the dispute").click()

    dispute = Dispute.objects.get(task=task)
    dispute_url = f"**/disputes/{dispute.public_id}/"
    dana.wait_for_url(dispute_url)
    main = dana.locator("main")
    expect(main).to_contain_text("Dispute opened. The money stays on hold until it is settled.")
    expect(dana.locator("#dispute-status")).to_have_text("Waiting for a response")
    expect(dana.locator("#next-step")).to_have_text("Waiting for Bob Builder to respond.")
    expect(main).to_contain_text("$115.50 paid by the customer is on hold until the dispute is settled.")
    photo = dana.locator("#evidence").get_by_role("img", name="Evidence photo")
    expect(photo).to_be_visible()
    dana.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    phone_shot(dana, "dispute-02-opened")
    escrow.refresh_from_db()
    assert escrow.status == "frozen"

    # 2. Bob sees it on the task page, gives his side and offers 30 % back.
    bob.goto(task_url)
    expect(bob.locator("#dispute-panel")).to_contain_text("Waiting for a response")
    bob.locator("#dispute-panel").get_by_role("link", name="Open the dispute").click()
    bob.wait_for_url(dispute_url)
    expect(bob.locator("#next-step")).to_have_text("Your turn: give your side and, if you like, offer a settlement.")
    expect(bob.locator("main")).to_contain_text("the washer was never replaced")
    expect(bob.locator("#evidence").get_by_role("img", name="Evidence photo")).to_be_visible()
    bob.get_by_label("Your side", exact=True).fill("I replaced the cartridge; the drip is from the old valve under the sink.")
    bob.get_by_label("Offer a settlement (optional)").select_option(label="Partial refund")
    bob.get_by_label("Refund percentage (partial refund)").fill("30")
    phone_shot(bob, "dispute-03-respond-form")
    bob.get_by_role("button", name="Send my response").click()
    bob.wait_for_url(dispute_url)
    expect(bob.locator("main")).to_contain_text("Response sent.")
    expect(bob.locator("#dispute-status")).to_have_text("Negotiating")
    proposal = bob.locator("#open-proposal")
    expect(proposal).to_contain_text("Bob Builder proposes: Partial refund (30%).")
    expect(proposal).to_contain_text("$77.00 to the contractor, $38.50 back to the customer.")
    expect(bob.locator("#accept-proposal")).to_have_count(0)  # not his own proposal
    phone_shot(bob, "dispute-04-proposed")

    # 3. Dana accepts: settled.
    dana.reload()
    expect(dana.locator("#dispute-status")).to_have_text("Negotiating")
    expect(dana.locator("#open-proposal")).to_contain_text("$77.00 to the contractor, $38.50 back to the customer.")
    expect(dana.locator("#dispute-timeline")).to_contain_text("Response · Bob Builder")
    phone_shot(dana, "dispute-05-dana-proposal")
    dana.get_by_role("button", name="Accept and settle").click()
    dana.wait_for_url(dispute_url)
    expect(main).to_contain_text("Settled. The money moves as agreed.")
    outcome_text = (
        "Split. $77.00 of the price to the contractor (before the platform fee); $38.50 refunded to the customer."
    )
    expect(dana.locator("#dispute-status")).to_have_text("Resolved")
    expect(dana.locator("#next-step")).to_have_text("Resolved. The money has moved as decided; see below.")
    expect(dana.locator("#outcome")).to_have_text(outcome_text)
    timeline = dana.locator("#dispute-timeline")
    for line in ("Dispute opened · Dana Lee", "Response · Bob Builder", "Settlement proposed · Bob Builder",
                 "Proposal accepted · Dana Lee", "Money moved"):
        expect(timeline).to_contain_text(line)
    expect(dana.get_by_role("button", name="Accept and settle")).to_have_count(0)
    assert_fits_phone(dana)
    phone_shot(dana, "dispute-06-dana-resolved")

    # 4. Bob sees the same outcome; the task pages show the money.
    bob.reload()
    expect(bob.locator("#dispute-status")).to_have_text("Resolved")
    expect(bob.locator("#outcome")).to_have_text(outcome_text)
    assert_fits_phone(bob)
    phone_shot(bob, "dispute-07-bob-resolved")
    dana.goto(task_url)
    expect(dana.locator("#dispute-panel")).to_contain_text("Resolved")
    money = box_text(dana, "#money")
    assert "Split: $38.50 refunded, the rest to the pro." in money
    assert "Total paid $115.50 Refunded $38.50" in money
    assert "Put on hold" in money and "Hold lifted" in money
    phone_shot(dana, "dispute-08-dana-task")
    bob.goto(task_url)
    money = box_text(bob, "#money")
    assert "$69.30 to you, pending until" in money
    assert "Price $110.00 Your part of the price $77.00 Platform fee $7.70 To you $69.30" in money
    phone_shot(bob, "dispute-09-bob-task")

    # The ledger moved exactly what the page states, and balances.
    dispute.refresh_from_db()
    escrow.refresh_from_db()
    assert (dispute.status, dispute.outcome, dispute.contractor_cents, dispute.refund_cents) == (
        "resolved", "split", 7_700, 3_850,
    )
    assert (escrow.status, escrow.released_cents, escrow.refunded_cents) == ("split", 7_700, 3_850)
    by_code = ledger.holdings_by_code(ledger.escrow_holdings(escrow))
    assert by_code["contractor_payable"] == 6_930
    assert by_code["platform_revenue"] == 770
    assert by_code["refunds_out"] == 3_850
    assert ledger.balance_of("contractor_payable", bob_user) == 6_930
    assert ledger.trial_balance() == 0
    assert ledger.status_agrees(escrow)
    refund = Refund.objects.get(escrow=escrow)
    assert refund.amount_cents == 3_850
    assert Payout.objects.get(escrow=escrow).amount_cents == 6_930
    assert dana_user.pk == escrow.customer_id
    dana.context.close()
    bob.context.close()
