"""tasks.verify_proof through a real Celery worker on the Redis broker: the
retries really go back through the queue with a countdown, and stop after
PHOTO_CHECK_AI_ATTEMPTS."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from tasks.models import PhotoCheck
from tasks.verification_tasks import BACKOFF_CAP_SECONDS, backoff_seconds, verify_proof
from tests.tasks.test_sweep_celery import real_broker  # noqa: F401 (fixture)
from tests.tasks.verification_support import (
    FakeOpenAI,
    Reply,
    jpeg,
    json_reply,
    submit_proof,
    task_in_progress,
    tiles,
    verdict,
)


def _no_run(execute=False):
    import contextlib

    return contextlib.nullcontext()


def test_backoff_grows_with_jitter_and_is_capped():
    for retries, expected in ((0, 15), (1, 60), (2, 240)):
        assert 0.8 * expected <= backoff_seconds(retries) <= 1.2 * expected
    assert backoff_seconds(10) <= 1.2 * BACKOFF_CAP_SECONDS <= 3600  # under the broker's visibility timeout


@pytest.fixture
def fake_openai(settings):
    fake = FakeOpenAI().start()
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_BASE_URL = fake.base_url
    settings.OPENAI_TIMEOUT_SECONDS = 2
    settings.OPENAI_MAX_RETRIES = 0
    settings.PHOTO_CHECK_AI_ATTEMPTS = 3
    settings.PHOTO_CHECK_RETRY_BASE_SECONDS = 0.05
    yield fake
    fake.stop()


def _wait_for_decision(proof, seconds=30) -> PhotoCheck:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check = PhotoCheck.objects.filter(proof=proof).exclude(status=PhotoCheck.Status.PENDING).first()
        if check is not None:
            return check
        time.sleep(0.2)
    raise AssertionError("the worker did not decide in time")


@pytest.mark.django_db(transaction=True)
def test_real_worker_retries_through_the_queue_then_sends_to_review(
    customer, contractor, real_broker, fake_openai  # noqa: F811
):
    fake_openai.script(Reply(status=500, body={"error": {"message": "boom"}}))
    task = task_in_progress(customer, contractor, before=[jpeg(tiles(40))])
    # No test transaction here: the service's on-commit hook really queues
    # tasks.verify_proof on Redis, and the worker picks it up.
    proof = submit_proof(task, contractor, [jpeg(tiles(41))], capture=_no_run)

    with start_worker(real_broker, pool="solo", perform_ping_check=True, shutdown_timeout=10):
        check = _wait_for_decision(proof)
        time.sleep(0.5)  # a stray fourth attempt would land now

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.attempts == 3
    assert len(fake_openai.requests) == 3
    assert check.last_error == "The AI service answered HTTP 500."


@pytest.mark.django_db(transaction=True)
def test_real_worker_passes_when_a_retry_gets_an_answer(customer, contractor, real_broker, fake_openai):  # noqa: F811
    fake_openai.script(Reply(status=429, body={"error": {"message": "slow down"}}), json_reply(verdict()))
    task = task_in_progress(customer, contractor, before=[jpeg(tiles(42))])
    proof = submit_proof(task, contractor, [jpeg(tiles(43))], capture=_no_run)

    with start_worker(real_broker, pool="solo", perform_ping_check=True, shutdown_timeout=10):
        check = _wait_for_decision(proof)

    assert check.status == PhotoCheck.Status.PASS
    assert check.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_proof_queued_twice_still_gets_at_most_the_allowed_ai_calls(
    customer, contractor, real_broker, fake_openai  # noqa: F811
):
    fake_openai.script(Reply(status=500, body={"error": {"message": "boom"}}))
    task = task_in_progress(customer, contractor, before=[jpeg(tiles(44))])
    proof = submit_proof(task, contractor, [jpeg(tiles(45))], capture=_no_run)  # queued once here
    verify_proof.delay(proof.pk)  # and once more (a redelivery, a manual re-run)

    with start_worker(real_broker, pool="solo", perform_ping_check=True, shutdown_timeout=10):
        check = _wait_for_decision(proof)
        time.sleep(1)  # let the other chain finish

    check.refresh_from_db()
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.attempts == 3
    assert len(fake_openai.requests) == 3
