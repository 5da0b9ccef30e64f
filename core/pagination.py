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
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

DEFAULT_CAP = 200


class CappedPaginator(Paginator):
    cap = DEFAULT_CAP

    @cached_property
    def _seen(self) -> int:
        # SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1): stops after cap + 1 rows.
        known = getattr(self.object_list, "known_count", None)
        if known is not None:
            return known
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._seen, self.cap)

    @property
    def sorted_within(self) -> int | None:
        """Set when the rows were ordered among only the nearest N matches."""
        return getattr(self.object_list, "sorted_within", None)

    @property
    def is_capped(self) -> bool:
        """More rows match than ``count``; only the first ``cap`` can be paged through."""
        return self._seen > self.cap
