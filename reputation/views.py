"""Review pages: write or edit a review, reply, report, and "My reviews".

Views parse, check who may look, call one service and render; the services
decide everything else (and write nothing when they refuse).
"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import ApplicationError, NotFound
from tasks import selectors as task_selectors
from tasks.models import Task

from . import selectors, services
from .forms import ReplyForm, ReportForm, ReviewForm
from .models import Review


def _task_for(request: HttpRequest, public_id: UUID) -> Task:
    try:
        return task_selectors.task_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _review_for(request: HttpRequest, public_id: UUID, role: str) -> Review:
    """A review the viewer may read (published, or theirs); 404 otherwise."""
    if role not in Review.Role.values:
        raise Http404(_("No such review."))
    review = (
        Review.objects.select_related("task", "reviewer", "reviewee", "reply")
        .filter(task__public_id=public_id, role=role)
        .first()
    )
    if review is None or not selectors.review_visible_to(review, request.user):
        raise Http404(_("No such review."))
    return review


def _next_url(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _apply_errors(form, exc: ApplicationError) -> None:
    placed = False
    for name, errors in exc.fields.items():
        if name in form.fields:
            for error in errors:
                form.add_error(name, error)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _task_url(task: Task) -> str:
    return reverse("tasks:detail", kwargs={"public_id": task.public_id})


@login_required
@require_http_methods(["GET", "POST"])
def task_review(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Write or edit my review of the other side of a completed task."""
    task = _task_for(request, public_id)
    role = services.review_role_for(task, request.user)
    if role is None:
        raise Http404(_("Only the customer and the contractor of this task can review it."))
    mine = Review.objects.filter(task=task, reviewer=request.user).first()
    other = task.contractor if role == Review.Role.CUSTOMER_TO_CONTRACTOR else task.customer
    status = 200
    if request.method == "POST":
        form = ReviewForm(request.POST, role=role)
        if form.is_valid():
            try:
                review = services.review_submit(
                    task=task,
                    by=request.user,
                    stars=form.cleaned_data["stars"],
                    text=form.cleaned_data["text"],
                    sub_ratings=form.sub_ratings(),
                )
            except ApplicationError as exc:
                _apply_errors(form, exc)
                status = exc.status_code
            else:
                if review.published_at:
                    messages.success(request, _("Thanks! Both reviews are now published."))
                else:
                    messages.success(
                        request,
                        _("Thanks! Your review stays hidden until %(name)s reviews you or the window closes.")
                        % {"name": other.public_name},
                    )
                return redirect(_next_url(request, _task_url(task)))
        else:
            status = 400
    else:
        form = ReviewForm(initial=ReviewForm.initial_from(mine), role=role)
    context = {
        "task": task,
        "form": form,
        "mine": mine,
        "other": other,
        "role": role,
        "closes_at": services.review_window_closes(task),
        "frozen": bool(mine and mine.published_at),
        "window_open": services.review_window_closes(task) is not None
        and timezone.now() <= services.review_window_closes(task),
        "completed": task.completed_at is not None,
    }
    return render(request, "reputation/review_form.html", context, status=status)


@login_required
@require_POST
def reply(request: HttpRequest, public_id: UUID, role: str) -> HttpResponse:
    review = _review_for(request, public_id, role)
    form = ReplyForm(request.POST)
    back = _next_url(request, reverse("reputation:mine"))
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, errors[0])
        return redirect(back)
    try:
        services.review_reply(review=review, by=request.user, text=form.cleaned_data["text"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your reply is published under the review."))
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def report(request: HttpRequest, public_id: UUID, role: str) -> HttpResponse:
    review = _review_for(request, public_id, role)
    if review.published_at is None or review.hidden_at is not None:
        raise Http404(_("No such review."))
    status = 200
    if request.method == "POST":
        form = ReportForm(request.POST)
        if form.is_valid():
            try:
                services.review_report(
                    review=review, by=request.user, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"]
                )
            except ApplicationError as exc:
                _apply_errors(form, exc)
                status = exc.status_code
            else:
                messages.success(request, _("Thanks. Our team will look at this review."))
                return redirect(_next_url(request, reverse("reputation:mine")))
        else:
            status = 400
    else:
        form = ReportForm()
    return render(
        request,
        "reputation/report_form.html",
        {"review": review, "form": form, "next": _next_url(request, "")},
        status=status,
    )


@login_required
def my_reviews(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "pending": selectors.reviews_to_write(user),
        "written": list(selectors.reviews_written(user)[:100]),
        "received": list(selectors.reviews_received(user)[:100]),
        "waiting": selectors.reviews_waiting_on_me(user),
        "reply_form": ReplyForm(),
    }
    return render(request, "reputation/my_reviews.html", context)
