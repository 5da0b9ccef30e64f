"""/payments/ routes (included once, at the root, by marketplace/urls.py): the
gateway's webhook, checkout, history, receipts, saved card, earnings and
payout set-up."""

from django.urls import path

from . import views, webhooks

app_name = "payments"

urlpatterns = [
    path("payments/webhooks/stripe", webhooks.stripe_webhook, name="stripe_webhook"),
    path("payments/checkout/<uuid:escrow_id>/", views.checkout, name="checkout"),
    path("payments/checkout/<uuid:escrow_id>/restart", views.checkout_restart, name="checkout_restart"),
    path("payments/history", views.history, name="history"),
    path("payments/receipts/<uuid:escrow_id>/", views.receipt, name="receipt"),
    path("payments/card", views.card, name="card"),
    path("payments/card/remove", views.card_remove, name="card_remove"),
    path("payments/earnings", views.earnings, name="earnings"),
    path("payments/payouts/setup", views.payouts_setup, name="payouts_setup"),
    path("payments/payouts/demo-onboarding", views.payouts_demo, name="payouts_demo"),
    path("payments/payouts/return", views.payouts_return, name="payouts_return"),
]
