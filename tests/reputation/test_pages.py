"""Review pages: the task page's panel, the review form, reply, report, My
reviews, and the public profile's reputation section."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from reputation import services
from reputation.models import Review, ReviewReply, ReviewReport
from tests.reputation.review_support import completed_task, row_counts

pytestmark = pytest.mark.django_db


def task_url(task):
    return reverse("tasks:detail", kwargs={"public_id": task.public_id})


def review_url(task):
    return reverse("reputation:task_review", kwargs={"public_id": task.public_id})


def test_task_page_shows_the_review_form_to_the_customer(client, customer, contractor):
    task = completed_task(customer, contractor)
    client.force_login(customer)
    html = client.get(task_url(task)).content.decode()
    assert 'id="reviews"' in html
    assert "Review Bob Builder" in html
    assert 'name="quality"' in html and 'name="clarity"' not in html


def test_task_page_shows_the_contractor_their_own_questions(client, customer, contractor):
    task = completed_task(customer, contractor)
    client.force_login(contractor)
    html = client.get(task_url(task)).content.decode()
    assert 'name="clarity"' in html and 'name="payment_promptness"' in html and 'name="quality"' not in html


def test_no_review_panel_before_completion(client, customer, contractor):
    from tests.tasks.factories import TaskFactory

    task = TaskFactory(customer=customer, contractor=contractor, submitted=True, photos=0)
    client.force_login(customer)
    assert 'id="reviews"' not in client.get(task_url(task)).content.decode()


def test_submitting_the_form_saves_a_hidden_review_and_redirects(client, customer, contractor):
    task = completed_task(customer, contractor)
    client.force_login(customer)
    response = client.post(
        review_url(task), {"stars": "5", "quality": "5", "punctuality": "4", "text": "Tidy and quick."}
    )
    assert response.status_code == 302 and response.url == task_url(task)
    review = Review.objects.get()
    assert (review.stars, review.quality, review.punctuality, review.value, review.published_at) == (5, 5, 4, None, None)
    html = client.get(task_url(task)).content.decode()
    assert "Update your review" in html and "Tidy and quick." in html


def test_contractor_sees_that_a_review_waits_but_not_what_it_says(client, customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=1, text="SECRET-WORDS")
    client.force_login(contractor)
    html = client.get(task_url(task)).content.decode()
    assert "has reviewed you. Leave yours to see it." in html
    assert "SECRET-WORDS" not in html


def test_bad_form_input_shows_errors_and_writes_nothing(client, customer, contractor):
    task = completed_task(customer, contractor)
    client.force_login(customer)
    before = row_counts()
    response = client.post(review_url(task), {"stars": "6", "text": "x" * 2001})
    assert response.status_code == 400
    html = response.content.decode()
    assert "errorlist" in html
    assert row_counts() == before


def test_outsider_gets_404_on_the_review_form(client, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    client.force_login(outsider)
    before = row_counts()
    assert client.get(review_url(task)).status_code == 404
    assert client.post(review_url(task), {"stars": "5"}).status_code == 404
    assert row_counts() == before


def test_anonymous_is_sent_to_log_in(client, customer, contractor):
    task = completed_task(customer, contractor)
    response = client.post(review_url(task), {"stars": "5"})
    assert response.status_code == 302 and "login" in response.url
    assert Review.objects.count() == 0


def test_after_the_window_the_form_says_so_and_refuses(client, customer, contractor):
    task = completed_task(customer, contractor, completed_at=timezone.now() - dt.timedelta(days=20))
    client.force_login(customer)
    assert "review window for this task has closed" in client.get(review_url(task)).content.decode()
    response = client.post(review_url(task), {"stars": "5"})
    assert response.status_code == 409
    assert Review.objects.count() == 0


def _published_pair(customer, contractor):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=4, text="Good job, a little late.")
    services.review_submit(task=task, by=contractor, stars=5, text="Lovely client.")
    return task


def test_reviewee_replies_once_from_my_reviews(client, customer, contractor):
    task = _published_pair(customer, contractor)
    client.force_login(contractor)
    html = client.get(reverse("reputation:mine")).content.decode()
    assert "Good job, a little late." in html and "Reply publicly" in html
    url = reverse("reputation:reply", kwargs={"public_id": task.public_id, "role": "customer_to_contractor"})
    assert client.post(url, {"text": "Sorry, traffic on 101."}).status_code == 302
    assert ReviewReply.objects.get().text == "Sorry, traffic on 101."
    client.post(url, {"text": "Second try"})
    assert ReviewReply.objects.count() == 1


def test_only_the_reviewee_may_reply(client, customer, contractor, outsider):
    task = _published_pair(customer, contractor)
    url = reverse("reputation:reply", kwargs={"public_id": task.public_id, "role": "customer_to_contractor"})
    for user in (customer, outsider):
        client.force_login(user)
        client.post(url, {"text": "Not mine to answer"})
    assert ReviewReply.objects.count() == 0


def test_report_a_published_review(client, customer, contractor, outsider):
    task = _published_pair(customer, contractor)
    client.force_login(outsider)
    url = reverse("reputation:report", kwargs={"public_id": task.public_id, "role": "customer_to_contractor"})
    assert client.get(url).status_code == 200
    response = client.post(url, {"reason": "personal_data", "note": "It names the street."})
    assert response.status_code == 302
    report = ReviewReport.objects.get()
    assert (report.reporter_id, report.reason, report.status) == (outsider.pk, "personal_data", "open")


def test_report_with_bad_reason_writes_nothing(client, customer, contractor, outsider):
    task = _published_pair(customer, contractor)
    client.force_login(outsider)
    url = reverse("reputation:report", kwargs={"public_id": task.public_id, "role": "customer_to_contractor"})
    assert client.post(url, {"reason": "boring"}).status_code == 400
    assert ReviewReport.objects.count() == 0


def test_unpublished_review_cannot_be_reported_or_seen(client, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=2)
    client.force_login(outsider)
    url = reverse("reputation:report", kwargs={"public_id": task.public_id, "role": "customer_to_contractor"})
    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "abuse"}).status_code == 404
    assert ReviewReport.objects.count() == 0


def test_my_reviews_lists_what_to_write(client, customer, contractor):
    task = completed_task(customer, contractor)
    client.force_login(customer)
    html = client.get(reverse("reputation:mine")).content.decode()
    assert task.title in html and "Review Bob Builder" in html


def test_public_profile_shows_rating_count_reviews_replies_and_jobs(client, customer, contractor, outsider):
    task = _published_pair(customer, contractor)
    services.review_reply(review=Review.objects.get(role="customer_to_contractor"), by=contractor, text="Thanks Dana!")
    hidden_task = completed_task(customer, contractor)
    services.review_submit(task=hidden_task, by=customer, stars=1, text="NOT-YET-PUBLIC")
    url = reverse("accounts:public_profile", kwargs={"slug": "bob-builder"})
    for who in (None, outsider):
        if who:
            client.force_login(who)
        html = client.get(url).content.decode()
        assert "Trust score" in html
        assert "from 1 review" in html
        assert "Good job, a little late." in html and "Thanks Dana!" in html
        assert "NOT-YET-PUBLIC" not in html
        assert "Why your score is what it is" not in html  # only the owner sees the breakdown
    assert task.pk


def test_owner_sees_the_factor_breakdown_with_hints(client, contractor):
    client.force_login(contractor)
    html = client.get(reverse("accounts:public_profile", kwargs={"slug": "bob-builder"})).content.decode()
    assert "Why your score is what it is" in html
    assert "What would raise it" in html
    assert "Verify your phone number, your ID." in html
    html = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Your reputation" in html and "Verify your phone number, your ID." in html
