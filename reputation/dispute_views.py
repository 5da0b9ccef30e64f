"""Dispute pages for both sides: open from the task page, then one page with
the state, the deadline, what each side can do next, evidence, proposals and
the timeline. Each POST parses a form, calls one service and redirects; a
refusal re-renders the page with the error and the service's status code.
Strangers get 404 everywhere (the selectors decide)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError, NotFound
from core.forms import add_service_errors, form_action
from tasks import selectors as task_selectors

from . import disputes
from . import disputes_selectors as selectors
from .dispute_forms import EvidenceForm, OpenDisputeForm, ProposeForm, RejectForm, RespondForm
from .dispute_models import Dispute


def _dispute_for(request: HttpRequest, public_id: UUID) -> Dispute:
    try:
        return selectors.dispute_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _next_step(dispute: Dispute, user) -> str:
    if dispute.status == Dispute.Status.RESOLVED:
        return _("Resolved. The money has moved as decided; see below.")
    if dispute.status == Dispute.Status.MEDIATION:
        return _("An admin is reading the evidence and the chat and will decide. You can still add evidence.")
    if dispute.status == Dispute.Status.AWAITING_RESPONSE:
        if user.pk == dispute.against_id:
            return _("Your turn: give your side and, if you like, offer a settlement.")
        return _("Waiting for %(name)s to respond.") % {"name": dispute.against.full_name or dispute.against.email}
    return _("Negotiating: accept the proposal on the table, make your own, or ask an admin to mediate.")


def dispute_context(request: HttpRequest, dispute: Dispute, **forms) -> dict:
    user = request.user
    is_party = user.pk in dispute.party_ids()
    open_proposal = selectors.open_proposal(dispute)
    context = {
        "dispute": dispute,
        "task": dispute.task,
        "is_party": is_party,
        "is_respondent": user.pk == dispute.against_id,
        "next_step": _next_step(dispute, user),
        "evidence": selectors.evidence(dispute),
        "proposals": selectors.proposals(dispute),
        "open_proposal": open_proposal,
        "can_answer_proposal": bool(is_party and open_proposal and open_proposal.by_id != user.pk and dispute.is_open),
        "timeline": selectors.timeline(dispute),
        "price_cents": disputes._price_cents(dispute),
        "total_cents": disputes._total_cents(dispute),
        "can_respond": is_party
        and user.pk == dispute.against_id
        and dispute.status == Dispute.Status.AWAITING_RESPONSE,
        "can_act": is_party and dispute.is_open,
        "can_escalate": is_party and dispute.status in (Dispute.Status.AWAITING_RESPONSE, Dispute.Status.NEGOTIATING),
    }
    context["respond_form"] = forms.get("respond_form") or RespondForm()
    context["propose_form"] = forms.get("propose_form") or ProposeForm()
    context["evidence_form"] = forms.get("evidence_form") or EvidenceForm()
    context["reject_form"] = forms.get("reject_form") or RejectForm()
    context["error"] = forms.get("error", "")
    return context


def _render(request: HttpRequest, dispute: Dispute, *, status: int = 200, **forms) -> HttpResponse:
    return render(request, "reputation/disputes/detail.html", dispute_context(request, dispute, **forms), status=status)


def _act(
    request: HttpRequest,
    dispute: Dispute,
    call: Callable[[dict], object],
    success: str,
    *,
    form=None,
    form_name: str = "",
) -> HttpResponse:
    """One action on the dispute page (core.forms.form_action)."""
    forms = {form_name: form} if form_name else {}

    def rerender(status: int, error: str | None) -> HttpResponse:
        if error is None:
            return _render(request, dispute, status=status, error=_("Some answers need another look; see below."), **forms)
        return _render(request, _dispute_for(request, dispute.public_id), status=status, error=error, **forms)

    return form_action(
        request, call, success=success, done_url=disputes.dispute_url(dispute), rerender=rerender, form=form
    )


@login_required
@require_http_methods(["GET", "POST"])
def open_dispute(request: HttpRequest, task_id: UUID) -> HttpResponse:
    try:
        task = task_selectors.task_get_for_user(task_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.user.pk not in (task.customer_id, task.contractor_id) or task.contractor_id is None:
        raise Http404(_("No such task."))
    existing = selectors.open_dispute_for_task(task)
    if existing is not None:
        return redirect(disputes.dispute_url(existing))
    form = OpenDisputeForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                dispute = disputes.dispute_open(
                    task,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    text=form.cleaned_data["text"],
                    evidence=form.cleaned_data["photos"],
                )
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except ApplicationError as exc:
                add_service_errors(form, exc)
                status = exc.status_code
            else:
                messages.success(request, _("Dispute opened. The money stays on hold until it is settled."))
                return redirect(disputes.dispute_url(dispute))
        else:
            status = 400
    return render(
        request,
        "reputation/disputes/open.html",
        {"task": task, "form": form, "hold_hours": int(disputes.payout_hold().total_seconds() // 3600)},
        status=status,
    )


@login_required
def my_disputes(request: HttpRequest) -> HttpResponse:
    return render(request, "reputation/disputes/list.html", {"disputes": selectors.disputes_for_user(request.user)})


@login_required
def detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _render(request, _dispute_for(request, public_id))


@login_required
@require_POST
def respond(request: HttpRequest, public_id: UUID) -> HttpResponse:
    dispute = _dispute_for(request, public_id)
    form = RespondForm(request.POST, request.FILES)
    return _act(
        request,
        dispute,
        lambda data: disputes.dispute_respond(
            dispute,
            by=request.user,
            text=data["text"],
            photos=data["photos"],
            proposal_kind=data["proposal_kind"],
            percent=data["percent"],
        ),
        _("Response sent."),
        form=form,
        form_name="respond_form",
    )


@login_required
@require_POST
def propose(request: HttpRequest, public_id: UUID) -> HttpResponse:
    dispute = _dispute_for(request, public_id)
    form = ProposeForm(request.POST)
    return _act(
        request,
        dispute,
        lambda data: disputes.dispute_propose(
            dispute, by=request.user, kind=data["kind"], percent=data["percent"], message=data["message"]
        ),
        _("Proposal sent."),
        form=form,
        form_name="propose_form",
    )


@login_required
@require_POST
def add_evidence(request: HttpRequest, public_id: UUID) -> HttpResponse:
    dispute = _dispute_for(request, public_id)
    form = EvidenceForm(request.POST, request.FILES)
    return _act(
        request,
        dispute,
        lambda data: disputes.dispute_add_evidence(dispute, by=request.user, text=data["text"], photos=data["photos"]),
        _("Evidence added."),
        form=form,
        form_name="evidence_form",
    )


@login_required
@require_POST
def escalate(request: HttpRequest, public_id: UUID) -> HttpResponse:
    dispute = _dispute_for(request, public_id)
    return _act(
        request, dispute, lambda data: disputes.dispute_escalate(dispute, by=request.user), _("Sent to an admin.")
    )


def _proposal_for(request: HttpRequest, public_id: UUID, proposal_id: UUID):
    dispute = _dispute_for(request, public_id)
    try:
        proposal = selectors.proposal_get_for_user(proposal_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if proposal.dispute_id != dispute.pk:
        raise Http404(_("No such proposal."))
    return dispute, proposal


@login_required
@require_POST
def accept_proposal(request: HttpRequest, public_id: UUID, proposal_id: UUID) -> HttpResponse:
    dispute, proposal = _proposal_for(request, public_id, proposal_id)
    return _act(
        request,
        dispute,
        lambda data: disputes.dispute_accept_proposal(proposal, by=request.user),
        _("Settled. The money moves as agreed."),
    )


@login_required
@require_POST
def reject_proposal(request: HttpRequest, public_id: UUID, proposal_id: UUID) -> HttpResponse:
    dispute, proposal = _proposal_for(request, public_id, proposal_id)
    form = RejectForm(request.POST)
    return _act(
        request,
        dispute,
        lambda data: disputes.dispute_reject_proposal(proposal, by=request.user, message=data["message"]),
        _("Proposal rejected."),
        form=form,
        form_name="reject_form",
    )


def evidence_photo(request: HttpRequest, evidence_id: UUID) -> FileResponse:
    """Evidence photos only through here, only to the parties and permitted
    staff; 404 to everyone else."""
    try:
        row = selectors.evidence_get_for_user(evidence_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if not row.photo or not row.photo.name:
        raise Http404
    try:
        handle = row.photo.storage.open(row.photo.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
