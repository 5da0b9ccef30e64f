"""Payment pages: checkout (customer), saved card, payment history and
receipts (customer), earnings and payout set-up (contractor).

Each view checks who is asking (the escrow's customer only; a contractor's own
earnings only; 404 for everyone else, so nobody learns another person's
payment exists), calls one of ``payments.services`` or the gateway's checkout
step, and renders. Money moves only through webhooks -> services: a successful
card confirmation here sends ``payment_intent.succeeded``, whose handler funds
the escrow and books the task."""

from __future__ import annotations

import logging
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError, NotFound

from . import accounts, pages, services
from .forms import CardForm
from .gateway import CardDeclined, GatewayError, get_gateway
from .models import Escrow

logger = logging.getLogger(__name__)

def _task_url(escrow: Escrow) -> str:
    return reverse("tasks:detail", kwargs={"public_id": escrow.task.public_id})


def _checkout_url(escrow: Escrow) -> str:
    return reverse("payments:checkout", kwargs={"escrow_id": escrow.public_id})


def _customer_escrow(request: HttpRequest, escrow_id: UUID) -> Escrow:
    """The escrow if the viewer is the customer who pays it; 404 for everyone
    else (the contractor, another customer, staff: staff use the admin)."""
    try:
        return pages.escrow_for_customer(escrow_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _is_simulated() -> bool:
    return get_gateway().is_simulated


def _test_cards() -> list[tuple[str, str]]:
    return [
        ("4242 4242 4242 4242", _("succeeds")),
        ("4000 0000 0000 0002", _("is declined")),
        ("4000 0000 0000 9995", _("is declined: insufficient funds")),
    ]


def _render_checkout(
    request: HttpRequest, escrow: Escrow, *, form: CardForm | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    state = pages.checkout_state(escrow)
    simulated = _is_simulated()
    context = {
        "escrow": escrow,
        "task": escrow.task,
        "state": state,
        "breakdown": pages.breakdown(escrow),
        "form": form or CardForm(),
        "error": error,
        "simulated": simulated,
        "test_cards": _test_cards(),
        "minutes_left": pages.minutes_left(escrow),
        "stripe_publishable_key": "" if simulated else settings.STRIPE_PUBLISHABLE_KEY,
        "client_secret": "",
        "return_url": request.build_absolute_uri(_checkout_url(escrow)) + "?return=1",
    }
    if state == "pay" and not simulated:
        try:
            context["client_secret"] = get_gateway().retrieve_payment_intent(escrow.payment_intent_id).client_secret
        except GatewayError as exc:
            logger.warning("Checkout %s: could not read its payment intent: %s", escrow.public_id, exc.message)
            context["error"] = error or _("The payment service did not answer. Reload the page in a moment.")
            status = 503 if status == 200 else status
    return render(request, "payments/checkout.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, escrow_id: UUID) -> HttpResponse:
    escrow = _customer_escrow(request, escrow_id)
    state = pages.checkout_state(escrow)
    if state == "paid":
        if request.GET.get("return"):  # back from paying (ours or Stripe's return_url): say how it went
            return _after_payment(request, escrow)
        return redirect(_task_url(escrow))
    if request.method == "GET":
        return _render_checkout(request, escrow)

    # POST: the simulated gateway's card form. With Stripe the card never
    # touches this server: the Payment Element confirms in the browser.
    if not _is_simulated():
        return _render_checkout(request, escrow, error=_("Pay with the card form above."), status=400)
    form = CardForm(request.POST)
    if not form.is_valid():
        return _render_checkout(request, escrow, form=form, status=400)
    if state in ("expired", "closed"):
        return _render_checkout(request, escrow, status=409)
    try:
        if state == "failed":
            # The last card was declined and the escrow closed as failed: a new
            # checkout for the same offer (a new PaymentIntent) takes the retry.
            escrow = services.checkout_start(escrow.offer, by=request.user)
        get_gateway().confirm(escrow.payment_intent_id, form.cleaned_data["card_number"])
    except CardDeclined as exc:
        escrow = pages.escrow_for_customer(escrow.public_id, request.user)
        form = CardForm(initial={"expiry": form.cleaned_data["expiry"]})
        return _render_checkout(request, escrow, form=form, error=exc.message, status=402)
    except GatewayError as exc:
        logger.warning("Checkout %s: gateway refused: %s", escrow.public_id, exc.message)
        escrow = pages.escrow_for_customer(escrow.public_id, request.user)
        return _render_checkout(request, escrow, error=exc.message, status=409)
    except ApplicationError as exc:
        escrow = pages.escrow_for_customer(escrow.public_id, request.user)
        return _render_checkout(request, escrow, error=exc.message, status=exc.status_code)
    return _after_payment(request, escrow)


def _after_payment(request: HttpRequest, escrow: Escrow) -> HttpResponse:
    escrow = pages.escrow_for_customer(escrow.public_id, request.user)
    if escrow.status in (Escrow.Status.HELD, Escrow.Status.RELEASED):
        messages.success(
            request,
            _("You booked %(name)s. You paid %(total)s: payment held until you approve the work.")
            % {"total": pages.money(escrow.total_cents, escrow.currency), "name": escrow.contractor.get_full_name()},
        )
        return redirect(_task_url(escrow))
    if escrow.status == Escrow.Status.REFUNDED:
        messages.warning(
            request,
            _("Someone booked this task a moment before your payment went through. %(total)s was refunded in full.")
            % {"total": pages.money(escrow.total_cents, escrow.currency)},
        )
        return redirect(_task_url(escrow))
    # The gateway took the card; the webhook that books the task is still on
    # its way. The checkout page says so and refreshes itself.
    return redirect(_checkout_url(escrow) + "?return=1")


@login_required
@require_POST
def checkout_restart(request: HttpRequest, escrow_id: UUID) -> HttpResponse:
    """An expired or failed checkout: start a new one for the same offer."""
    escrow = _customer_escrow(request, escrow_id)
    if pages.checkout_state(escrow) == "paid":
        return redirect(_task_url(escrow))
    try:
        fresh = services.checkout_start(escrow.offer, by=request.user)
    except ApplicationError as exc:
        return _render_checkout(request, escrow, error=exc.message, status=exc.status_code)
    return redirect(_checkout_url(fresh))


@login_required
def history(request: HttpRequest) -> HttpResponse:
    """The customer's payments (every funded escrow) and refunds, newest first."""
    context = {
        "payments": pages.customer_payments(request.user),
        "open_checkouts": pages.open_checkouts(request.user),
        "saved_card": pages.saved_card(request.user),
    }
    return render(request, "payments/history.html", context)


@login_required
def receipt(request: HttpRequest, escrow_id: UUID) -> HttpResponse:
    escrow = _customer_escrow(request, escrow_id)
    if escrow.captured_cents == 0:
        raise Http404(_("Nothing was charged for this checkout, so there is no receipt."))
    return render(request, "payments/receipt.html", pages.receipt_context(escrow))


@login_required
def earnings(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_contractor:
        return render(request, "payments/earnings.html", {"not_contractor": True}, status=403)
    context = pages.earnings_context(user)
    context["simulated"] = _is_simulated()
    return render(request, "payments/earnings.html", context)


@login_required
@require_POST
def payouts_setup(request: HttpRequest) -> HttpResponse:
    """Start (or resume) payout onboarding: the gateway's hosted page, or with
    the simulated gateway our demo page."""
    user = request.user
    if not user.is_contractor:
        raise Http404
    if _is_simulated():
        return redirect("payments:payouts_demo")
    try:
        url = accounts.payouts_onboarding_link(
            user,
            refresh_url=request.build_absolute_uri(reverse("payments:earnings")),
            return_url=request.build_absolute_uri(reverse("payments:payouts_return")),
        )
    except (ApplicationError, GatewayError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return redirect("payments:earnings")
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def payouts_demo(request: HttpRequest) -> HttpResponse:
    """Simulated gateway only: stands in for Stripe's hosted onboarding."""
    user = request.user
    if not user.is_contractor or not _is_simulated():
        raise Http404
    if request.method == "GET":
        return render(request, "payments/payouts_demo.html", {"status": pages.payout_setup_status(user)})
    try:
        accounts.payouts_onboarding_link(
            user,
            refresh_url=request.build_absolute_uri(reverse("payments:earnings")),
            return_url=request.build_absolute_uri(reverse("payments:payouts_return")),
        )
        accounts.connected_account_refresh(user)
    except (ApplicationError, GatewayError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return redirect("payments:earnings")
    messages.success(request, _("Payouts are set up. Your available earnings are sent to your bank."))
    return redirect("payments:earnings")


@login_required
def payouts_return(request: HttpRequest) -> HttpResponse:
    """Back from the gateway's onboarding: ask it how far the account got."""
    user = request.user
    if not user.is_contractor:
        raise Http404
    try:
        account = accounts.connected_account_refresh(user)
    except (ApplicationError, GatewayError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    else:
        if account is not None and account.payouts_enabled:
            messages.success(request, _("Payouts are set up. Your available earnings are sent to your bank."))
        else:
            messages.warning(request, _("Payout set-up is not finished yet. Your earnings wait until it is."))
    return redirect("payments:earnings")


def _card_url(next_url: str = "") -> str:
    url = reverse("payments:card")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


@login_required
@require_http_methods(["GET", "POST"])
def card(request: HttpRequest) -> HttpResponse:
    """The customer's saved card for instant booking.

    With Stripe: a SetupIntent (``usage=off_session``) confirmed in the
    browser by Stripe's Payment Element; Stripe sends the browser back here
    with ``?setup_intent=...`` and the card is saved (the
    ``setup_intent.succeeded`` webhook does the same if the browser never
    comes back). The card number never reaches this server. Simulated: a test
    card typed into our own form and confirmed through the same set-up flow."""
    user = request.user
    next_url = pages.safe_next(request)
    simulated = _is_simulated()
    form = CardForm(request.POST or None)
    context: dict = {
        "saved_card": pages.saved_card(user),
        "form": form,
        "simulated": simulated,
        "test_cards": _test_cards()[:1],
        "next": next_url,
        "stripe_publishable_key": "",
        "client_secret": "",
        "return_url": "",
    }
    if request.method == "GET":
        setup_intent_id = request.GET.get("setup_intent", "")
        if setup_intent_id and not simulated:  # back from Stripe's confirmation
            try:
                accounts.card_setup_succeeded(setup_intent_id, user=user)
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except ApplicationError as exc:
                context["error"] = exc.message
            else:
                messages.success(request, _("Card saved. Pros can now book your instant-book tasks; you are charged when they do."))
                return redirect(next_url or reverse("payments:card"))
        status = 200
        if not simulated:
            status = _start_card_setup(request, context, next_url)
        return render(request, "payments/card.html", context, status=status)
    if not simulated:
        context["error"] = _("Save your card with the card form above.")
        return render(request, "payments/card.html", context, status=400)
    if not form.is_valid():
        return render(request, "payments/card.html", context, status=400)
    try:
        accounts.payment_method_save(user, card_number=form.cleaned_data["card_number"])
    except CardDeclined as exc:
        context["error"] = exc.message
        return render(request, "payments/card.html", context, status=402)
    except (ApplicationError, GatewayError) as exc:
        context["error"] = exc.message
        return render(request, "payments/card.html", context, status=getattr(exc, "status_code", 409))
    messages.success(request, _("Card saved. Pros can now book your instant-book tasks; you are charged when they do."))
    return redirect(next_url or reverse("payments:card"))


def _start_card_setup(request: HttpRequest, context: dict, next_url: str) -> int:
    """Stripe: a SetupIntent for the Payment Element; its client secret and
    the publishable key go into the page (and nothing else about Stripe)."""
    if not settings.STRIPE_PUBLISHABLE_KEY:
        context["error"] = _("Saving a card is not available right now. Pros can still make offers on your tasks.")
        return 503
    try:
        started = accounts.card_setup_start(request.user)
    except ApplicationError as exc:
        context["error"] = exc.message
        return exc.status_code
    context["stripe_publishable_key"] = settings.STRIPE_PUBLISHABLE_KEY
    context["client_secret"] = started.client_secret
    context["return_url"] = request.build_absolute_uri(_card_url(next_url))
    return 200


@login_required
@require_POST
def card_remove(request: HttpRequest) -> HttpResponse:
    """Forget the viewer's own saved card (there is no card id to name: a
    user can only ever remove their own)."""
    if accounts.payment_method_remove(request.user):
        messages.success(request, _("Card removed. Pros can't book your tasks instantly until you save one again."))
    else:
        messages.info(request, _("There was no saved card."))
    return redirect("payments:card")
