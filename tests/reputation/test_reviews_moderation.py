"""Reports go to staff; staff hide a review (or dismiss a report) with a
reason, through the service, audited; the admin queue does the same."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry
from core.errors import ApplicationError, PermissionDenied
from reputation import selectors, services
from reputation.models import Review, ReviewReport
from tests.reputation.review_support import completed_task, fresh, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=1, text="He is a crook, call him at 555-0101")
    services.review_submit(task=task, by=contractor, stars=5)
    return Review.objects.get(role=Review.Role.CUSTOMER_TO_CONTRACTOR)


def test_report_then_staff_hide_with_reason_is_audited(published, outsider, staff, contractor):
    report = services.review_report(review=published, by=outsider, reason="personal_data", note="Phone number")
    services.review_hide(review=published, by=staff, reason="Contains a phone number")

    review = fresh(published)
    assert review.hidden_by_id == staff.pk and review.hidden_reason == "Contains a phone number"
    report = fresh(report)
    assert (report.status, report.decided_by_id, report.decision_reason) == ("hidden", staff.pk, "Contains a phone number")
    entry = AuditEntry.objects.get(action="review.hide")
    assert (entry.actor_id, entry.subject_id, entry.reason) == (staff.pk, str(review.pk), "Contains a phone number")
    assert entry.data["reports"] == [report.pk]
    # Gone from the profile for everyone but staff and its author.
    assert list(selectors.public_reviews_for(contractor)) == []
    assert list(selectors.reviews_for(contractor, outsider)) == []
    assert list(selectors.reviews_for(contractor, staff)) == [review]


def test_hide_needs_staff_and_a_reason_and_changes_nothing_otherwise(published, outsider, contractor, staff):
    before = (Review.objects.filter(pk=published.pk).values().get(), row_counts(), AuditEntry.objects.count())
    for user in (outsider, contractor):
        with pytest.raises(PermissionDenied):
            services.review_hide(review=published, by=user, reason="I don't like it")
    with pytest.raises(ApplicationError) as exc:
        services.review_hide(review=published, by=staff, reason="  no ")
    assert "reason" in exc.value.fields
    assert (Review.objects.filter(pk=published.pk).values().get(), row_counts(), AuditEntry.objects.count()) == before


def test_dismiss_keeps_the_review_and_is_audited(published, outsider, staff, contractor):
    report = services.review_report(review=published, by=outsider, reason="abuse")
    services.review_report_dismiss(report=report, by=staff, reason="Harsh but fair")
    assert fresh(report).status == "dismissed"
    assert fresh(published).hidden_at is None
    assert AuditEntry.objects.get(action="review.report_dismiss").reason == "Harsh but fair"
    with pytest.raises(PermissionDenied):
        services.review_report_dismiss(report=report, by=contractor, reason="Harsh but fair")


def test_admin_queue_lists_reports_and_hides_through_the_service(client, published, outsider, staff):
    report = services.review_report(review=published, by=outsider, reason="personal_data")
    client.force_login(staff)
    changelist = reverse("admin:reputation_reviewreport_changelist")
    html = client.get(changelist).content.decode()
    assert "He is a crook" in html and "Shares personal data" in html
    # The action first asks for a reason and says what will happen.
    confirm = client.post(changelist, {"action": "hide_reviews", "_selected_action": [report.pk]})
    assert "disappear from profiles for everyone" in confirm.content.decode()
    assert fresh(published).hidden_at is None
    client.post(
        changelist,
        {"action": "hide_reviews", "_selected_action": [report.pk], "confirm": "1", "reason": "Phone number in text"},
    )
    assert fresh(published).hidden_reason == "Phone number in text"
    assert fresh(report).status == "hidden"
    assert AuditEntry.objects.filter(action="review.hide", actor=staff).count() == 1


def test_admin_queue_is_staff_only(client, published, outsider):
    client.force_login(outsider)
    response = client.get(reverse("admin:reputation_reviewreport_changelist"))
    assert response.status_code == 302 and "login" in response.url
    assert ReviewReport.objects.count() == 0
