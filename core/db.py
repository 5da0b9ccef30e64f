"""Query expressions shared by the apps' selectors."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import BooleanField, Expression, F


class AnyOf(Expression):
    """``column = ANY(%s)`` with the ids as ONE array parameter. Django's
    ``__in`` binds one parameter per id: for 2,000 ids that cost ~35 ms of
    Python per query (measured by bench/bench_matching.py), more than the
    query itself. On other databases, the plain IN list; no ids match nothing."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, values: Iterable[int]):
        super().__init__()
        self.column = F(column)
        self.values = [int(v) for v in values]

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, exprs):
        (self.column,) = exprs

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            # As one text literal: psycopg's list dumper is slower for thousands of ints.
            return f"{sql} = ANY(%s::bigint[])", [*params, "{" + ",".join(map(str, self.values)) + "}"]
        if not self.values:
            return "1 = 0", []
        return f"{sql} IN ({', '.join(['%s'] * len(self.values))})", [*params, *self.values]


def any_of(column: str, values: Iterable[int]) -> AnyOf:
    """Filter ``column`` to ``values`` (see AnyOf)."""
    return AnyOf(column, values)
