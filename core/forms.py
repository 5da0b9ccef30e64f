"""Form helpers shared by every app's pages."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from core.errors import ApplicationError, NotFound


def add_service_errors(form: forms.Form, error: ApplicationError, field_map: dict[str, str] | None = None) -> None:
    """Show a service's refusal on the form: each of ``error.fields`` next to
    its field (renamed through ``field_map``), anything else at the top."""
    field_map = field_map or {}
    if not error.fields:
        form.add_error(None, error.message)
        return
    unplaced = False
    for key, field_messages in error.fields.items():
        name = field_map.get(key, key)
        if name in form.fields:
            form.add_error(name, list(field_messages))
        elif name in getattr(form, "group_fields", ()):
            form.add_group_error(name, list(field_messages))
        else:
            unplaced = True
    if unplaced:
        # No field to sit under (e.g. "role" for two checkboxes): the
        # service's own sentence says it best.
        form.add_error(None, error.message)


def form_action(
    request: HttpRequest,
    call: Callable[[dict], object],
    *,
    success: str,
    done_url: str,
    rerender: Callable[[int, str | None], HttpResponse],
    form: forms.Form | None = None,
    on_invalid: Callable[[forms.Form], None] | None = None,
    field_map: dict[str, str] | None = None,
) -> HttpResponse:
    """Run one page action: validate ``form``, call the service, redirect to
    ``done_url`` with ``success``; or ``rerender(status, error)`` — error None
    for an invalid form, the service's message (its fields placed on the form
    when it refused, renamed through ``field_map``). Nothing was written then: services raise inside their
    transaction. A service's NotFound is the page's 404."""
    if form is not None and not form.is_valid():
        if on_invalid is not None:
            on_invalid(form)
        return rerender(400, None)
    try:
        call(form.cleaned_data if form is not None else {})
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        if form is not None:
            add_service_errors(form, exc, field_map)
        return rerender(exc.status_code, exc.message)
    messages.success(request, success)
    return redirect(done_url)
