"""messaging/selectors.py: access, inbox, history pages and search (PostgreSQL)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser, Permission

from core.errors import NotFound
from messaging import selectors
from messaging.models import Conversation
from messaging.services import message_mark_read
from tests.factories import ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = pytest.mark.django_db


# --- One conversation -------------------------------------------------------------------------


def test_participants_get_the_conversation(conversation, customer, contractor):
    assert selectors.conversation_get_for_user(conversation.public_id, customer) == conversation
    assert selectors.conversation_get_for_user(str(conversation.public_id), contractor) == conversation


@pytest.mark.parametrize("who", ["outsider", "other_contractor", "anonymous", "plain_staff"])
def test_others_get_not_found(who, request, conversation):
    if who == "anonymous":
        user = AnonymousUser()
    elif who == "plain_staff":
        user = UserFactory(is_staff=True)  # staff, but without the permission
    else:
        user = request.getfixturevalue(who)
    with pytest.raises(NotFound):
        selectors.conversation_get_for_user(conversation.public_id, user)


def test_staff_with_the_permission_may_read(conversation, staff):
    assert selectors.conversation_get_for_user(conversation.public_id, staff) == conversation
    support = UserFactory(is_staff=True)
    support.user_permissions.add(Permission.objects.get(codename="view_conversation", content_type__app_label="messaging"))
    assert selectors.conversation_get_for_user(conversation.public_id, support) == conversation


@pytest.mark.parametrize("key", ["not-a-uuid", "", None, uuid.uuid4()])
def test_bad_or_unknown_id_is_not_found(key, conversation, customer):
    with pytest.raises(NotFound):
        selectors.conversation_get_for_user(key, customer)


# --- Inbox ------------------------------------------------------------------------------------


def test_inbox_shows_unread_counts_and_the_last_message(conversation, customer, contractor, add_message):
    for body in ("Hi Dana", "I can come Thursday", "Or Friday?"):
        add_message(conversation, contractor, body)
    message_mark_read(conversation, by=customer, up_to_seq=1)

    (row,) = selectors.conversations_for_user(customer)
    assert row == conversation
    assert row.unread_count == 2
    assert row.last_body == "Or Friday?"
    assert row.last_sender_id == contractor.pk
    (bobs,) = selectors.conversations_for_user(contractor)
    assert bobs.unread_count == 0  # his own messages
    assert selectors.unread_total(customer) == 2
    assert selectors.unread_total(contractor) == 0

    add_message(conversation, customer, "Friday is better")  # replying reads everything
    assert selectors.conversations_for_user(customer).get().unread_count == 0
    assert selectors.unread_total(contractor) == 1


def test_inbox_only_lists_my_conversations_latest_first(conversation, customer, contractor, outsider, add_message):
    quiet = Conversation.objects.create(
        task=TaskFactory(customer=customer, photos=0), customer=customer, contractor=contractor
    )
    strangers = Conversation.objects.create(
        task=TaskFactory(customer=outsider, photos=0), customer=outsider, contractor=contractor
    )
    add_message(strangers, contractor, "Hello Charlie")
    add_message(conversation, contractor, "Hello Dana")

    assert list(selectors.conversations_for_user(customer)) == [conversation, quiet]
    assert list(selectors.conversations_for_user(contractor)) == [conversation, strangers, quiet]
    assert list(selectors.conversations_for_user(AnonymousUser())) == []
    assert selectors.unread_total(AnonymousUser()) == 0


def test_inbox_takes_one_query_however_many_conversations(customer, add_message, django_assert_num_queries):
    for n in range(6):
        pro = ContractorProfileFactory(user__full_name=f"Pro {n}").user
        task = TaskFactory(customer=customer, photos=0)
        conversation = Conversation.objects.create(task=task, customer=customer, contractor=pro)
        add_message(conversation, pro, f"Offer {n}")
    with django_assert_num_queries(1):
        rows = list(selectors.conversations_for_user(customer))
        shown = [(r.task.title, r.contractor.public_name, r.customer.public_name, r.unread_count, r.last_body) for r in rows]
    assert len(shown) == 6
    assert all(unread == 1 for _title, _name, _me, unread, _body in shown)
    with django_assert_num_queries(1):
        assert selectors.unread_total(customer) == 6


def test_conversations_for_task_by_viewer(task, offer, conversation, customer, contractor, other_contractor, outsider, staff):
    OfferFactory(task=task, contractor=other_contractor)
    with_eve = Conversation.objects.create(task=task, customer=customer, contractor=other_contractor)

    assert set(selectors.conversations_for_task(task, customer)) == {conversation, with_eve}
    assert list(selectors.conversations_for_task(task, contractor)) == [conversation]
    assert list(selectors.conversations_for_task(task, other_contractor)) == [with_eve]
    assert list(selectors.conversations_for_task(task, outsider)) == []
    assert list(selectors.conversations_for_task(task, AnonymousUser())) == []
    assert set(selectors.conversations_for_task(task, staff)) == {conversation, with_eve}


# --- History ----------------------------------------------------------------------------------


def test_messages_after_and_pages_newest_last(conversation, customer, add_message):
    for n in range(1, 8):
        add_message(conversation, customer, f"message {n}")
    assert [m.seq for m in selectors.messages_after(conversation, after_seq=4)] == [5, 6, 7]
    assert [m.seq for m in selectors.messages_after(conversation, after_seq=0, limit=3)] == [1, 2, 3]
    assert selectors.messages_after(conversation, after_seq=7) == []

    assert [m.seq for m in selectors.messages_page(conversation, limit=3)] == [5, 6, 7]
    assert [m.seq for m in selectors.messages_page(conversation, before_seq=5, limit=3)] == [2, 3, 4]
    assert [m.seq for m in selectors.messages_page(conversation, before_seq=2, limit=3)] == [1]
    assert selectors.messages_page(conversation, before_seq=1) == []


def test_history_pages_are_capped(conversation):
    # A client can't ask for the whole history in one go.
    assert selectors._bounded(10_000) == 200
    assert selectors._bounded(0) == 1


# --- Search -----------------------------------------------------------------------------------


def test_search_ranks_stems_and_highlights(conversation, customer, contractor, add_message):
    add_message(conversation, contractor, "The washer is fine.")
    add_message(conversation, contractor, "The tap leaks; leaking taps waste water, so the leak must be fixed today.")
    add_message(conversation, customer, "It leaked all night.")

    results = selectors.search_messages(customer, "leak")
    assert [m.seq for m in results] == [2, 3]  # three matches outrank one; "washer" not matched
    assert "<mark>leaks</mark>" in results[0].headline
    assert "<mark>leaking</mark>" in results[0].headline
    assert results[1].headline == "It <mark>leaked</mark> all night."
    assert results[0].rank > results[1].rank


def test_search_escapes_message_html(conversation, customer, contractor, add_message):
    add_message(conversation, contractor, '<script>alert("leak")</script> leak here')
    add_message(conversation, contractor, "leak 1 <2 & 3> 2")
    results = selectors.search_messages(customer, "leak")
    assert len(results) == 2
    for result in results:
        # The only markup in a headline is ours.
        assert set(re.findall(r"<[^>]*>", result.headline)) <= {"<mark>", "</mark>"}
    by_seq = {m.seq: m.headline for m in results}
    assert "<mark>leak</mark> here" in by_seq[1]
    assert by_seq[2] == "<mark>leak</mark> 1 &lt;2 &amp; 3&gt; 2"


def test_search_uses_web_search_syntax(conversation, customer, contractor, add_message):
    add_message(conversation, contractor, "New cartridge for the kitchen tap")
    add_message(conversation, contractor, "New washer for the bathroom tap")
    assert [m.seq for m in selectors.search_messages(customer, "tap -kitchen")] == [2]
    assert [m.seq for m in selectors.search_messages(customer, '"kitchen tap"')] == [1]
    assert sorted(m.seq for m in selectors.search_messages(customer, "cartridge or washer")) == [1, 2]


def test_search_only_in_my_conversations(conversation, customer, contractor, outsider, add_message):
    strangers = Conversation.objects.create(
        task=TaskFactory(customer=outsider, photos=0), customer=outsider, contractor=contractor
    )
    add_message(strangers, contractor, "Your boiler leak is fixed")
    add_message(conversation, contractor, "Your tap leak is fixed")

    assert [m.body for m in selectors.search_messages(customer, "leak")] == ["Your tap leak is fixed"]
    assert [m.body for m in selectors.search_messages(outsider, "leak")] == ["Your boiler leak is fixed"]
    assert len(selectors.search_messages(contractor, "leak")) == 2
    assert [m.body for m in selectors.search_messages(contractor, "leak", conversation=strangers)] == [
        "Your boiler leak is fixed"
    ]
    # Naming someone else's conversation finds nothing.
    assert selectors.search_messages(customer, "leak", conversation=strangers) == []
    assert selectors.search_messages(AnonymousUser(), "leak") == []


@pytest.mark.parametrize("q", ["", "   ", None, "the"])
def test_empty_or_stopword_search_finds_nothing(q, conversation, customer, contractor, add_message):
    add_message(conversation, contractor, "the tap")
    assert selectors.search_messages(customer, q) == []
