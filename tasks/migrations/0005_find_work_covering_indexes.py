"""Find work at a million tasks, second pass (PostgreSQL only; nothing on SQLite).

- The nearby GiST index carries the columns Find work filters and counts on
  (INCLUDE id, customer_id, latitude, longitude, category_id, budget_cents):
  the capped count ("more than 200") and the nearest-N candidate sets of the
  other sorts are then index-only scans instead of ~200 heap reads each
  (downtown New York at 1M tasks: 7.9 -> 2.0 ms for the count, measured with
  the machine at load 8). latitude and longitude must be included although
  the key is ll_to_earth(latitude, longitude): PostgreSQL only plans an
  index-only scan when every column the query names is in the index.
- A stored, weighted tsvector (title A, description B), and a partial
  two-column GiST index on (ll_to_earth(latitude, longitude), search_document)
  instead of 0003's GIN expression index: a search near a point walks the
  index nearest-first with the text match checked inside the index, so a
  common word in a dense area reads only the matching rows (downtown New
  York, "leak", 201 matches: 2,849 heap rows and 28 ms with the GIN index
  and a filter, 201 rows and 12 ms with this one, at load 8), and nothing
  runs to_tsvector per row when matching or ranking.

Both indexes are built without CONCURRENTLY (this runs in the migration's
transaction); on a large live table, create them CONCURRENTLY by hand first:
the IF NOT EXISTS below then skips them.
"""

from django.db import migrations

DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')"
)

FORWARD = [
    "CREATE INDEX IF NOT EXISTS task_open_near_covering_gist ON tasks_task"
    " USING gist (ll_to_earth(latitude, longitude))"
    " INCLUDE (id, customer_id, latitude, longitude, category_id, budget_cents) WHERE status = 'open'",
    "DROP INDEX IF EXISTS task_open_near_gist",
    f"ALTER TABLE tasks_task ADD COLUMN IF NOT EXISTS search_document tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED",
    "CREATE INDEX IF NOT EXISTS task_open_near_search_gist ON tasks_task"
    " USING gist (ll_to_earth(latitude, longitude), search_document) WHERE status = 'open'",
    "DROP INDEX IF EXISTS task_open_fts_gin",
]

REVERSE = [
    "CREATE INDEX IF NOT EXISTS task_open_fts_gin ON tasks_task"
    " USING gin (to_tsvector('english'::regconfig, title || ' ' || description)) WHERE status = 'open'",
    "DROP INDEX IF EXISTS task_open_near_search_gist",
    "ALTER TABLE tasks_task DROP COLUMN IF EXISTS search_document",
    "CREATE INDEX IF NOT EXISTS task_open_near_gist ON tasks_task"
    " USING gist (ll_to_earth(latitude, longitude)) WHERE status = 'open'",
    "DROP INDEX IF EXISTS task_open_near_covering_gist",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0004_photo_checks"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(REVERSE), elidable=False),
    ]
