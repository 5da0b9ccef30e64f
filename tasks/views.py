"""Task pages. Each view parses input, asks ``tasks.selectors`` who may see
what, calls one of ``tasks.services`` (which lock, check and write), and
renders. A refusal (``ApplicationError``) re-renders the page with the error
next to the field or at the top, with the service's status code, and nothing
written; success redirects to the task page with a message."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors as account_selectors
from core.errors import ApplicationError, Conflict, NotFound
from core.forms import form_action
from core.pagination import CappedPaginator
from matching import selectors as matching_selectors
from payments import pages as payment_pages
from payments import services as payment_services

from . import selectors, services
from .forms import (
    SERVICE_FIELD_MAP,
    CheckInForm,
    DeclineForm,
    FindWorkForm,
    InstantBookForm,
    OfferForm,
    ProofForm,
    ReasonForm,
    TaskForm,
    add_service_errors,
    surface_hidden_errors,
)
from .models import Offer, Task, TaskPhoto
from .photos import photo_can_view
from .policies import cancellation_rule

PAGE_SIZE = 20

CUSTOMER_TABS = [
    ("active", gettext_lazy("Active")),
    ("drafts", gettext_lazy("Drafts")),
    ("done", gettext_lazy("Done")),
    ("cancelled", gettext_lazy("Cancelled")),
]
CONTRACTOR_TABS = [
    ("active", gettext_lazy("Active jobs")),
    ("offers", gettext_lazy("Pending offers")),
    ("done", gettext_lazy("Completed")),
    ("cancelled", gettext_lazy("Cancelled")),
]

# The step bar on the task page: what happens next, and who acts.
STEPS = [
    ("posted", gettext_lazy("Posted"), {Task.Status.OPEN}),
    ("booked", gettext_lazy("Booked"), {Task.Status.ASSIGNED}),
    ("on_site", gettext_lazy("On site"), {Task.Status.IN_PROGRESS}),
    ("proof", gettext_lazy("Proof sent"), {Task.Status.SUBMITTED}),
    ("approved", gettext_lazy("Approved"), {Task.Status.COMPLETED}),
    ("paid", gettext_lazy("Paid"), set()),
]


# --- helpers -----------------------------------------------------------------


def _task_for(request: HttpRequest, public_id: UUID) -> Task:
    """The task if this viewer may see it at all; 404 for strangers."""
    try:
        return selectors.task_get_for_user(public_id, request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _offer_on(task: Task, offer_id: UUID) -> Offer:
    offer = Offer.objects.select_related("task", "contractor").filter(public_id=offer_id, task=task).first()
    if offer is None:
        raise Http404(_("No such offer on this task."))
    return offer


def _detail_url(task: Task) -> str:
    return reverse("tasks:detail", kwargs={"public_id": task.public_id})


def _steps(task: Task) -> list[dict]:
    order = [key for key, _label, _states in STEPS]
    current = next((key for key, _label, states in STEPS if task.status in states), None)
    reached = order.index(current) if current else -1
    return [
        {"key": key, "label": label, "current": key == current, "done": index < reached}
        for index, (key, label, _states) in enumerate(STEPS)
    ]


def _next_step(task: Task, actions: set[str], user) -> str:
    """One sentence: what happens next, and who acts."""
    status = task.status
    is_customer = user.is_authenticated and user.pk == task.customer_id
    if status == Task.Status.DRAFT:
        return _("Draft: only you can see it. Post it when it is ready.")
    if status == Task.Status.OPEN:
        if is_customer:
            return _("Waiting for offers from nearby pros. Accept the one you like.")
        if "offer" in actions or "instant_book" in actions:
            return _("Open for offers.")
        return _("Open: the customer is comparing offers.")
    if status == Task.Status.ASSIGNED:
        return _("Booked. The pro checks in when they arrive.")
    if status == Task.Status.IN_PROGRESS:
        return _("The pro is on the job. They send photos of the finished work when done.")
    if status == Task.Status.SUBMITTED:
        return _("Proof of work sent. The customer approves it or asks for changes.")
    if status == Task.Status.COMPLETED:
        return _("Done and approved.")
    if status == Task.Status.CANCELLED:
        return _("Cancelled.")
    return _("Disputed: an administrator is looking at it.")


def _primary_action(actions: set[str]) -> str:
    for action in ("approve", "submit_proof", "check_in", "accept_offer", "offer", "publish", "edit"):
        if action in actions:
            return action
    return ""


def _offers(task: Task, user):
    return (
        selectors.offers_for(task, user)
        .select_related("contractor", "contractor__contractor_profile")
        .annotate(
            jobs_done=Count(
                "contractor__tasks_assigned",
                filter=Q(contractor__tasks_assigned__status=Task.Status.COMPLETED),
                distinct=True,
            )
        )
        .order_by("created_at")
    )


def _offer_cards(task: Task, offers) -> list[dict]:
    cards = []
    for offer in offers:
        contractor = offer.contractor
        profile = getattr(contractor, "contractor_profile", None)
        distance = None
        if profile is not None and profile.latitude is not None:
            distance = task.approx_distance_km(profile.latitude, profile.longitude)
        cards.append(
            {
                "offer": offer,
                "contractor": contractor,
                "profile": profile,
                "photo_url": account_selectors.user_photo_url(contractor),
                "badges": account_selectors.user_badges(contractor),
                "distance_km": distance,
                "decline_form": DeclineForm(prefix=f"decline-{offer.public_id}"),
            }
        )
    return cards


def _cancel_form(data) -> ReasonForm:
    return ReasonForm(data, prefix="cancel", label=_("Why are you cancelling?"), required=False)


def _or(form, make):
    return form if form is not None else make()


def _render_detail(request: HttpRequest, task: Task, *, status: int = 200, error: str = "", **forms) -> HttpResponse:
    user = request.user
    actions = selectors.task_actions(task, user)
    photos = list(task.photos.order_by("position", "created_at"))
    for photo in photos:
        photo.task = task  # photo_can_view reads it; no second fetch
    problem_photos = [p for p in photos if p.kind == TaskPhoto.Kind.PROBLEM and photo_can_view(p, user)]
    proof_photos = [p for p in photos if p.kind == TaskPhoto.Kind.PROOF and photo_can_view(p, user)]
    proofs = []
    if proof_photos or (user.is_authenticated and (user.is_staff or user.pk in (task.customer_id, task.contractor_id))):
        by_proof: dict[int, list[TaskPhoto]] = {}
        for photo in proof_photos:
            by_proof.setdefault(photo.proof_id, []).append(photo)
        proofs = [{"proof": proof, "photos": by_proof.get(proof.pk, [])} for proof in task.proofs.order_by("-submitted_at")]
    offers = list(_offers(task, user))
    hourly = task.budget_type == Task.BudgetType.HOURLY
    own_offer = next(
        (o for o in offers if user.is_authenticated and o.contractor_id == user.pk and o.status == Offer.Status.PENDING),
        None,
    )
    context = {
        "task": task,
        "actions": actions,
        "primary": _primary_action(actions),
        "is_customer": user.is_authenticated and user.pk == task.customer_id,
        "is_contractor": user.is_authenticated and user.pk == task.contractor_id,
        "location": selectors.task_location_for(task, user),
        "photos": problem_photos,
        "proofs": proofs,
        "offers": _offer_cards(task, offers),
        "own_offer": own_offer,
        "pending_count": sum(1 for o in offers if o.status == Offer.Status.PENDING),
        "timeline": selectors.timeline(task, user),
        "steps": _steps(task),
        "next_step": _next_step(task, actions, user),
        "error": error,
        "offer_form": _or(forms.get("offer_form"), lambda: OfferForm(hourly=hourly)),
        "instant_form": _or(forms.get("instant_form"), lambda: InstantBookForm(prefix="book")),
        "cancel_form": _or(forms.get("cancel_form"), lambda: _cancel_form(None)),
        "cancel_rule": cancellation_rule(task, user) if "cancel" in actions else None,
        "hourly": hourly,
        "changes_form": _or(
            forms.get("changes_form"), lambda: ReasonForm(prefix="changes", label=_("What still needs doing?"))
        ),
        "checkin_form": _or(forms.get("checkin_form"), CheckInForm),
        "proof_form": _or(forms.get("proof_form"), ProofForm),
        "decline_error_offer": forms.get("decline_error_offer"),
        "money": payment_pages.task_money(task, user),
    }
    if forms.get("decline_form") is not None:
        for card in context["offers"]:
            if card["offer"].public_id == forms.get("decline_error_offer"):
                card["decline_form"] = forms["decline_form"]
    return render(request, "tasks/detail.html", context, status=status)


def _act(
    request: HttpRequest,
    task: Task,
    call: Callable[[dict], object],
    success: str,
    *,
    form=None,
    form_name: str = "",
    extra: dict | None = None,
) -> HttpResponse:
    """One action on the task page (core.forms.form_action): on a refusal the
    page is shown again, re-read, with the errors and the service's status."""
    forms = {form_name: form} if form_name else {}
    forms.update(extra or {})

    def rerender(status: int, error: str | None) -> HttpResponse:
        if error is None:
            return _render_detail(
                request, task, status=status, error=_("Some answers need another look; see the notes below."), **forms
            )
        return _render_detail(request, _task_for(request, task.public_id), status=status, error=error, **forms)

    return form_action(
        request, call, success=success, done_url=_detail_url(task), rerender=rerender, form=form,
        on_invalid=surface_hidden_errors, field_map=SERVICE_FIELD_MAP,
    )


