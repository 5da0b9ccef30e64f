from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tasks.models import Category


def home(request: HttpRequest) -> HttpResponse:
    categories = Category.objects.filter(is_active=True)[:12]
    return render(request, "core/home.html", {"categories": categories})
