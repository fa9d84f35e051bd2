"""Files several processes share, the one home of how we lock and replace them: `file_lock` holds an
`flock` on a lock file of its own (exclusive, or shared for readers), and `replace_atomically`
writes a file whole (a temp file in the same directory, flushed to disk, renamed over the old one),
so neither a reader nor a crash ever sees half a file. Used by the local forge's state
(`forge/local/store.py`), the deploy controller's rollout state and the registry's per-clone
writer lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold an flock on `path` (created when missing) for the `with` block."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_atomically(path: Path, text: str, *, prefix: str) -> None:
    """`path` holds `text` (UTF-8) afterwards, or its old content if this fails: the temp file is
    named `prefix...suffix` in the same directory and removed on failure."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
