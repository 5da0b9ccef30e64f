"""Forms for the task pages. They parse and shape input (dollars to integer
cents, datetime-local to aware datetimes, a list of uploaded photos); the
rules about what may be stored live in ``tasks.services`` and come back as
``ApplicationError.fields``, which ``add_service_errors`` puts next to the
right field."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.forms import add_service_errors as _add_service_errors

from .models import MAX_BUDGET_CENTS, MAX_HOURS, MAX_PHOTOS, Category, Task

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
# Service field names that differ from the form's.
SERVICE_FIELD_MAP = {
    "budget_cents": "budget",
    "price_cents": "price",
    "files": "photos",
    "upload": "photos",
    "min_budget_cents": "min_budget",
    "max_budget_cents": "max_budget",
    "location": "postal_code",  # the browser's position disagreed with the ZIP
}

_AMOUNT_RE = re.compile(r"-?\d{1,12}(?:\.\d*)?|-?\.\d+")


def add_service_errors(form: forms.Form, error: ApplicationError) -> None:
    """A service's refusal on the form: field messages under their fields,
    the rest at the top (accounts' helper, with the tasks' field names)."""
    _add_service_errors(form, error, SERVICE_FIELD_MAP)


def surface_hidden_errors(form: forms.Form) -> None:
    """Errors on hidden inputs (a browser position) have nowhere to show:
    repeat them at the top of the form."""
    for field in form.hidden_fields():
        for message in field.errors:
            form.add_error(None, message)


def parse_dollars(text: str, *, what: str) -> int:
    """'180', '180.5', '$1,180.50' -> integer cents, exactly (Decimal, never float).

    Refuses what is not a plain amount, zero, negatives, more than two decimal
    places (rather than rounding someone's price silently) and absurd amounts."""
    raw = (text or "").strip().replace("$", "").replace(",", "").replace(" ", "")
    if not raw or not _AMOUNT_RE.fullmatch(raw):
        raise forms.ValidationError(_("Enter an amount in dollars, like 180 or 180.50."), code="invalid")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already refuses these
        raise forms.ValidationError(_("Enter an amount in dollars, like 180 or 180.50."), code="invalid") from exc
    if amount < 0:
        raise forms.ValidationError(_("The %(what)s cannot be negative.") % {"what": what}, code="negative")
    if amount == 0:
        raise forms.ValidationError(_("The %(what)s must be more than $0.") % {"what": what}, code="zero")
    if amount.as_tuple().exponent < -2:
        raise forms.ValidationError(_("Use at most two decimal places (cents)."), code="too_precise")
    cents = int(amount * 100)
    if cents > MAX_BUDGET_CENTS:
        raise forms.ValidationError(
            _("The %(what)s can be at most $%(max)s.") % {"what": what, "max": f"{MAX_BUDGET_CENTS // 100:,}"},
            code="too_large",
        )
    return cents


def cents_to_dollars(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{Decimal(cents) / 100:.2f}"


def money_input(placeholder: str = "180.00") -> forms.TextInput:
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": placeholder})


def datetime_local(**attrs) -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local", **attrs}, format=DATETIME_LOCAL)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several photos from one <input type=file multiple>; the count is
    checked here, the content by the service (tasks.photos)."""

    def __init__(self, *args, min_count: int = 0, max_count: int = MAX_PHOTOS, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*", "multiple": True}))
        kwargs.setdefault("required", False)
        self.min_count = min_count
        self.max_count = max_count
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        cleaned = [super(MultiplePhotoField, self).clean(f, initial) for f in files]
        if len(cleaned) < self.min_count:
            raise forms.ValidationError(
                _("Add at least %(count)d photo.") % {"count": self.min_count}
                if self.min_count == 1
                else _("Add at least %(count)d photos.") % {"count": self.min_count},
                code="too_few",
            )
        if len(cleaned) > self.max_count:
            raise forms.ValidationError(
                _("You chose %(count)d photos; the limit is %(max)d.") % {"count": len(cleaned), "max": self.max_count},
                code="too_many",
            )
        return cleaned


def _future(value, message):
    if value is not None and value <= timezone.now():
        raise forms.ValidationError(message, code="past")
    return value


class TaskForm(forms.Form):
    """Post a task, or edit one while nobody is hired. Money in dollars here,
    integer cents on the way out."""

    title = forms.CharField(
        label=_("What do you need done?"),
        max_length=120,
        widget=forms.TextInput(attrs={"placeholder": _("Fix a leaking kitchen tap"), "autocomplete": "off"}),
    )
    description = forms.CharField(
        label=_("Describe the job"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("What is wrong, what you have tried, access and parking. Pros read this before offering."),
    )
    category = forms.ModelChoiceField(
        label=_("Trade"), queryset=Category.objects.none(), empty_label=_("Choose a trade"),
        error_messages={"required": _("Choose the trade this job needs.")},
    )
    photos = MultiplePhotoField(
        label=_("Photos of the job"),
        help_text=_("1 to 10 photos (JPEG, PNG or WebP, up to 10 MB each). Location data is removed."),
    )
    address = forms.CharField(
        label=_("Street address"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
        help_text=_("Only the pro you book sees it. Others see the neighbourhood, about 1 km."),
    )
    postal_code = forms.CharField(
        label=_("ZIP code"),
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
    )
    latitude = forms.FloatField(required=False, min_value=-90, max_value=90, widget=forms.HiddenInput)
    longitude = forms.FloatField(required=False, min_value=-180, max_value=180, widget=forms.HiddenInput)
    budget_type = forms.ChoiceField(
        label=_("Budget"), choices=Task.BudgetType.choices, widget=forms.RadioSelect, initial=Task.BudgetType.FIXED
    )
    budget = forms.CharField(
        label=_("Amount (US dollars)"),
        max_length=20,
        widget=money_input(),
        help_text=_("Fixed price: the total. Hourly: the rate per hour."),
    )
    estimated_hours = forms.IntegerField(
        label=_("Estimated hours"),
        required=False,
        min_value=1,
        max_value=MAX_HOURS,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "max": MAX_HOURS}),
        help_text=_("For an hourly budget: how many hours you expect."),
    )
    schedule_type = forms.ChoiceField(
        label=_("When"), choices=Task.ScheduleType.choices, widget=forms.RadioSelect, initial=Task.ScheduleType.FLEXIBLE
    )
    window_start = forms.DateTimeField(label=_("Window starts"), required=False, widget=datetime_local())
    window_end = forms.DateTimeField(label=_("Window ends"), required=False, widget=datetime_local())
    deadline = forms.DateTimeField(
        label=_("Done by"), required=False, widget=datetime_local(), help_text=_("For a flexible schedule.")
    )
    urgency = forms.ChoiceField(label=_("Urgency"), choices=Task.Urgency.choices, initial=Task.Urgency.FLEXIBLE)
    instant_book = forms.BooleanField(
        label=_("Let pros book it instantly at my price"),
        required=False,
        help_text=_("The first verified pro to book gets the job, without an offer to compare."),
    )

    def __init__(self, *args, publishing: bool = True, existing_photos: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.filter(is_active=True).order_by("sort_order", "name")
        photos = self.fields["photos"]
        photos.max_count = max(MAX_PHOTOS - existing_photos, 0)
        photos.min_count = 1 if publishing and existing_photos == 0 else 0
        if existing_photos:
            photos.label = _("Add photos")
            photos.help_text = _("You have %(count)d; up to 10 in all. JPEG, PNG or WebP, up to 10 MB each.") % {
                "count": existing_photos
            }

    @staticmethod
    def initial_from(task: Task) -> dict:
        return {
            "title": task.title,
            "description": task.description,
            "category": task.category_id,
            "address": task.address,
            "postal_code": task.postal_code,
            "budget_type": task.budget_type,
            "budget": cents_to_dollars(task.budget_cents),
            "estimated_hours": task.estimated_hours,
            "schedule_type": task.schedule_type,
            "window_start": task.window_start,
            "window_end": task.window_end,
            "deadline": task.deadline,
            "urgency": task.urgency,
            "instant_book": task.instant_book,
        }

    def clean_budget(self) -> int:
        return parse_dollars(self.cleaned_data["budget"], what=_("budget"))

    def clean_postal_code(self) -> str:
        return self.cleaned_data["postal_code"].strip()

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("budget_type") == Task.BudgetType.HOURLY:
            if cleaned.get("estimated_hours") is None and "estimated_hours" not in self.errors:
                self.add_error("estimated_hours", _("Say about how many hours the job takes."))
        else:
            cleaned["estimated_hours"] = None

        now = timezone.now()
        if cleaned.get("schedule_type") == Task.ScheduleType.WINDOW:
            start, end = cleaned.get("window_start"), cleaned.get("window_end")
            if start is None and "window_start" not in self.errors:
                self.add_error("window_start", _("Enter when the window starts."))
            elif start is not None and start <= now:
                self.add_error("window_start", _("The window must start in the future."))
            if end is None and "window_end" not in self.errors:
                self.add_error("window_end", _("Enter when the window ends."))
            elif start is not None and end is not None and end <= start:
                self.add_error("window_end", _("The window must end after it starts."))
            cleaned["deadline"] = None
        elif cleaned.get("schedule_type") == Task.ScheduleType.FLEXIBLE:
            deadline = cleaned.get("deadline")
            if deadline is None and "deadline" not in self.errors:
                self.add_error("deadline", _("Enter the date it must be done by."))
            elif deadline is not None and deadline <= now:
                self.add_error("deadline", _("The deadline must be in the future."))
            cleaned["window_start"] = cleaned["window_end"] = None

        lat, lon = cleaned.get("latitude"), cleaned.get("longitude")
        if (lat is None) != (lon is None):
            cleaned["latitude"] = cleaned["longitude"] = None
        return cleaned

    def task_input(self):
        from .services import TaskInput

        data = self.cleaned_data
        return TaskInput(
            title=data["title"],
            description=data["description"],
            category=data["category"],
            postal_code=data["postal_code"],
            address=data["address"],
            budget_type=data["budget_type"],
            budget_cents=data["budget"],
            estimated_hours=data["estimated_hours"],
            schedule_type=data["schedule_type"],
            window_start=data["window_start"],
            window_end=data["window_end"],
            deadline=data["deadline"],
            urgency=data["urgency"],
            instant_book=data["instant_book"],
            latitude=data["latitude"],
            longitude=data["longitude"],
        )


class OfferForm(forms.Form):
    price = forms.CharField(
        label=_("Your price (US dollars)"),
        max_length=20,
        widget=money_input(),
        help_text=_("The total you will charge for the job."),
    )
    proposed_start = forms.DateTimeField(
        label=_("When you can start"), required=False, widget=datetime_local(), help_text=_("Optional.")
    )
    message = forms.CharField(
        label=_("Message to the customer"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("How you would do it, what is included."),
    )

    def __init__(self, *args, hourly: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if hourly:
            self.fields["price"].label = _("Your hourly rate (US dollars)")
            self.fields["price"].help_text = _("This task is paid by the hour: what you charge per hour.")

    def clean_price(self) -> int:
        return parse_dollars(self.cleaned_data["price"], what=_("price"))

    def clean_proposed_start(self):
        return _future(self.cleaned_data.get("proposed_start"), _("Choose a time in the future."))


class InstantBookForm(forms.Form):
    proposed_start = forms.DateTimeField(
        label=_("When you will come"), required=False, widget=datetime_local(), help_text=_("Optional.")
    )
    confirm = forms.BooleanField(
        label=_("I will do this job at the posted price"),
        error_messages={"required": _("Tick the box to confirm you take the job at this price.")},
    )

    def clean_proposed_start(self):
        return _future(self.cleaned_data.get("proposed_start"), _("Choose a time in the future."))


class ReasonForm(forms.Form):
    """Cancel (reason required) and ask for changes (reason required)."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say why, so the other side knows.")},
    )

    def __init__(self, *args, label=None, required: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if label:
            self.fields["reason"].label = label
        # Cancelling a draft needs no reason; the service says when one is due.
        self.fields["reason"].required = required


class DeclineForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=500)


