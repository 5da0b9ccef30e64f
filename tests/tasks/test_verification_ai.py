"""The AI photo check through the real openai client, against a fake of its
HTTP API on loopback: only a confident, complete "yes" passes; a confident
"no" fails; a timeout, a 500, a refusal, invalid JSON or a reply missing
fields is retried a bounded number of times and then goes to review."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from messaging.models import Notification
from tasks.ai import VERDICT_SCHEMA
from tasks.models import PhotoCheck, Task
from tasks.verification import checks_needing_review, failed_checks
from tests.tasks.verification_support import (
    FakeOpenAI,
    Reply,
    check_of,
    completion,
    jpeg,
    json_reply,
    submit_proof,
    task_in_progress,
    tiles,
    verdict,
)

pytestmark = pytest.mark.django_db

ATTEMPTS = 3


@pytest.fixture
def fake_openai():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def ai_on(settings, fake_openai):
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.OPENAI_MODEL = "gpt-4o"
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    settings.OPENAI_MAX_RETRIES = 0
    settings.PHOTO_CHECK_AI_ATTEMPTS = ATTEMPTS
    return fake_openai


@pytest.fixture
def task(customer, contractor):
    return task_in_progress(customer, contractor, before=[jpeg(tiles(10))])


def send(task, contractor, django_capture_on_commit_callbacks):
    proof = submit_proof(task, contractor, [jpeg(tiles(11)), jpeg(tiles(12))], capture=django_capture_on_commit_callbacks)
    return check_of(proof)


def test_confident_complete_verdict_passes_and_keeps_answer_model_and_cost(
    ai_on, task, contractor, customer, django_capture_on_commit_callbacks
):
    ai_on.script(json_reply(verdict()))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.PASS
    assert check.summary_for_customer == "The tap is reassembled with a new cartridge and is not dripping."
    assert check.ai_verdict == verdict()
    assert check.ai_model == "gpt-4o-2024-08-06"  # as the API reported it
    assert (check.ai_prompt_tokens, check.ai_completion_tokens, check.attempts) == (1200, 80, 1)
    # 1200 x 250 + 80 x 1000 cents per million tokens = 0.38 cents
    assert check.ai_cost_cents_estimate == Decimal("0.3800")
    assert check.last_error == ""
    assert check.local_findings["problems"] == []
    # The customer still decides: the task waits for approval.
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED
    assert not Notification.objects.filter(title__contains="didn't pass").exists()


def test_request_carries_model_schema_description_and_both_sets_of_photos(
    ai_on, task, contractor, django_capture_on_commit_callbacks
):
    ai_on.script(json_reply(verdict()))

    send(task, contractor, django_capture_on_commit_callbacks)

    (request,) = ai_on.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-key"
    body = request["json"]
    assert body["model"] == "gpt-4o"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "proof_of_work_verdict", "strict": True, "schema": VERDICT_SCHEMA},
    }
    system, user = body["messages"]
    assert system["role"] == "system"
    texts = [part["text"] for part in user["content"] if part["type"] == "text"]
    assert task.description in texts[0] and task.title in texts[0]
    assert "New cartridge fitted" in texts[0]
    assert texts[1] == "BEFORE photos (the problem), 1:"
    assert texts[2] == "AFTER photos (the proof of work), 2:"
    images = [part["image_url"]["url"] for part in user["content"] if part["type"] == "image_url"]
    assert len(images) == 3
    assert all(url.startswith("data:image/jpeg;base64,") for url in images)
    # The first image is the stored "before" photo, byte for byte.
    before = task.photos.get(kind="problem")
    with before.image.open("rb") as handle:
        assert base64.b64decode(images[0].split(",", 1)[1]) == handle.read()


def test_confident_no_fails_and_tells_customer_and_contractor(
    ai_on, task, contractor, customer, django_capture_on_commit_callbacks
):
    ai_on.script(
        json_reply(
            verdict(
                matches_task=False,
                work_visible=False,
                complete=False,
                confidence=0.95,
                problems=["The after photos show a bathroom sink, not the kitchen tap."],
                summary="These photos show a different sink.",
            )
        )
    )

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.FAIL
    assert check.summary_for_customer == (
        "These photos don't seem to show the work asked for: The after photos show a bathroom sink, not the kitchen tap."
    )
    assert check.attempts == 1
    assert list(failed_checks()) == [check]
    titles = dict(Notification.objects.filter(task=task, title__contains="didn't pass").values_list("user__email", "title"))
    assert titles == {
        "dana@example.com": f"The photos for “{task.title}” didn't pass our check",
        "bob@example.com": f"Your proof photos for “{task.title}” didn't pass our check",
    }
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED  # approval stays the customer's decision


def test_unsure_no_is_reviewed_not_failed(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(json_reply(verdict(matches_task=False, confidence=0.6, problems=["Too dark to tell."])))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.summary_for_customer.startswith("We're taking a closer look at these photos.")


@pytest.mark.parametrize(
    "answer",
    [
        verdict(confidence=0.5),  # below PHOTO_CHECK_PASS_CONFIDENCE (80 %)
        verdict(complete=False, problems=["The tap body is still off."]),
        verdict(work_visible=False),
    ],
    ids=["low-confidence", "incomplete", "work-not-visible"],
)
def test_a_yes_that_is_not_confident_and_complete_goes_to_review(
    ai_on, task, contractor, django_capture_on_commit_callbacks, answer
):
    ai_on.script(json_reply(answer))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.attempts == 1
    assert check.ai_verdict == answer


def _assert_reviewed_after_bounded_retries(check, fake, *, error: str, requests: int = ATTEMPTS):
    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.attempts == ATTEMPTS
    assert len(fake.requests) == requests
    assert error in check.last_error
    assert check.ai_verdict is None
    assert list(checks_needing_review()) == [check]
    assert not Notification.objects.filter(title__contains="didn't pass").exists()


def test_timeout_is_retried_then_reviewed(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(Reply(delay=1.5, body=completion(json.dumps(verdict()))))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="did not answer in time")


def test_server_error_is_retried_then_reviewed(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(Reply(status=500, body={"error": {"message": "The server had an error", "type": "server_error"}}))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="HTTP 500")


def test_library_retries_are_bounded_too(settings, ai_on, task, contractor, django_capture_on_commit_callbacks):
    settings.OPENAI_MAX_RETRIES = 1  # the library's quick retry inside each of our attempts
    ai_on.script(Reply(status=503, body={"error": {"message": "overloaded", "type": "server_error"}}))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="HTTP 503", requests=ATTEMPTS * 2)


def test_refusal_is_retried_then_reviewed_with_tokens_counted(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(Reply(body=completion(None, refusal="I can't help with that.")))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="The model refused: I can't help with that.")
    assert (check.ai_prompt_tokens, check.ai_completion_tokens) == (1200 * ATTEMPTS, 80 * ATTEMPTS)


def test_invalid_json_is_retried_then_reviewed(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(json_reply('{"matches_task": true, "work_visible": tru'))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="reply is not JSON")
    assert check.ai_raw == '{"matches_task": true, "work_visible": tru'


def test_reply_missing_fields_is_retried_then_reviewed(ai_on, task, contractor, django_capture_on_commit_callbacks):
    answer = verdict()
    del answer["complete"]
    ai_on.script(json_reply(answer))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    _assert_reviewed_after_bounded_retries(check, ai_on, error="'complete' is a required property")


@pytest.mark.parametrize(
    "answer, error",
    [
        (verdict(confidence=1.7), "confidence: 1.7 is greater than the maximum of 1"),
        (verdict(confidence="high"), "confidence: 'high' is not of type 'number'"),
        (verdict(matches_task="yes"), "matches_task: 'yes' is not of type 'boolean'"),
        (dict(verdict(), extra="x"), "Additional properties are not allowed"),
        (verdict(summary=""), "summary: '' should be non-empty"),
    ],
    ids=["confidence-out-of-range", "confidence-text", "bool-as-text", "extra-field", "empty-summary"],
)
def test_replies_off_the_schema_never_pass(settings, ai_on, task, contractor, django_capture_on_commit_callbacks, answer, error):
    settings.PHOTO_CHECK_AI_ATTEMPTS = 1
    ai_on.script(json_reply(answer))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert error in check.last_error


def test_a_cut_short_reply_never_passes(settings, ai_on, task, contractor, django_capture_on_commit_callbacks):
    settings.PHOTO_CHECK_AI_ATTEMPTS = 1
    ai_on.script(json_reply(verdict(), finish_reason="length"))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.last_error == "The AI reply was cut short (length)."


def test_a_rejected_key_is_not_retried(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(Reply(status=401, body={"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.NEEDS_REVIEW
    assert check.attempts == 1
    assert len(ai_on.requests) == 1
    assert check.last_error == "The AI service answered HTTP 401."


def test_a_failure_then_a_good_answer_passes_on_the_retry(ai_on, task, contractor, django_capture_on_commit_callbacks):
    ai_on.script(Reply(status=500, body={"error": {"message": "oops"}}), json_reply(verdict()))

    check = send(task, contractor, django_capture_on_commit_callbacks)

    assert check.status == PhotoCheck.Status.PASS
    assert check.attempts == 2
    assert len(ai_on.requests) == 2
    assert check.last_error == ""
