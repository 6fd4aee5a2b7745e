"""The data-dir lock: one writer per data dir, reentrant within a process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tickwatch.errors import StoreError
from tickwatch.store.lock import DataDirLock, hold


def test_a_second_lock_on_the_same_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path, "run").acquire()
    with pytest.raises(
        StoreError,
        match=rf"in use by another tickwatch process \(pid {os.getpid()}: tickwatch run\)",
    ):
        DataDirLock(tmp_path, "replay").acquire()
    first.release()
    with DataDirLock(tmp_path, "replay"):  # free again once released
        pass


def test_hold_is_reentrant_within_a_process(tmp_path: Path) -> None:
    assert hold(tmp_path / "d", "replay") is hold(tmp_path / "d", "replay")


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot lock the data dir"):
        DataDirLock(blocker / "data", "run").acquire()
