"""The verification dashboard in real Chromium: a reviewer (staff with
accounts.review_verifications, not a superuser) logs in to the admin, opens
the queues, approves an ID looking at the document and selfie, and passes a
photo verdict looking at before/after photos, the AI verdict and the
duplicate it matched. A contractor's side too: phone code and ID upload.
Screenshots in test-artifacts/verification-*.png."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from accounts import verification
from accounts.models import AuditEntry, IdentityDocument
from messaging.sms import ConsoleSMS
from tasks.models import PhotoCheck
from tests.accounts.verification_support import DASHBOARD, photo_check, reviewer
from tests.browser.conftest import ARTIFACTS, shot
from tests.factories import PASSWORD, ContractorProfileFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def card(text: str, colour: tuple[int, int, int], size=(640, 400)) -> bytes:
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, size[0] - 20, size[1] - 20], outline=(255, 255, 255), width=6)
    draw.ellipse([50, 80, 230, 300], fill=(230, 200, 170))
    draw.text((270, 100), text, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def admin_log_in(page, base: str, email: str) -> None:
    page.goto(base + "/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def test_reviewer_approves_an_id_and_passes_a_photo_verdict(browser, browser_context_args, live_server):
    contractor = ContractorProfileFactory(user__email="bob@example.com", user__full_name="Bob Builder", slug="bob").user
    customer = UserFactory(email="dana@example.com", full_name="Dana Lee")
    other = UserFactory(email="olga@example.com", full_name="Olga Owner")
    doc = verification.id_submit(
        contractor,
        SimpleUploadedFile("id.jpg", card("CALIFORNIA DRIVER LICENSE  BOB BUILDER", (30, 80, 150)), "image/jpeg"),
        SimpleUploadedFile("me.jpg", card("selfie", (90, 120, 90), (400, 500)), "image/jpeg"),
    )
    first = photo_check(customer, contractor, title="Fix the leaking kitchen tap")
    earlier = first.proof.task.photos.filter(kind="problem").first()
    check = photo_check(other, contractor, duplicate_of=earlier, title="Replace the bathroom tap")
    staff = reviewer(email="rita@example.com", full_name="Rita Reviewer")

    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url
    admin_log_in(page, base, staff.email)

    page.goto(base + DASHBOARD)
    ids = page.locator("#queue-ids")
    expect(ids.locator(".vq-count")).to_have_text("1")
    expect(page.locator("#queue-review .vq-count")).to_have_text("2")
    expect(page.locator("#queue-duplicates .vq-count")).to_have_text("1")
    shot(page, "verification-dashboard")

    # The ID: document and selfie side by side, both really load.
    ids.get_by_role("link", name="Bob Builder").click()
    document = page.get_by_role("img", name="ID document sent by Bob Builder")
    selfie = page.get_by_role("img", name="Selfie sent by Bob Builder")
    expect(document).to_be_visible()
    expect(selfie).to_be_visible()
    page.wait_for_load_state("load")  # images finished loading (or failing) before we look at them
    for image in (document, selfie):
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    # No reason: the browser stays on the screen with the error.
    page.get_by_role("button", name=re.compile("^Approve")).click()
    expect(page.get_by_role("alert").filter(has_text="Give a reason for the decision.")).to_be_visible()
    shot(page, "verification-id-review")
    page.get_by_label(re.compile("^Reason")).fill("Licence photo and selfie match; licence valid until 2029.")
    page.get_by_role("button", name=re.compile("^Approve")).click()
    page.wait_for_url(re.compile(r".*/verification/$"))
    expect(page.get_by_text("ID of Bob Builder approved. They have been notified.")).to_be_visible()
    expect(page.locator("#queue-ids .vq-count")).to_have_text("0")

    # The photo verdict with the duplicate it matched.
    page.locator("#queue-duplicates").get_by_role("link", name="Replace the bathroom tap").click()
    expect(page.get_by_role("heading", name="Duplicates found")).to_be_visible()
    expect(page.locator("#ai-verdict")).to_contain_text('"confidence": 0.41')
    page.wait_for_load_state("load")
    for name in ("Before photo 1", "Proof photo 1", "Earlier photo it matched"):
        image = page.get_by_role("img", name=name).first
        expect(image).to_be_visible()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), name
    shot(page, "verification-photo-review")
    page.get_by_label(re.compile("^Reason")).fill("The earlier photo is the customer's own tap from the same building; new photo shows the fix.")
    page.get_by_role("button", name=re.compile("^Pass")).click()
    page.wait_for_url(re.compile(r".*/verification/$"))
    expect(page.locator("#queue-duplicates .vq-count")).to_have_text("0")
    expect(page.locator("#queue-review .vq-count")).to_have_text("1")
    shot(page, "verification-dashboard-after")

    doc.refresh_from_db()
    contractor.refresh_from_db()
    check = PhotoCheck.objects.get(pk=check.pk)
    assert (doc.status, doc.reviewed_by_id) == (IdentityDocument.Status.APPROVED, staff.pk)
    assert contractor.id_verified_at is not None
    assert (check.status, check.reviewed_by_id) == ("pass", staff.pk)
    assert set(AuditEntry.objects.filter(actor=staff).values_list("action", flat=True)) == {"id.approve", "photo_check.pass"}
    context.close()


def test_contractor_verifies_phone_and_sends_id(browser, browser_context_args, live_server, settings):
    settings.SMS_BACKEND = "messaging.sms.ConsoleSMS"
    ConsoleSMS.outbox.clear()
    contractor = ContractorProfileFactory(user__email="bob@example.com", user__full_name="Bob Builder", slug="bob").user
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email").fill(contractor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")

    page.get_by_role("link", name="Verify your phone").click()
    page.get_by_role("textbox", name="Mobile number").fill("(415) 555-0100")
    page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_text("We texted a 6-digit code to +14155550100.")).to_be_visible()
    code = re.search(r"\b(\d{6})\b", ConsoleSMS.outbox[-1].body).group(1)
    page.get_by_label("6-digit code").fill(f"{(int(code) + 1) % 10**6:06d}")
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_text("That code is not right. 4 tries left.")).to_be_visible()
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("alert").filter(has_text="You can ask for another in")).to_be_visible()
    shot(page, "verification-phone-errors")
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_text("Your phone number is verified.")).to_be_visible()
    shot(page, "verification-phone-done")

    page.goto(base + "/verify/id")
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_label("Photo of your ID").set_input_files(
        files=[{"name": "id.jpg", "mimeType": "image/jpeg", "buffer": card("ID", (30, 80, 150))}]
    )
    page.get_by_label("A selfie").set_input_files(
        files=[{"name": "me.jpg", "mimeType": "image/jpeg", "buffer": card("me", (90, 120, 90))}]
    )
    shot(page, "verification-id-form")
    page.get_by_role("button", name="Send for review").click()
    expect(page.get_by_text("Waiting for review")).to_be_visible()
    shot(page, "verification-id-pending")
    contractor.refresh_from_db()
    assert contractor.phone_verified_at is not None
    assert IdentityDocument.objects.filter(user=contractor, status="pending").count() == 1
    context.close()
