"""The verdict on the task page: the customer (and the contractor) see it next
to the proof; the approval buttons stay theirs to use."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.urls import reverse

from tasks.models import PhotoCheck
from tests.tasks.verification_support import jpeg, submit_proof, task_in_progress, tiles, with_exif

pytestmark = pytest.mark.django_db


def _no_run(execute=False):
    return contextlib.nullcontext()


@pytest.fixture
def task(customer, contractor):
    return task_in_progress(customer, contractor, before=[jpeg(tiles(30))])


def page(client, user, task) -> str:
    client.force_login(user)
    response = client.get(reverse("tasks:detail", args=[task.public_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_customer_sees_photos_checked_offline_with_the_ai_off(client, task, customer, contractor, django_capture_on_commit_callbacks):
    submit_proof(task, contractor, [jpeg(tiles(31))], capture=django_capture_on_commit_callbacks)

    html = page(client, customer, task)

    assert "Photos checked" in html
    assert "These photos passed our basic checks. The AI check is off." in html
    assert "Approve" in html  # the decision stays the customer's


def test_customer_sees_a_closer_look_when_exif_is_off(client, task, customer, contractor, django_capture_on_commit_callbacks):
    old = with_exif(tiles(32), taken=dt.datetime(2018, 1, 1, 9, 0))
    submit_proof(task, contractor, [old], capture=django_capture_on_commit_callbacks)

    html = page(client, customer, task)

    assert "We&#x27;re taking a closer look" in html
    assert "Basic checks only: the AI photo check is off." in html
    assert "Photos checked" not in html


def test_customer_and_contractor_see_the_problem_of_a_failed_check(client, task, customer, contractor):
    proof = submit_proof(task, contractor, [jpeg(tiles(33))], capture=_no_run)
    PhotoCheck.objects.create(
        proof=proof,
        status=PhotoCheck.Status.FAIL,
        attempts=1,
        ai_model="gpt-4o",
        summary_for_customer="These photos don't seem to show the work asked for: a different sink.",
    )

    for user in (customer, contractor):
        html = page(client, user, task)
        assert "Photo problem" in html
        assert "a different sink." in html
        assert "AI photo check is off" not in html


def test_a_check_still_running_says_so_and_a_proof_without_one_shows_nothing(client, task, customer, contractor):
    proof = submit_proof(task, contractor, [jpeg(tiles(34))], capture=_no_run)

    assert "photo-check" not in page(client, customer, task)

    PhotoCheck.objects.create(proof=proof)
    assert "Checking the photos…" in page(client, customer, task)