class CheckInForm(forms.Form):
    latitude = forms.FloatField(required=False, min_value=-90, max_value=90, widget=forms.HiddenInput)
    longitude = forms.FloatField(required=False, min_value=-180, max_value=180, widget=forms.HiddenInput)
    accuracy_m = forms.FloatField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("latitude") is None or cleaned.get("longitude") is None:
            cleaned["latitude"] = cleaned["longitude"] = cleaned["accuracy_m"] = None
        return cleaned


class ProofForm(forms.Form):
    note = forms.CharField(
        label=_("What you did"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Describe the work you did.")},
    )
    photos = MultiplePhotoField(
        label=_("Photos of the finished work"),
        min_count=1,
        help_text=_("1 to 10 photos. The time and place your camera recorded are kept as evidence."),
    )


class FindWorkForm(forms.Form):
    """Filters for Find work (GET). Every field optional."""

    SORTS = [
        ("", _("Best match")),
        ("distance", _("Nearest")),
        ("newest", _("Newest")),
        ("budget", _("Highest budget")),
    ]

    q = forms.CharField(label=_("Search"), required=False, max_length=100, widget=forms.TextInput(attrs={"type": "search"}))
    category = forms.ModelChoiceField(
        label=_("Trade"), required=False, queryset=Category.objects.none(), to_field_name="slug", empty_label=_("All trades")
    )
    distance = forms.IntegerField(
        label=_("Within (km)"), required=False, min_value=1, widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1})
    )
    min_budget = forms.CharField(label=_("Budget from ($)"), required=False, max_length=20, widget=money_input("50"))
    max_budget = forms.CharField(label=_("Budget up to ($)"), required=False, max_length=20, widget=money_input("500"))
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORTS)

    def __init__(self, *args, radius_km: int = 25, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.radius_km = radius_km
        self.fields["category"].queryset = Category.objects.filter(is_active=True).order_by("sort_order", "name")
        self.fields["distance"].widget.attrs["max"] = radius_km
        self.fields["distance"].help_text = _("Up to your service radius, %(km)d km.") % {"km": radius_km}

    def clean_distance(self):
        value = self.cleaned_data.get("distance")
        if value is not None and value > self.radius_km:
            raise forms.ValidationError(
                _("Your service radius is %(km)d km; widen it in your work profile to look further.") % {"km": self.radius_km},
                code="too_far",
            )
        return value

    def clean_min_budget(self):
        value = self.cleaned_data.get("min_budget")
        return parse_dollars(value, what=_("budget")) if value else None

    def clean_max_budget(self):
        value = self.cleaned_data.get("max_budget")
        return parse_dollars(value, what=_("budget")) if value else None

    def clean(self) -> dict:
        cleaned = super().clean()
        low, high = cleaned.get("min_budget"), cleaned.get("max_budget")
        if low is not None and high is not None and high < low:
            self.add_error("max_budget", _("The upper budget must be at least the lower one."))
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start is not None and end is not None and end < start:
            self.add_error("date_to", _("The end date must be on or after the start date."))
        return cleaned
