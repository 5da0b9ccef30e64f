"""The dispute page shows several forms at once (respond, propose, evidence,
reject) whose fields share names. Their element ids must not repeat, or a
label points at another form's field: "Your side" labelled the evidence
note too, and clicking "Note" typed into the response (found by the
Chromium test in tests/browser/test_review_and_dispute.py)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from reputation import disputes
from tests.reputation.dispute_support import TEXT, submitted_task

pytestmark = pytest.mark.django_db


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.label_targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids[attrs["id"]] += 1
        if tag == "label" and attrs.get("for"):
            self.label_targets.append(attrs["for"])


def ids_of(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    return parser


def assert_ids_distinct(html: str) -> None:
    parsed = ids_of(html)
    repeated = sorted(name for name, n in parsed.ids.items() if n > 1)
    assert repeated == []
    assert parsed.label_targets
    missing = sorted(target for target in parsed.label_targets if parsed.ids[target] != 1)
    assert missing == []


def test_respondent_page_has_one_element_per_id(client, customer, contractor):
    dispute = disputes.dispute_open(submitted_task(customer, contractor), by=customer, reason="poor_quality", text=TEXT)
    client.force_login(contractor)
    page = client.get(reverse("disputes:detail", args=[dispute.public_id])).content.decode()
    assert "/respond" in page and "/evidence" in page  # both forms with a "text" field are there
    assert_ids_distinct(page)
    assert 'for="respond-text"' in page and 'for="evidence-text"' in page


def test_page_with_a_proposal_to_answer_has_one_element_per_id(client, customer, contractor):
    dispute = disputes.dispute_open(submitted_task(customer, contractor), by=customer, reason="poor_quality", text=TEXT)
    disputes.dispute_respond(dispute, by=contractor, text=TEXT, proposal_kind="partial_refund", percent=30)
    client.force_login(customer)
    page = client.get(reverse("disputes:detail", args=[dispute.public_id])).content.decode()
    assert "/reject" in page and "/propose" in page  # both forms with a "message" field are there
    assert_ids_distinct(page)
    assert 'for="reject-message"' in page and 'for="propose-message"' in page
