"""Checkout in real Chromium on the simulated gateway: a declined card shows
the error and books nothing; the success card books the pro and the task page
says "Payment held until you approve" with the amounts. Screenshots of each
step at phone and desktop width under test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from payments.models import Escrow
from tasks.models import Task
from tests.browser.conftest import shot
from tests.browser.test_task_loop import log_in
from tests.factories import CategoryFactory, ContractorProfileFactory, UserFactory
from tests.tasks.factories import OfferFactory, TaskFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill_card(page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")


def test_declined_then_success_card_books_and_shows_payment_held(browser, browser_context_args, live_server):
    plumbing = CategoryFactory(name="Plumbing", slug="plumbing")
    dana = UserFactory(email="dana@example.com", full_name="Dana Lee")
    bob = ContractorProfileFactory(
        user__email="bob@example.com", user__full_name="Bob Builder", slug="bob-builder", trades=[plumbing]
    ).user
    task = TaskFactory(customer=dana, category=plumbing, title="Fix the dripping kitchen tap")
    OfferFactory(task=task, contractor=bob, price_cents=11_000)

    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, live_server.url, "dana@example.com")
    page.goto(f"{live_server.url}/tasks/{task.public_id}")
    page.get_by_role("button", name="Accept Bob for $110.00").click()
    page.wait_for_url("**/payments/checkout/**")
    main = page.locator("main")
    expect(main).to_contain_text("Demo: no real card is charged.")
    expect(main).to_contain_text("Total charged now")
    expect(main).to_contain_text("$115.50")
    shot(page, "checkout-01-form")

    # A declined card: a clear error, nothing booked, the form is there to try again.
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name="Pay $115.50").click()
    expect(page.locator("#checkout-error")).to_have_text("Your card was declined.")
    shot(page, "checkout-02-declined")
    assert Task.objects.get(pk=task.pk).status == "open"
    assert not Escrow.objects.filter(task=task, status="held").exists()

    # The success card books Bob; the task page says the payment is held.
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Pay $115.50").click()
    page.wait_for_url(f"**/tasks/{task.public_id}")
    expect(main).to_contain_text("You booked Bob Builder.")
    expect(page.locator(".task-head .status")).to_have_text("Assigned")
    money = page.locator("#money")
    expect(money).to_contain_text("Payment held until you approve")
    expect(money).to_contain_text("$5.50")
    expect(money).to_contain_text("$115.50")
    shot(page, "checkout-03-booked")

    escrow = Escrow.objects.get(task=task, status="held")
    assert (escrow.captured_cents, escrow.contractor) == (11_550, bob)
    page.goto(f"{live_server.url}/payments/history")
    expect(page.locator("#payments-table")).to_contain_text("Held until you approve")
    shot(page, "checkout-04-history")
    context.close()
