"""`locked_files`: the flock and the atomic replace that the local forge, the deploy controller's
rollout state and the registry's writer lock share."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from mlops_bot.locked_files import file_lock, replace_atomically


def _can_lock(path: Path, mode: int) -> bool:
    """Whether another open file description could take `mode` now (what another process sees)."""
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_shared_locks_exclude_writers_and_an_exclusive_lock_excludes_all(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    with file_lock(lock, shared=True):
        assert _can_lock(lock, fcntl.LOCK_SH)
        assert not _can_lock(lock, fcntl.LOCK_EX)
    with file_lock(lock):
        assert not _can_lock(lock, fcntl.LOCK_SH)
    assert _can_lock(lock, fcntl.LOCK_EX)  # released


def test_a_failed_replace_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    replace_atomically(path, '{"v": 1}', prefix=".state.")
    assert path.read_text(encoding="utf-8") == '{"v": 1}'
    with pytest.raises(UnicodeEncodeError):
        replace_atomically(path, '{"v": "\ud800"}', prefix=".state.")  # not encodable: fails mid-write
    assert path.read_text(encoding="utf-8") == '{"v": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
