"""Double-blind: what the reviewer, the reviewed, a third user and an
anonymous visitor see, before and after publication."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from reputation import selectors, services
from reputation.models import Review
from tests.reputation.review_support import completed_task

pytestmark = pytest.mark.django_db


def texts(qs):
    return [r.text for r in qs]


def test_before_publication_only_the_author_sees_it(client, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=3, text="BLIND-A")
    anon = AnonymousUser()
    assert texts(selectors.reviews_on_task(task, customer)) == ["BLIND-A"]
    assert texts(selectors.reviews_on_task(task, contractor)) == []
    assert texts(selectors.reviews_on_task(task, outsider)) == []
    assert texts(selectors.reviews_on_task(task, anon)) == []
    assert texts(selectors.reviews_for(contractor, contractor)) == []
    assert texts(selectors.reviews_for(contractor, outsider)) == []
    assert texts(selectors.reviews_for(contractor, anon)) == []
    assert texts(selectors.reviews_received(contractor)) == []
    # Pages: the public profile, anonymous and the reviewed contractor himself.
    url = reverse("accounts:public_profile", kwargs={"slug": "bob-builder"})
    assert "BLIND-A" not in client.get(url).content.decode()
    client.force_login(contractor)
    assert "BLIND-A" not in client.get(url).content.decode()
    assert "BLIND-A" not in client.get(reverse("reputation:mine")).content.decode()
    assert "BLIND-A" not in client.get(reverse("tasks:detail", kwargs={"public_id": task.public_id})).content.decode()


def test_after_both_reviewed_everyone_sees_both(client, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=customer, stars=3, text="BLIND-A")
    services.review_submit(task=task, by=contractor, stars=4, text="BLIND-B")
    for viewer in (customer, contractor, outsider, AnonymousUser()):
        assert sorted(texts(selectors.reviews_on_task(task, viewer))) == ["BLIND-A", "BLIND-B"]
    assert texts(selectors.reviews_for(contractor, AnonymousUser())) == ["BLIND-A"]
    assert texts(selectors.reviews_for(customer, outsider, Review.Role.CONTRACTOR_TO_CUSTOMER)) == ["BLIND-B"]
    assert "BLIND-A" in client.get(reverse("accounts:public_profile", kwargs={"slug": "bob-builder"})).content.decode()


def test_window_closing_shows_the_one_review_to_everyone(client, customer, contractor, outsider):
    task = completed_task(customer, contractor)
    services.review_submit(task=task, by=contractor, stars=5, text="ONLY-B")
    assert texts(selectors.reviews_for(customer, outsider, None)) == []
    services.reviews_publish_due(now=task.completed_at + dt.timedelta(days=14, minutes=1))
    for viewer in (customer, contractor, outsider, AnonymousUser()):
        assert texts(selectors.reviews_on_task(task, viewer)) == ["ONLY-B"]
