"""core.files: files stored inside a transaction go away unless it commits."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from core.files import atomic_with_files, file_stored

pytestmark = pytest.mark.django_db


class Stored:
    """A stand-in for a FieldFile: a name in default storage."""

    storage = default_storage

    def __init__(self, content: bytes = b"x") -> None:
        self.name = default_storage.save("core-files-test/f.bin", ContentFile(content))

    def exists(self) -> bool:
        return default_storage.exists(self.name)


def store() -> Stored:
    stored = Stored()
    file_stored(stored)
    return stored


def test_files_stay_when_the_block_succeeds():
    with atomic_with_files():
        kept = store()
    assert kept.exists()


def test_files_go_when_the_block_raises():
    with pytest.raises(ValueError), atomic_with_files():
        gone = store()
        raise ValueError("refused")
    assert not gone.exists()


def test_files_go_when_the_transaction_was_doomed_without_raising():
    with atomic_with_files():
        gone = store()
        transaction.set_rollback(True)
    assert not gone.exists()


def test_an_inner_blocks_files_go_when_the_outer_block_fails_later():
    with pytest.raises(ValueError), atomic_with_files():
        with atomic_with_files():
            inner = store()
        assert inner.exists()  # not committed yet: it belongs to the outer block now
        raise ValueError("refused after the inner block succeeded")
    assert not inner.exists()


def test_an_inner_failure_removes_only_its_own_files():
    with atomic_with_files():
        outer = store()
        with pytest.raises(ValueError), atomic_with_files():
            inner = store()
            raise ValueError("refused")
    assert outer.exists() and not inner.exists()


def test_outside_a_block_nothing_is_tracked():
    loose = store()
    with pytest.raises(ValueError), atomic_with_files():
        raise ValueError("refused")
    assert loose.exists()


def test_as_a_decorator_each_call_tracks_its_own_files():
    made = []

    @atomic_with_files()
    def step(fail: bool) -> None:
        made.append(store())
        if fail:
            raise ValueError("refused")

    step(False)
    with pytest.raises(ValueError):
        step(True)
    assert [f.exists() for f in made] == [True, False]
