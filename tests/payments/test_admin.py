"""The payments admin: lists and filters, the money timeline, refund and
split actions through the services (with bad input refused and nothing
changed), payout retry, read-only screens, and who may do what."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission

from payments import services
from payments.gateway import GatewayError
from payments.gateway import simulated as sim
from payments.models import Escrow, LedgerTransaction, Payout, ReconciliationRun, Refund, WebhookEvent
from tests.factories import UserFactory
from tests.payments.helpers import fund
from tests.tasks.factories import OfferFactory, TaskFactory
from tests.tasks.pages_support import text

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/payments/escrow/"


@pytest.fixture(autouse=True)
def webhooks_and_refunds_at_once(monkeypatch):
    from payments.tasks_webhooks import process_webhook_event

    monkeypatch.setattr("payments.webhooks._enqueue", lambda pk: process_webhook_event.delay(pk))


@pytest.fixture
def held(customer, contractor):
    task = TaskFactory(customer=customer, title="Fix the dripping kitchen tap")
    return fund(OfferFactory(task=task, contractor=contractor, price_cents=11_000))


def state(escrow) -> tuple:
    escrow = Escrow.objects.get(pk=escrow.pk)
    return (
        escrow.status,
        escrow.captured_cents,
        escrow.released_cents,
        escrow.refunded_cents,
        LedgerTransaction.objects.filter(escrow=escrow).count(),
        Refund.objects.filter(escrow=escrow).count(),
        Payout.objects.filter(escrow=escrow).count(),
    )


def act(client, action: str, escrows, **data):
    payload = {"action": action, ACTION_CHECKBOX_NAME: [str(e.pk) for e in escrows], **data}
    return client.post(CHANGELIST, payload)


# --- lists, filters, the money timeline ---------------------------------------------------


def test_escrow_list_filters_and_search(client, staff, held):
    other = fund(OfferFactory(task=TaskFactory(title="Hang two shelves"), price_cents=8_000))
    services.escrow_freeze(other, reason="Chargeback opened")
    client.force_login(staff)
    page = text(client.get(CHANGELIST))
    assert "Fix the dripping kitchen tap" in page and "Hang two shelves" in page
    page = text(client.get(CHANGELIST + "?status__exact=held"))
    assert "Fix the dripping kitchen tap" in page and "Hang two shelves" not in page
    page = text(client.get(CHANGELIST + "?frozen=yes"))
    assert "Hang two shelves" in page and "Fix the dripping kitchen tap" not in page
    assert client.get(CHANGELIST + "?currency=USD").status_code == 200
    page = text(client.get(CHANGELIST + "?q=dana@example.com"))
    assert "Fix the dripping kitchen tap" in page and "Hang two shelves" not in page
    page = text(client.get(CHANGELIST + "?q=bob@example.com"))
    assert "Fix the dripping kitchen tap" in page


def test_escrow_page_shows_the_money_timeline_read_only(client, staff, held):
    client.force_login(staff)
    response = client.get(f"/admin/payments/escrow/{held.pk}/change/")
    assert response.status_code == 200
    page = text(response)
    assert "money timeline (ledger)" in page.lower()
    assert "+115.50 USD Escrow held USD" in page and "-115.50 USD Customer funds in USD" in page
    assert 'name="_save"' not in response.content.decode()
    # No way to write an escrow or a ledger row here.
    assert client.get("/admin/payments/escrow/add/").status_code == 403
    assert client.post(f"/admin/payments/escrow/{held.pk}/delete/", {"post": "yes"}).status_code == 403
    txn = LedgerTransaction.objects.get(escrow=held)
    assert client.post(f"/admin/payments/ledgertransaction/{txn.pk}/change/", {"memo": "x"}).status_code == 403
    assert Escrow.objects.filter(pk=held.pk).exists()


def test_read_only_screens_open(client, staff, held):
    ReconciliationRun.objects.create(checked=3, differences=[{"kind": "charge", "id": "ch_x", "problem": "missing"}])
    ReconciliationRun.objects.create(checked=4, differences=[])
    client.force_login(staff)
    for path in (
        "/admin/payments/ledgertransaction/",
        "/admin/payments/ledgeraccount/",
        "/admin/payments/payout/",
        "/admin/payments/refund/",
        "/admin/payments/webhookevent/?status__exact=processed",
        "/admin/payments/gatewayoperation/",
        "/admin/payments/reconciliationrun/",
    ):
        assert client.get(path).status_code == 200, path
    page = text(client.get("/admin/payments/webhookevent/?status__exact=processed"))
    assert "payment_intent.succeeded" in page
    assert WebhookEvent.objects.filter(type="payment_intent.succeeded").exists()
    runs = client.get("/admin/payments/reconciliationrun/")
    assert [r.checked for r in runs.context["cl"].result_list] == [4, 3]  # latest first


# --- refund ------------------------------------------------------------------------------------


def test_refund_asks_and_says_what_will_happen_then_refunds(client, staff, held, django_capture_on_commit_callbacks):
    client.force_login(staff)
    response = act(client, "refund_escrow", [held])
    assert response.status_code == 200
    page = text(response)
    assert "Refund $115.50 to Dana Lee; the contractor gets nothing." in page
    assert response.context["form"]["amount"].value() == "115.50"

    with django_capture_on_commit_callbacks(execute=True):  # the gateway refund is made after the commit
        response = act(client, "refund_escrow", [held], apply="1", amount="115.50", reason="Customer cancelled by phone")
    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.refunded_cents) == ("refunded", 11_550)
    refund = Refund.objects.get(escrow=held)
    assert (refund.amount_cents, refund.reason, refund.status) == (11_550, "Customer cancelled by phone", "succeeded")
    assert LedgerTransaction.objects.get(escrow=held, kind="refund").created_by == staff


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "200.00", "reason": "Too much"}, "amount", "At most $115.50 can be refunded: that is what is still held."),
        ({"amount": "-5", "reason": "Negative"}, "amount", "The amount cannot be negative."),
        ({"amount": "10.005", "reason": "Fractions"}, "amount", "Use at most two decimal places (cents)."),
        ({"amount": "lots", "reason": "Words"}, "amount", "Enter an amount in dollars, like 180 or 180.50."),
        ({"amount": "115.50", "reason": ""}, "reason", "This field is required."),
        ({"amount": "115.50", "reason": "no"}, "reason", "Ensure this value has at least 5 characters (it has 2)."),
    ],
)
def test_bad_refund_input_is_refused_and_nothing_moves(client, staff, held, data, field, message):
    client.force_login(staff)
    before = state(held)
    response = act(client, "refund_escrow", [held], apply="1", **data)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert state(held) == before


def test_part_refund_is_refused_by_the_service_with_a_hint_to_split(client, staff, held):
    client.force_login(staff)
    before = state(held)
    response = act(client, "refund_escrow", [held], apply="1", amount="50.00", reason="Half back please")
    assert response.status_code == 400
    assert "split instead" in text(response)
    assert state(held) == before


def test_refund_needs_exactly_one_escrow(client, staff, held):
    other = fund(OfferFactory(task=TaskFactory(), price_cents=8_000))
    client.force_login(staff)
    before = (state(held), state(other))
    response = act(client, "refund_escrow", [held, other], apply="1", amount="115.50", reason="Both please")
    assert response.status_code == 302
    assert (state(held), state(other)) == before


# --- split -------------------------------------------------------------------------------------


def test_split_pays_the_contractor_part_and_refunds_the_rest(client, staff, held):
    client.force_login(staff)
    response = act(client, "split_escrow", [held], apply="1", contractor_amount="45.00", reason="Call-out fee only")
    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.released_cents, held.refunded_cents) == ("split", 4_500, 7_050)
    assert Payout.objects.get(escrow=held).amount_cents == 4_050  # $45.00 less 10 % commission
    assert Refund.objects.get(escrow=held).amount_cents == 7_050


def test_split_confirmation_spells_out_both_sides(client, staff, held):
    client.force_login(staff)
    # A valid amount without "apply" only previews.
    response = act(client, "split_escrow", [held], contractor_amount="45.00", reason="Call-out fee only")
    assert response.status_code == 200
    assert "Bob Builder gets the amount you enter" in text(response)
    assert state(held)[0] == "held"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-10", "The amount cannot be negative."),
        ("110.01", "At most the agreed price, $110.00, can go to the contractor."),
        ("ten", "Enter an amount in dollars, like 180 or 180.50."),
    ],
)
def test_bad_split_input_is_refused_and_nothing_moves(client, staff, held, amount, message):
    client.force_login(staff)
    before = state(held)
    response = act(client, "split_escrow", [held], apply="1", contractor_amount=amount, reason="Dispute decided")
    assert response.status_code == 400
    assert response.context["form"].errors["contractor_amount"] == [message]
    assert state(held) == before


def test_split_of_zero_is_refused_by_the_service(client, staff, held):
    client.force_login(staff)
    before = state(held)
    response = act(client, "split_escrow", [held], apply="1", contractor_amount="0", reason="Nothing to the pro")
    assert response.status_code == 400
    assert "use a refund for nothing" in text(response)
    assert state(held) == before


def test_a_refunded_escrow_cannot_be_split(client, staff, held):
    services.escrow_refund(held, reason="Cancelled", by=staff)
    client.force_login(staff)
    before = state(held)
    response = act(client, "split_escrow", [held], apply="1", contractor_amount="10", reason="Too late now")
    assert response.status_code == 409
    assert state(held) == before


# --- payouts -----------------------------------------------------------------------------------


def test_failed_payout_is_filterable_and_retried_now(client, staff, held):
    from tests.payments.factories import payouts_enabled

    escrow = services.escrow_release(held)
    payouts_enabled(escrow.contractor)
    payout = Payout.objects.get(escrow=escrow)
    account = escrow.contractor.connected_account
    sim.STORE.objects[account.gateway_account_id] = {
        "id": account.gateway_account_id, "object": "account", "payouts_enabled": True, "details_submitted": True,
    }
    sim.fail_next("create_transfer", GatewayError("Bank unreachable", retryable=True))
    payout = services.payout_attempt(payout, now=payout.available_at)
    assert payout.status == "failed" and payout.next_attempt_at is not None

    client.force_login(staff)
    page = text(client.get("/admin/payments/payout/?attention=failed"))
    assert "Bank unreachable" in page
    response = client.post("/admin/payments/payout/", {"action": "retry_now", ACTION_CHECKBOX_NAME: [str(payout.pk)]})
    assert response.status_code == 302
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.transfer_id
    assert LedgerTransaction.objects.filter(escrow=escrow, kind="payout").count() == 1


# --- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["customer", "contractor", "outsider"])
def test_non_staff_never_reach_the_payments_admin(client, request, held, who):
    client.force_login(request.getfixturevalue(who))
    before = state(held)
    assert client.get(CHANGELIST).status_code == 302
    response = act(client, "refund_escrow", [held], apply="1", amount="115.50", reason="Give it back")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert state(held) == before


def test_staff_who_may_only_view_cannot_move_money(client, held):
    viewer = UserFactory(email="vic@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_escrow"))
    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    before = state(held)
    response = act(client, "refund_escrow", [held], apply="1", amount="115.50", reason="Give it back")
    assert response.status_code in (200, 302)
    assert state(held) == before
    assert client.get("/admin/payments/payout/").status_code == 403
