"""Indexes for "Find work" on PostgreSQL: nearby open tasks and full-text search.

- cube + earthdistance (contrib extensions shipped with PostgreSQL) and a
  partial GiST expression index on ll_to_earth(latitude, longitude) for open
  tasks: answers the earth_box prefilter and nearest-first ``<->`` ordering of
  tasks.selectors.open_tasks_near.
- a partial GIN expression index on the English tsvector of title and
  description: answers its full-text search.

The expressions must stay exactly those tasks/selectors.py generates, or the
planner will not use the indexes (tests/tasks/test_selectors.py checks with
EXPLAIN). On SQLite (``make run``) this migration does nothing: the selector
falls back to a bounding box and a substring search there.

Creating an extension needs a superuser (or a trusted-extension grant); on a
managed database where the app's role has neither, create both extensions once
by hand first: CREATE EXTENSION IF NOT EXISTS is then a no-op.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS cube",
    "CREATE EXTENSION IF NOT EXISTS earthdistance",
    "CREATE INDEX IF NOT EXISTS task_open_near_gist ON tasks_task"
    " USING gist (ll_to_earth(latitude, longitude)) WHERE status = 'open'",
    "CREATE INDEX IF NOT EXISTS task_open_fts_gin ON tasks_task"
    " USING gin (to_tsvector('english'::regconfig, title || ' ' || description)) WHERE status = 'open'",
]

# The extensions stay: other objects may have come to depend on them.
REVERSE = [
    "DROP INDEX IF EXISTS task_open_fts_gin",
    "DROP INDEX IF EXISTS task_open_near_gist",
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
        ("tasks", "0002_lifecycle"),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(REVERSE), elidable=False),
    ]
