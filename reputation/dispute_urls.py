"""Dispute pages (included by marketplace/urls.py, namespace "disputes")."""

from django.urls import path

from . import dispute_views as views

app_name = "disputes"

urlpatterns = [
    path("", views.my_disputes, name="mine"),
    path("open/<uuid:task_id>/", views.open_dispute, name="open"),
    path("evidence/<uuid:evidence_id>/photo", views.evidence_photo, name="evidence-photo"),
    path("<uuid:public_id>/", views.detail, name="detail"),
    path("<uuid:public_id>/respond", views.respond, name="respond"),
    path("<uuid:public_id>/propose", views.propose, name="propose"),
    path("<uuid:public_id>/evidence", views.add_evidence, name="evidence"),
    path("<uuid:public_id>/escalate", views.escalate, name="escalate"),
    path("<uuid:public_id>/proposals/<uuid:proposal_id>/accept", views.accept_proposal, name="accept"),
    path("<uuid:public_id>/proposals/<uuid:proposal_id>/reject", views.reject_proposal, name="reject"),
]
