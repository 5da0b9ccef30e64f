"""ID verification: upload, who may see the files, staff review, retention, audit log."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts import verification
from accounts.models import AuditEntry, IdentityDocument
from accounts.tasks import purge_id_documents
from core.errors import ApplicationError, Conflict, PermissionDenied
from messaging.models import Notification
from tests.accounts.photos import noisy_png_bytes, png_bytes, upload
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/verify/id"
T0 = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)


def reviewer(**kwargs):
    user = UserFactory(is_staff=True, is_customer=False, **kwargs)
    user.user_permissions.add(Permission.objects.get(codename="review_verifications"))
    return user


def stored_files(user) -> list[str]:
    folder = f"id-documents/{user.public_id}"
    if not default_storage.exists(folder):
        return []
    return sorted(default_storage.listdir(folder)[1])


def submit(user, **kwargs) -> IdentityDocument:
    return verification.id_submit(
        user,
        kwargs.get("document", upload("licence.png", png_bytes((120, 80)), "image/png")),
        kwargs.get("selfie", upload("me.jpg", png_bytes((80, 80), (200, 150, 120)), "image/jpeg")),
    )


def field_errors(html: str, field: str) -> list[str]:
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    if not match:
        return []
    return [htmllib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


# --- Submitting --------------------------------------------------------------


def test_contractor_submits_files_stored_privately_as_jpeg(contractor):
    doc = submit(contractor)
    assert doc.status == "pending"
    for field in (doc.document, doc.selfie):
        assert re.fullmatch(rf"id-documents/{contractor.public_id}/[0-9a-f]{{32}}\.jpg", field.name)
        with default_storage.open(field.name, "rb") as handle:
            assert handle.read(3) == b"\xff\xd8\xff"  # re-encoded as JPEG
    assert len(stored_files(contractor)) == 2
    entry = AuditEntry.objects.get(action="id.submitted")
    assert (entry.actor, entry.subject_id) == (contractor, str(doc.pk))


def test_fake_image_is_refused_and_nothing_is_written(contractor):
    with pytest.raises(ApplicationError) as exc:
        submit(contractor, document=upload("id.jpg", b"%PDF-1.4 not an image", "image/jpeg"))
    assert exc.value.fields == {"document": ["This file is not a valid image. Upload a JPEG, PNG or WebP photo."]}
    assert not IdentityDocument.objects.exists()
    assert stored_files(contractor) == []
    assert not AuditEntry.objects.exists()


def test_oversized_file_is_refused_and_nothing_is_written(contractor, settings):
    settings.ID_DOCUMENT_MAX_BYTES = 1024 * 1024
    with pytest.raises(ApplicationError) as exc:
        submit(contractor, selfie=upload("big.png", noisy_png_bytes(), "image/png"))
    [message] = exc.value.fields["selfie"]
    assert message.endswith("the limit is 1 MB.")
    assert not IdentityDocument.objects.exists()
    assert stored_files(contractor) == []


def test_customer_cannot_submit(customer):
    with pytest.raises(PermissionDenied) as exc:
        submit(customer)
    assert exc.value.code == "not_contractor"
    assert not IdentityDocument.objects.exists()


def test_second_submission_while_pending_is_refused_and_writes_no_file(contractor):
    submit(contractor)
    with pytest.raises(Conflict) as exc:
        submit(contractor)
    assert exc.value.code == "already_pending"
    assert IdentityDocument.objects.count() == 1
    assert len(stored_files(contractor)) == 2


def test_database_allows_one_pending_per_user(contractor):
    doc = submit(contractor)
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityDocument.objects.create(user=contractor, document=doc.document.name, selfie=doc.selfie.name)


# --- Reviewing ---------------------------------------------------------------


def test_approve_sets_badge_sets_retention_audits_and_notifies(contractor, settings):
    settings.ID_DOCUMENT_RETENTION_DAYS = 30
    doc = submit(contractor)
    staff = reviewer(email="rita@example.com")
    verification.id_review(doc, by=staff, decision="approve", reason="Licence matches selfie.", now=T0)

    doc.refresh_from_db()
    contractor.refresh_from_db()
    assert (doc.status, doc.reviewed_by, doc.reviewed_at) == ("approved", staff, T0)
    assert doc.delete_after == T0 + dt.timedelta(days=30)
    assert contractor.id_verified_at == T0
    entry = AuditEntry.objects.get(action="id.approve")
    assert (entry.actor, entry.actor_repr, entry.reason) == (staff, "rita@example.com", "Licence matches selfie.")
    assert (entry.subject_type.model, entry.subject_id) == ("identitydocument", str(doc.pk))
    assert entry.data["user"] == str(contractor.public_id)
    note = Notification.objects.get(user=contractor)
    assert note.title == "Your ID is verified"
    assert note.url == "/verify/id"


def test_reject_tells_the_reason_keeps_no_badge_and_allows_a_new_try(contractor):
    doc = submit(contractor)
    staff = reviewer()
    verification.id_review(doc, by=staff, decision="reject", reason="The photo is blurred", now=T0)
    contractor.refresh_from_db()
    assert contractor.id_verified_at is None
    note = Notification.objects.get(user=contractor)
    assert note.title == "We couldn't verify your ID"
    assert note.body == "Reason: The photo is blurred. You can send new photos."
    assert AuditEntry.objects.filter(action="id.reject", reason="The photo is blurred").count() == 1
    again = submit(contractor)
    assert again.status == "pending"


@pytest.mark.parametrize(("decision", "reason", "code"), [("approve", "  ", "reason_required"), ("maybe", "ok", "invalid_decision"), ("reject", "x" * 1001, "reason_too_long")])
def test_review_needs_a_decision_and_a_reason(contractor, decision, reason, code):
    doc = submit(contractor)
    with pytest.raises(ApplicationError) as exc:
        verification.id_review(doc, by=reviewer(), decision=decision, reason=reason)
    assert exc.value.code == code
    doc.refresh_from_db()
    assert doc.status == "pending"
    assert not AuditEntry.objects.exclude(action="id.submitted").exists()
    assert not Notification.objects.exists()


def test_staff_without_the_permission_cannot_review(contractor, customer):
    doc = submit(contractor)
    plain_staff = UserFactory(is_staff=True)
    not_staff_with_perm = UserFactory()
    not_staff_with_perm.user_permissions.add(Permission.objects.get(codename="review_verifications"))
    for user in (plain_staff, not_staff_with_perm, customer, contractor):
        with pytest.raises(PermissionDenied):
            verification.id_review(doc, by=user, decision="approve", reason="ok")
    doc.refresh_from_db()
    contractor.refresh_from_db()
    assert (doc.status, contractor.id_verified_at) == ("pending", None)


def test_a_decided_document_cannot_be_decided_again(contractor):
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="reject", reason="Blurred", now=T0)
    with pytest.raises(Conflict) as exc:
        verification.id_review(doc, by=reviewer(), decision="approve", reason="Looks fine")
    assert exc.value.message == "This ID was already rejected."
    contractor.refresh_from_db()
    assert contractor.id_verified_at is None
    assert AuditEntry.objects.filter(action__in=["id.approve", "id.reject"]).count() == 1


# --- Retention ---------------------------------------------------------------


def test_retention_job_deletes_files_after_the_period_only(contractor, settings):
    settings.ID_DOCUMENT_RETENTION_DAYS = 30
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="approve", reason="ok", now=T0)
    pending_user = UserFactory(is_contractor=True)
    waiting = submit(pending_user)

    assert verification.id_documents_purge(now=T0 + dt.timedelta(days=29, hours=23)) == 0
    assert len(stored_files(contractor)) == 2

    assert verification.id_documents_purge(now=T0 + dt.timedelta(days=30)) == 1
    doc.refresh_from_db()
    assert stored_files(contractor) == []
    assert (doc.document.name, doc.selfie.name) == ("", "")
    assert doc.files_deleted_at == T0 + dt.timedelta(days=30)
    assert doc.status == "approved"  # the record of the decision stays
    assert len(stored_files(pending_user)) == 2  # pending ones are never purged
    waiting.refresh_from_db()
    assert waiting.files_deleted_at is None
    assert AuditEntry.objects.filter(action="id.files_deleted", subject_id=str(doc.pk), actor=None).count() == 1
    # A second run finds nothing more.
    assert verification.id_documents_purge(now=T0 + dt.timedelta(days=31)) == 0


def test_retention_celery_task_runs_the_purge(contractor, monkeypatch):
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="reject", reason="Expired licence", now=T0)
    monkeypatch.setattr(timezone, "now", lambda: T0 + dt.timedelta(days=365))
    assert purge_id_documents.delay().get() == 1
    assert stored_files(contractor) == []


# --- Who sees the files ------------------------------------------------------


@pytest.fixture
def submitted(contractor):
    return submit(contractor)


def file_url(doc, which="document") -> str:
    return f"/verify/id/{doc.public_id}/{which}"


def test_reviewer_gets_the_files_not_cached(client, submitted):
    client.force_login(reviewer())
    for which in ("document", "selfie"):
        response = client.get(file_url(submitted, which))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response["Cache-Control"] == "private, no-store"
        assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("who", ["anonymous", "customer", "owner", "staff_without_permission", "superuser_inactive"])
def test_everyone_else_gets_404(client, submitted, contractor, customer, who):
    if who == "customer":
        client.force_login(customer)
    elif who == "owner":
        # The owner sees the status on /verify/id, not the files (see views_verification).
        client.force_login(contractor)
    elif who == "staff_without_permission":
        client.force_login(UserFactory(is_staff=True))
    elif who == "superuser_inactive":
        user = UserFactory(is_staff=True, is_superuser=True, is_active=False)
        client.force_login(user)
    for which in ("document", "selfie"):
        assert client.get(file_url(submitted, which)).status_code == 404


def test_superuser_sees_files_and_unknown_parts_are_404(client, submitted, staff):
    client.force_login(staff)
    assert client.get(file_url(submitted)).status_code == 200
    assert client.get(file_url(submitted, "passport")).status_code == 404


def test_purged_files_are_gone_for_reviewers_too(client, submitted):
    verification.id_review(submitted, by=reviewer(), decision="approve", reason="ok", now=T0)
    verification.id_documents_purge(now=T0 + dt.timedelta(days=400))
    client.force_login(reviewer())
    assert client.get(file_url(submitted)).status_code == 404


# --- The page ----------------------------------------------------------------


def test_page_upload_then_status(client, contractor):
    client.force_login(contractor)
    page = client.get(PAGE)
    assert 'accept="image/*"' in page.text
    assert "deleted 30 days after the decision" in page.text
    response = client.post(
        PAGE,
        {"document": upload("id.png", png_bytes((120, 80)), "image/png"), "selfie": upload("me.png", png_bytes(), "image/png")},
        follow=True,
    )
    assert "Thanks! Staff will check your ID" in response.text
    assert "Waiting for review" in response.text
    assert 'name="document"' not in response.text  # no second upload while pending
    doc = IdentityDocument.objects.get(user=contractor)
    assert str(doc.public_id) not in response.text  # no link to the files


def test_page_bad_file_shows_error_next_to_field(client, contractor):
    client.force_login(contractor)
    response = client.post(
        PAGE, {"document": upload("id.jpg", b"GIF89a-nope", "image/jpeg"), "selfie": upload("me.png", png_bytes(), "image/png")}
    )
    assert response.status_code == 400
    assert field_errors(response.text, "document") == ["This file is not a valid image. Upload a JPEG, PNG or WebP photo."]
    assert not IdentityDocument.objects.exists()


def test_page_missing_selfie(client, contractor):
    client.force_login(contractor)
    response = client.post(PAGE, {"document": upload("id.png", png_bytes(), "image/png")})
    assert response.status_code == 400
    assert field_errors(response.text, "selfie") == ["Take or choose a selfie."]
    assert not IdentityDocument.objects.exists()


def test_page_rejected_shows_reason_and_form(client, contractor):
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="reject", reason="Corners cut off", now=T0)
    client.force_login(contractor)
    page = client.get(PAGE)
    assert "We couldn't verify your ID" in page.text
    assert "Corners cut off" in page.text
    assert 'name="document"' in page.text


def test_page_customer_is_told_it_is_for_contractors_and_post_refused(client, customer):
    client.force_login(customer)
    page = client.get(PAGE)
    assert "ID verification is for contractors" in page.text
    assert 'name="document"' not in page.text
    response = client.post(PAGE, {"document": upload("id.png", png_bytes(), "image/png"), "selfie": upload("me.png", png_bytes(), "image/png")})
    assert response.status_code == 403
    assert not IdentityDocument.objects.exists()


def test_badges_with_dates_on_public_profile(client, contractor):
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="approve", reason="ok", now=T0)
    contractor.refresh_from_db()
    page = client.get(f"/pros/{contractor.contractor_profile.slug}/")
    when = timezone.localtime(T0)
    assert f"ID verified {when:%b} {when.day}, {when.year}" in page.text


# --- The audit log -----------------------------------------------------------


def test_audit_entries_cannot_be_changed_or_deleted(customer):
    entry = verification.audit_record(customer, "test.thing", customer, "why", {"n": 1})
    entry.reason = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="x")
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    for sql in ("UPDATE accounts_auditentry SET reason = 'x'", "DELETE FROM accounts_auditentry"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    fresh = AuditEntry.objects.get(pk=entry.pk)
    assert (fresh.reason, fresh.data, fresh.actor_repr, fresh.subject_repr) == ("why", {"n": 1}, "dana@example.com", "Dana Lee")


def test_audit_record_refuses_unsaved_subjects_and_bad_actions(customer):
    with pytest.raises(ValueError):
        verification.audit_record(customer, "", None)
    with pytest.raises(ValueError):
        verification.audit_record(customer, "x", IdentityDocument(user=customer))
    assert not AuditEntry.objects.exists()


def test_audit_record_rolls_back_with_its_decision(customer):
    with pytest.raises(RuntimeError), transaction.atomic():
        verification.audit_record(customer, "test.rolled_back", None)
        raise RuntimeError
    assert not AuditEntry.objects.exists()


def test_phone_and_id_badges_with_dates_on_the_offer_card(client, customer, contractor, settings):
    from messaging.sms import ConsoleSMS
    from tests.tasks.factories import OfferFactory, TaskFactory

    settings.SMS_BACKEND = "messaging.sms.ConsoleSMS"
    ConsoleSMS.outbox.clear()
    verification.phone_send_code(contractor, "4155550100", now=T0)
    code = re.search(r"\b(\d{6})\b", ConsoleSMS.outbox[-1].body).group(1)
    verification.phone_confirm(contractor, code, now=T0)
    doc = submit(contractor)
    verification.id_review(doc, by=reviewer(), decision="approve", reason="ok", now=T0 + dt.timedelta(days=1))
    task = TaskFactory(customer=customer)
    OfferFactory(task=task, contractor=contractor)

    client.force_login(customer)
    page = client.get(f"/tasks/{task.public_id}").text
    phone_day = timezone.localtime(T0)
    id_day = timezone.localtime(T0 + dt.timedelta(days=1))
    assert f"Phone verified {phone_day:%b} {phone_day.day}, {phone_day.year}" in page
    assert f"ID verified {id_day:%b} {id_day.day}, {id_day.year}" in page
