"""The verification dashboard in the admin: who gets in, the queues, the review screens."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, IdentityDocument
from messaging.models import Notification
from tests.accounts.verification_support import DASHBOARD, pending_id, photo_check, reviewer
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def id_url(doc) -> str:
    return reverse("admin:accounts_verification_id", args=[doc.public_id])


def photo_url(check) -> str:
    return reverse("admin:accounts_verification_photo", args=[check.pk])


def count_of(html: str, key: str) -> int:
    match = re.search(rf'id="queue-{key}".*?data-count="(\d+)"', html, re.S)
    assert match, key
    return int(match.group(1))


def test_dashboard_url():
    assert reverse("admin:accounts_verification") == DASHBOARD


# --- Permission matrix -------------------------------------------------------


@pytest.fixture
def urls(customer, contractor):
    doc = pending_id(contractor)
    check = photo_check(customer, contractor)
    return [DASHBOARD, id_url(doc), photo_url(check)]


def test_anonymous_is_sent_to_the_admin_login(client, urls):
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert client.post(url, {"decision": "approve", "reason": "x"}).status_code == 302
    assert not AuditEntry.objects.exclude(action="id.submitted").exists()


@pytest.mark.parametrize("who", ["customer", "contractor"])
def test_non_staff_are_sent_to_the_admin_login(client, urls, customer, contractor, who):
    client.force_login(customer if who == "customer" else contractor)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        client.post(url, {"decision": "approve", "reason": "x"})
    assert IdentityDocument.objects.get().status == "pending"
    assert not AuditEntry.objects.exclude(action="id.submitted").exists()


def test_staff_without_the_permission_get_403_and_see_no_link(client, urls):
    client.force_login(UserFactory(is_staff=True))
    for url in urls:
        assert client.get(url).status_code == 403
        assert client.post(url, {"decision": "approve", "reason": "Looks fine"}).status_code == 403
    index = client.get("/admin/")
    assert "Identity documents" not in index.text
    assert client.get("/admin/accounts/identitydocument/").status_code == 403
    assert client.get("/admin/accounts/auditentry/").status_code == 403
    assert IdentityDocument.objects.get().status == "pending"
    assert not AuditEntry.objects.exclude(action="id.submitted").exists()


def test_staff_with_the_permission_get_in(client, urls):
    client.force_login(reviewer())
    for url in urls:
        assert client.get(url).status_code == 200
    index = client.get("/admin/")
    assert "Identity documents" in index.text
    changelist = client.get("/admin/accounts/identitydocument/")
    assert DASHBOARD in changelist.text
    assert client.get("/admin/accounts/auditentry/").status_code == 200


def test_superuser_gets_in(client, urls, staff):
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 200


# --- The dashboard -----------------------------------------------------------


def test_queues_show_counts_and_items(client, customer, contractor, outsider):
    doc = pending_id(contractor)
    second = UserFactory(is_contractor=True, full_name="Eve Electric")
    pending_id(second)
    review = photo_check(customer, contractor, title="Fix the tap")
    failed = photo_check(customer, contractor, status="fail", title="Hang the shelf")
    earlier = review.proof.task.photos.filter(kind="problem").first()
    dup = photo_check(outsider, contractor, status="needs_review", duplicate_of=earlier, title="Paint the fence")
    photo_check(customer, contractor, status="pass", title="Already fine")

    client.force_login(reviewer())
    page = client.get(DASHBOARD).text
    assert count_of(page, "ids") == 2
    assert count_of(page, "review") == 2
    assert count_of(page, "failed") == 1
    assert count_of(page, "duplicates") == 1
    assert id_url(doc) in page
    assert photo_url(review) in page and photo_url(failed) in page and photo_url(dup) in page
    assert "Already fine" not in page
    assert "Oldest waiting" in page


def test_empty_queues_say_so(client):
    client.force_login(reviewer())
    page = client.get(DASHBOARD).text
    assert page.count("Nothing waiting.") == 4
    assert count_of(page, "ids") == 0


# --- ID review ---------------------------------------------------------------


def test_id_review_screen_shows_both_files_side_by_side(client, contractor):
    doc = pending_id(contractor)
    client.force_login(reviewer())
    page = client.get(id_url(doc)).text
    doc_src = reverse("accounts:id_file", args=[doc.public_id, "document"])
    selfie_src = reverse("accounts:id_file", args=[doc.public_id, "selfie"])
    assert f'src="{doc_src}"' in page and f'src="{selfie_src}"' in page
    assert contractor.email in page
    assert 'value="approve"' in page and 'value="reject"' in page
    # The images load for the reviewer.
    assert client.get(doc_src).status_code == 200


def test_approve_through_the_screen(client, contractor):
    doc = pending_id(contractor)
    staff = reviewer(email="rita@example.com")
    client.force_login(staff)
    response = client.post(id_url(doc), {"decision": "approve", "reason": "Licence and selfie match."}, follow=True)
    assert response.redirect_chain[-1][0] == DASHBOARD
    assert "ID of Bob Builder approved. They have been notified." in response.text
    doc.refresh_from_db()
    contractor.refresh_from_db()
    assert (doc.status, doc.reviewed_by, doc.reason) == ("approved", staff, "Licence and selfie match.")
    assert contractor.id_verified_at is not None
    assert AuditEntry.objects.filter(action="id.approve", actor=staff).count() == 1
    assert Notification.objects.filter(user=contractor, title="Your ID is verified").count() == 1
    assert "Licence and selfie match." in response.text  # recent decisions


def test_reject_without_a_reason_is_refused(client, contractor):
    doc = pending_id(contractor)
    client.force_login(reviewer())
    response = client.post(id_url(doc), {"decision": "reject", "reason": "   "})
    assert response.status_code == 400
    assert "Give a reason for the decision." in response.text
    doc.refresh_from_db()
    assert doc.status == "pending"
    assert not AuditEntry.objects.filter(action__in=["id.approve", "id.reject"]).exists()
    assert not Notification.objects.exists()


def test_bad_decision_is_refused(client, contractor):
    doc = pending_id(contractor)
    client.force_login(reviewer())
    response = client.post(id_url(doc), {"decision": "delete", "reason": "because"})
    assert response.status_code == 400
    assert "Choose approve or reject." in response.text
    doc.refresh_from_db()
    assert doc.status == "pending"


def test_deciding_twice_says_it_was_decided(client, contractor):
    doc = pending_id(contractor)
    client.force_login(reviewer())
    client.post(id_url(doc), {"decision": "reject", "reason": "Blurred"})
    response = client.post(id_url(doc), {"decision": "approve", "reason": "Now fine"})
    assert response.status_code == 409
    assert "This ID was already rejected." in response.text
    assert 'value="approve"' not in response.text  # the screen now shows the decision, no form
    assert "Blurred" in response.text
    doc.refresh_from_db()
    assert doc.status == "rejected"


def test_unknown_id_is_404(client):
    client.force_login(reviewer())
    assert client.get("/admin/accounts/identitydocument/verification/id/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- Photo review ------------------------------------------------------------


def test_photo_review_screen_shows_before_after_verdict_and_duplicate(client, customer, contractor, outsider):
    first = photo_check(customer, contractor, title="Fix the tap")
    earlier = first.proof.task.photos.filter(kind="problem").first()
    check = photo_check(outsider, contractor, duplicate_of=earlier, title="Paint the fence")
    client.force_login(reviewer())
    page = client.get(photo_url(check)).text
    before = check.proof.task.photos.get(kind="problem")
    after = check.proof.photos.get()
    assert reverse("tasks:photo_thumb", args=[before.public_id]) in page
    assert reverse("tasks:photo_thumb", args=[after.public_id]) in page
    assert reverse("tasks:photo_thumb", args=[earlier.public_id]) in page  # the duplicate it matched
    assert "“Fix the tap”" in page
    assert "&quot;confidence&quot;: 0.41" in page
    assert "gpt-4o-2024-08-06" in page
    assert 'value="pass"' in page and 'value="fail"' in page
    # Staff can load the photos through the task photo views.
    for photo in (before, after, earlier):
        assert client.get(reverse("tasks:photo_thumb", args=[photo.public_id])).status_code == 200


def test_photo_verdict_pass_through_the_screen(client, customer, contractor):
    check = photo_check(customer, contractor)
    staff = reviewer()
    client.force_login(staff)
    response = client.post(photo_url(check), {"decision": "pass", "reason": "Tap visible in photo 1."}, follow=True)
    assert response.redirect_chain[-1][0] == DASHBOARD
    check.refresh_from_db()
    assert (check.status, check.reviewed_by, check.review_reason) == ("pass", staff, "Tap visible in photo 1.")
    assert AuditEntry.objects.filter(action="photo_check.pass", actor=staff, subject_id=str(check.pk)).count() == 1
    assert set(Notification.objects.values_list("user__email", flat=True)) == {customer.email, contractor.email}
    assert count_of(response.text, "review") == 0


def test_photo_verdict_needs_a_reason(client, customer, contractor):
    check = photo_check(customer, contractor, status="fail")
    client.force_login(reviewer())
    response = client.post(photo_url(check), {"decision": "fail", "reason": ""})
    assert response.status_code == 400
    check.refresh_from_db()
    assert (check.status, check.reviewed_at) == ("fail", None)
    assert not AuditEntry.objects.exists()


def test_photo_check_reviewed_twice_is_refused(client, customer, contractor):
    check = photo_check(customer, contractor)
    client.force_login(reviewer())
    client.post(photo_url(check), {"decision": "fail", "reason": "Not the tap"})
    response = client.post(photo_url(check), {"decision": "pass", "reason": "Changed my mind"})
    assert response.status_code == 409
    assert "already been reviewed" in response.text
    check.refresh_from_db()
    assert (check.status, check.review_reason) == ("fail", "Not the tap")
    assert AuditEntry.objects.filter(subject_id=str(check.pk)).count() == 1


def test_audit_log_admin_is_read_only(client, contractor):
    pending_id(contractor)
    entry = AuditEntry.objects.get()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/accounts/auditentry/").status_code == 200
    assert client.get("/admin/accounts/auditentry/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"/admin/accounts/auditentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="reason"' not in page.text
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