def _page(request: HttpRequest, queryset, paginator_class=Paginator):
    paginator = paginator_class(queryset, PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- posting and editing -----------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "GET":
        return render(request, "tasks/task_form.html", {"form": TaskForm(), "creating": True})

    publish = request.POST.get("action") != "draft"
    form = TaskForm(request.POST, request.FILES, publishing=publish)
    status = 400
    if not form.is_valid():
        surface_hidden_errors(form)
    else:
        try:
            task = services.task_create(
                customer=user, data=form.task_input(), photos=form.cleaned_data["photos"], publish=publish
            )
        except ApplicationError as exc:
            add_service_errors(form, exc)
            status = exc.status_code
        else:
            if task.status == Task.Status.OPEN:
                messages.success(request, _("Your task is posted. Nearby pros can now make offers."))
                if task.instant_book and payment_pages.saved_card(user) is None:
                    # Instant booking charges a saved card: ask for one now.
                    messages.info(request, _("Save a card so pros can book this task instantly."))
                    return redirect(f"{reverse('payments:card')}?next={_detail_url(task)}")
            else:
                messages.success(request, _("Draft saved. Only you can see it until you post it."))
            return redirect(_detail_url(task))
    return render(request, "tasks/task_form.html", {"form": form, "creating": True}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    user = request.user
    task = _task_for(request, public_id)
    if task.customer_id != user.pk:
        raise DjangoPermissionDenied(_("Only the customer who posted this task can edit it."))
    photos = list(task.photos.filter(kind=TaskPhoto.Kind.PROBLEM).order_by("position", "created_at"))
    if request.method == "GET":
        if "edit" not in selectors.task_actions(task, user):
            messages.error(request, _("This task can no longer be edited: someone is booked for it."))
            return redirect(_detail_url(task))
        form = TaskForm(initial=TaskForm.initial_from(task), existing_photos=len(photos))
        return render(request, "tasks/task_form.html", {"form": form, "task": task, "photos": photos})

    remove_ids = set(request.POST.getlist("remove_photos"))
    to_remove = [p for p in photos if str(p.public_id) in remove_ids]
    publish = request.POST.get("action") == "publish" and task.status == Task.Status.DRAFT
    form = TaskForm(request.POST, request.FILES, publishing=False, existing_photos=len(photos) - len(to_remove))
    status = 400
    if not form.is_valid():
        surface_hidden_errors(form)
    else:
        files = form.cleaned_data["photos"]
        try:
            # One transaction around the services: a refused photo leaves
            # the task's details as they were too.
            with transaction.atomic():
                updated = services.task_update(task, by=user, data=form.task_input())
                keep_one_first = len(to_remove) == len(photos) and files
                if keep_one_first:
                    services.task_add_photos(updated, by=user, files=files)
                for photo in to_remove:
                    services.task_remove_photo(photo, by=user)
                if files and not keep_one_first:
                    services.task_add_photos(updated, by=user, files=files)
                if publish:
                    services.task_publish(updated, by=user)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except ApplicationError as exc:
            add_service_errors(form, exc)
            status = exc.status_code
            task = _task_for(request, public_id)
        else:
            messages.success(request, _("Your task is posted.") if publish else _("Your changes are saved."))
            return redirect(_detail_url(task))
    return render(
        request, "tasks/task_form.html", {"form": form, "task": task, "photos": photos, "removing": remove_ids}, status=status
    )


# --- the task page and its actions -------------------------------------------


def detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    return _render_detail(request, _task_for(request, public_id))


@login_required
@require_POST
def publish(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    return _act(
        request,
        task,
        lambda data: services.task_publish(task, by=request.user),
        _("Your task is posted. Nearby pros can now make offers."),
    )


@login_required
@require_POST
def cancel(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    form = _cancel_form(request.POST)
    return _act(
        request,
        task,
        lambda data: services.task_cancel(task, by=request.user, reason=data["reason"]),
        _("The task is cancelled."),
        form=form,
        form_name="cancel_form",
    )


@login_required
@require_POST
def offer_create(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    form = OfferForm(request.POST, hourly=task.budget_type == Task.BudgetType.HOURLY)
    return _act(
        request,
        task,
        lambda data: services.offer_create(
            task, by=request.user, price_cents=data["price"], message=data["message"], proposed_start=data["proposed_start"]
        ),
        _("Your offer is sent. The customer will be told."),
        form=form,
        form_name="offer_form",
    )


@login_required
@require_POST
def offer_accept(request: HttpRequest, public_id: UUID, offer_id: UUID) -> HttpResponse:
    """Accepting starts the checkout: the customer pays (held until they
    approve) and the payment's webhook books the task."""
    task = _task_for(request, public_id)
    offer = _offer_on(task, offer_id)
    try:
        escrow = payment_services.checkout_start(offer, by=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        return _render_detail(request, _task_for(request, public_id), status=exc.status_code, error=exc.message)
    return redirect("payments:checkout", escrow_id=escrow.public_id)


@login_required
@require_POST
def offer_decline(request: HttpRequest, public_id: UUID, offer_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    offer = _offer_on(task, offer_id)
    form = DeclineForm(request.POST, prefix=f"decline-{offer.public_id}")
    return _act(
        request,
        task,
        lambda data: services.offer_decline(offer, by=request.user, reason=data["reason"]),
        _("Offer declined."),
        form=form,
        form_name="decline_form",
        extra={"decline_error_offer": offer.public_id},
    )


@login_required
@require_POST
def offer_withdraw(request: HttpRequest, public_id: UUID, offer_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    offer = _offer_on(task, offer_id)
    return _act(
        request, task, lambda data: services.offer_withdraw(offer, by=request.user), _("Your offer is withdrawn.")
    )


@login_required
@require_POST
def instant_book(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Instant booking charges the customer's saved card (held until they
    approve); the payment books the task."""
    task = _task_for(request, public_id)
    form = InstantBookForm(request.POST, prefix="book")

    def book(data):
        escrow = payment_services.instant_book_start(task, by=request.user, proposed_start=data["proposed_start"])
        if escrow.status != escrow.Status.HELD:
            raise Conflict(_("The payment did not go through, so the job is not booked."), code="payment_failed")

    return _act(
        request,
        task,
        book,
        _("You booked this job. The address is below; check in when you arrive."),
        form=form,
        form_name="instant_form",
    )


@login_required
@require_POST
def check_in(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    form = CheckInForm(request.POST)
    return _act(
        request,
        task,
        lambda data: services.task_check_in(
            task, by=request.user, latitude=data["latitude"], longitude=data["longitude"], accuracy_m=data["accuracy_m"]
        ),
        _("Checked in. Send photos of the finished work when you are done."),
        form=form,
        form_name="checkin_form",
    )


@login_required
@require_POST
def submit_proof(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    form = ProofForm(request.POST, request.FILES)
    return _act(
        request,
        task,
        lambda data: services.task_submit_proof(task, by=request.user, note=data["note"], files=data["photos"]),
        _("Proof of work sent. The customer has 72 hours to approve or ask for changes."),
        form=form,
        form_name="proof_form",
    )


@login_required
@require_POST
def approve(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    return _act(
        request, task, lambda data: services.task_approve(task, by=request.user), _("Approved. Thank you!")
    )


@login_required
@require_POST
def request_changes(request: HttpRequest, public_id: UUID) -> HttpResponse:
    task = _task_for(request, public_id)
    form = ReasonForm(request.POST, prefix="changes", label=_("What still needs doing?"))
    return _act(
        request,
        task,
        lambda data: services.task_request_changes(task, by=request.user, reason=data["reason"]),
        _("Sent back to the pro with your note."),
        form=form,
        form_name="changes_form",
    )


# --- lists ---------------------------------------------------------------------


@login_required
def my_tasks(request: HttpRequest) -> HttpResponse:
    tabs = [key for key, _label in CUSTOMER_TABS]
    tab = request.GET.get("tab") if request.GET.get("tab") in tabs else "active"
    queryset = selectors.tasks_for_customer(request.user, tab)
    context = {"tabs": CUSTOMER_TABS, "tab": tab, "page_obj": _page(request, queryset), "query": _query_without_page(request)}
    return render(request, "tasks/my_tasks.html", context)


@login_required
def my_jobs(request: HttpRequest) -> HttpResponse:
    tabs = [key for key, _label in CONTRACTOR_TABS]
    tab = request.GET.get("tab") if request.GET.get("tab") in tabs else "active"
    context = {"tabs": CONTRACTOR_TABS, "tab": tab, "is_contractor": request.user.is_contractor}
    if request.user.is_contractor:
        queryset = selectors.jobs_for_contractor(request.user, tab)
        context.update(page_obj=_page(request, queryset), query=_query_without_page(request))
    return render(request, "tasks/my_jobs.html", context)


@login_required
def find_work(request: HttpRequest) -> HttpResponse:
    user = request.user
    profile = account_selectors.contractor_profile_for_user(user)
    if profile is None or not profile.is_onboarded or profile.latitude is None:
        return render(request, "tasks/find_work.html", {"profile": profile, "ready": False})

    form = FindWorkForm(request.GET or None, radius_km=profile.service_radius_km)
    status = 200
    page_obj = None
    ranked_by = None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        data = form.cleaned_data if form.is_bound else {}
        category = data.get("category")
        # Best match (matching.selectors) is the default without a search;
        # a search keeps relevance first, and any chosen sort is kept.
        best_match = not data.get("sort") and not data.get("q")
        queryset = selectors.open_tasks_near(
            latitude=profile.latitude,
            longitude=profile.longitude,
            radius_km=data.get("distance") or profile.service_radius_km,
            categories=[category] if category else None,
            min_budget_cents=data.get("min_budget"),
            max_budget_cents=data.get("max_budget"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            q=data.get("q") or None,
            sort="distance" if best_match else data.get("sort") or None,
            exclude_customer=user,
        )
        if best_match:
            queryset = matching_selectors.ranked_tasks_for(user, queryset)
            ranked_by = queryset.ranker
        page_obj = _page(request, queryset, CappedPaginator)
        # The distance shown is to the approximate point, as the API's (not the
        # exact one the query sorted by).
        page_obj.object_list = list(page_obj.object_list)  # the template must see these instances
        for task in page_obj.object_list:
            task.shown_distance_km = task.approx_distance_km(profile.latitude, profile.longitude)
    context = {
        "profile": profile,
        "ready": True,
        "form": form,
        "page_obj": page_obj,
        "ranked_by": ranked_by,
        "query": _query_without_page(request),
        "more_filters": any(
            request.GET.get(name) or name in form.errors
            for name in ("distance", "min_budget", "max_budget", "date_from", "date_to")
        ),
    }
    return render(request, "tasks/find_work.html", context, status=status)


# --- photos ----------------------------------------------------------------------


def _photo_response(request: HttpRequest, public_id: UUID, *, thumb: bool) -> FileResponse:
    """Task photos come only through here (never a public media URL), and
    only to people ``photo_can_view`` allows; 404 to everyone else, so a
    stranger cannot even tell the photo exists."""
    photo = TaskPhoto.objects.select_related("task").filter(public_id=public_id).first()
    if photo is None or not photo_can_view(photo, request.user):
        raise Http404
    stored = photo.thumbnail if thumb else photo.image
    if not stored or not stored.name:
        raise Http404
    try:
        handle = stored.storage.open(stored.name, "rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def photo(request: HttpRequest, public_id: UUID) -> FileResponse:
    return _photo_response(request, public_id, thumb=False)


def photo_thumb(request: HttpRequest, public_id: UUID) -> FileResponse:
    return _photo_response(request, public_id, thumb=True)
