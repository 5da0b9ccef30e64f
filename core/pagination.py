"""Pagination that never counts more than it shows.

A plain ``COUNT(*)`` over "open tasks within 25 km" in a dense metro counts
every match (28,434 rows downtown New York at 1M tasks: 286 ms per request,
measured by bench/bench_nearby.py), while the page itself comes off the GiST
index nearest-first in about a millisecond. A count capped at 1,000 still
cost 13 ms of a ~28 ms request; nobody pages past ten pages of the nearest
work, so lists that can be huge count at most ``cap`` (200) rows and say so.

A list may be ordered over a bounded candidate set (Find work's newest,
budget and relevance sorts order the nearest 200 matches: see
``tasks.selectors.open_tasks_near``). Such a queryset carries
``known_count`` (how many matched, up to cap + 1, already counted while
finding the candidates) and ``sorted_within`` (how many candidates were
ordered); the paginator uses the former instead of a COUNT and repeats the
latter, so a page can say "more than 200: the nearest 200, newest first".

A list may also carry a ``page_source``: an object with ``seen(limit)`` (how
many rows match, counting at most ``limit``) and ``rows(bottom, top)`` (that
slice of the list). The paginator then counts and reads pages through it
instead of the queryset: Find work on PostgreSQL does both with hand-written
SQL (tasks.nearby_sql), because compiling the ORM's statements cost more than
running them. The queryset stays what everything else (and SQLite) uses.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

DEFAULT_CAP = 200


class CappedPaginator(Paginator):
    cap = DEFAULT_CAP

    @cached_property
    def _seen(self) -> int:
        source = getattr(self.object_list, "page_source", None)
        if source is not None:
            return source.seen(self.cap + 1)
        # SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1): stops after cap + 1 rows.
        known = getattr(self.object_list, "known_count", None)
        if known is not None:
            return known
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._seen, self.cap)

    def _expect(self, number) -> None:
        """Tell a source that can read the count and a page in one statement
        (tasks.nearby_sql.NearestPages) which page comes, before the count is
        asked for (validate_number asks for it)."""
        expect = getattr(getattr(self.object_list, "page_source", None), "expect", None)
        if expect is None:
            return
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1  # get_page's answer to a page that is not a number
        if number >= 1:
            bottom = (number - 1) * self.per_page
            expect(bottom, bottom + self.per_page + self.orphans)

    def get_page(self, number):
        self._expect(number)
        return super().get_page(number)

    def page(self, number):
        source = getattr(self.object_list, "page_source", None)
        if source is None:
            return super().page(number)
        self._expect(number)
        # Paginator.page, reading the slice through the source.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(source.rows(bottom, top), number, self)

    @property
    def sorted_within(self) -> int | None:
        """Set when the rows were ordered among only the nearest N matches."""
        return getattr(self.object_list, "sorted_within", None)

    @property
    def is_capped(self) -> bool:
        """More rows match than ``count``; only the first ``cap`` can be paged through."""
        return self._seen > self.cap
