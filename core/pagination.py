"""Pagination that never counts more than it shows.

A plain ``COUNT(*)`` over "open tasks within 25 km" in a dense metro counts
every match (28,434 rows downtown New York at 1M tasks: 286 ms per request,
measured by bench/bench_nearby.py), while the page itself comes off the GiST
index nearest-first in about a millisecond. A count capped at 1,000 still
cost 13 ms of a ~28 ms request; nobody pages past ten pages of the nearest
work, so lists that can be huge count at most ``cap`` (200) rows and say so.
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
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._seen, self.cap)

    @property
    def is_capped(self) -> bool:
        """More rows match than ``count``; only the first ``cap`` can be paged through."""
        return self._seen > self.cap
