"""Find work's covering GiST index also carries published_at (PostgreSQL only;
nothing on SQLite).

The newest sort walks the nearest 201 matches reading published_at as well
(tasks.nearby_sql.NearbySearch.walk); without it in the index that walk read
every candidate's table row (~8 ms p50 at 1M tasks, bench/profile_nearby.py
--params sort=newest) instead of being index-only like the distance and
budget walks. Same name and key as 0005's index, one more INCLUDE column.

0005's search index (task_open_near_search_gist) is rebuilt after it, as
0005 built them, in that order: when the planner's costs for a search near a
point tie (small tables), it takes the index created later, and the search
index is the one that checks the words inside the index (EXPLAIN tests in
tests/tasks/test_selectors.py); with the covering index rebuilt last, those
ties went to it and the words were checked as a filter on every row walked.

Rebuilt without CONCURRENTLY (this runs in the migration's transaction); on a
large live table run it in a quiet moment: writes to tasks wait, and Find work
has neither index until the transaction commits.
"""

from django.db import migrations

INCLUDE_0005 = "id, customer_id, latitude, longitude, category_id, budget_cents"


def _index(include: str) -> list[str]:
    return [
        "DROP INDEX IF EXISTS task_open_near_covering_gist",
        "CREATE INDEX task_open_near_covering_gist ON tasks_task"
        f" USING gist (ll_to_earth(latitude, longitude)) INCLUDE ({include}) WHERE status = 'open'",
        "DROP INDEX IF EXISTS task_open_near_search_gist",
        "CREATE INDEX task_open_near_search_gist ON tasks_task"
        " USING gist (ll_to_earth(latitude, longitude), search_document) WHERE status = 'open'",
    ]


FORWARD = _index(f"{INCLUDE_0005}, published_at")
REVERSE = _index(INCLUDE_0005)


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0005_find_work_covering_indexes"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(REVERSE), elidable=False),
    ]
