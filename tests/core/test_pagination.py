"""Capped counting: big lists count at most the cap and say so; small ones count exactly."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.pagination import CappedPaginator
from tests.factories import CategoryFactory


class Capped(CappedPaginator):
    cap = 5


@pytest.mark.django_db
def test_small_lists_count_exactly():
    for n in range(3):
        CategoryFactory(name=f"Trade {n}", slug=f"cap-{n}")
    from tasks.models import Category

    paginator = Capped(Category.objects.filter(slug__startswith="cap-"), 2)
    assert paginator.count == 3
    assert paginator.is_capped is False
    assert paginator.num_pages == 2


@pytest.mark.django_db
def test_big_lists_stop_counting_at_the_cap_and_say_so():
    for n in range(8):
        CategoryFactory(name=f"Trade {n}", slug=f"cap-{n}")
    from tasks.models import Category

    paginator = Capped(Category.objects.filter(slug__startswith="cap-").order_by("slug"), 2)
    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == 5
    assert paginator.is_capped is True
    assert "LIMIT 6" in queries[0]["sql"]
    assert paginator.num_pages == 3
    assert [c.slug for c in paginator.page(3)] == ["cap-4"]
