"""Files written inside a database transaction are removed if it does not commit.

A service stores an upload (``FieldFile.save(..., save=False)`` writes the file
at once) and then inserts the row that names it, inside its transaction. If
anything after that fails (a later step refuses, a constraint trips, the COMMIT
itself fails) the row is rolled back but the file would stay in MEDIA_ROOT with
nothing pointing at it. So services that store files run their transaction as
``with atomic_with_files():`` (or decorated ``@atomic_with_files()``) instead
of ``transaction.atomic()``, and the code that writes a file reports it with
``file_stored(field_file)``:

- the block raises, or ends with its transaction doomed (``needs_rollback``),
  or its COMMIT fails: every file stored in it is deleted;
- it succeeds inside an outer ``atomic_with_files`` block: its files become
  the outer block's, kept or deleted with that one;
- it succeeds as the outermost block: committed, the files stay.

Not covered: an outer plain ``transaction.atomic()`` that rolls back after an
inner ``atomic_with_files`` block succeeded (Django has no rollback hook).
Wrap such outer transactions in ``atomic_with_files`` too (``tasks.demo`` does).

Deleting a stored file that a row still names (the opposite case) is done
after commit with ``transaction.on_commit``, so a rollback never leaves a row
without its file.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

# The innermost open atomic_with_files block's list of (storage, name).
_stored: contextvars.ContextVar[list[tuple[Any, str]] | None] = contextvars.ContextVar("stored_files", default=None)


def file_stored(field_file: Any) -> None:
    """Note a file just written to storage, to be removed if the surrounding
    ``atomic_with_files`` block does not commit. Outside one: nothing to do."""
    pending = _stored.get()
    if pending is not None and field_file and field_file.name:
        pending.append((field_file.storage, field_file.name))


def _delete(files: list[tuple[Any, str]]) -> None:
    for storage, name in files:
        try:
            storage.delete(name)
        except Exception:  # a failed cleanup must not hide the error that caused it
            logger.exception("Could not remove %s after a rollback", name)


@contextmanager
def atomic_with_files(using: str | None = None) -> Iterator[None]:
    """``transaction.atomic(using)`` that deletes the files stored inside it
    (``file_stored``) unless it commits; see the module docstring."""
    stored: list[tuple[Any, str]] = []
    token = _stored.set(stored)
    kept = False
    try:
        with transaction.atomic(using=using):
            yield
            # Caught errors inside may have doomed the transaction: then
            # atomic's exit rolls back without raising.
            doomed = transaction.get_connection(using).needs_rollback
        kept = not doomed
    finally:
        _stored.reset(token)
        if not kept:
            _delete(stored)
        else:
            outer = _stored.get()
            if outer is not None:
                outer.extend(stored)
