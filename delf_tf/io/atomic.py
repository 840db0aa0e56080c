"""Atomic file writes: a crash or error never leaves a truncated file behind."""

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

__all__ = ["write_bytes_atomic", "read_bytes", "open_atomic", "remove_stale_temporaries"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes `data` to `path` through a temporary file in the same directory.

    The temporary file is renamed over `path` only once fully written, so readers
    see either the old file, the new file, or no file, never a partial one.
    """
    with open_atomic(path) as f:
        f.write(data)


def read_bytes(path: str) -> bytes:
    """Reads a whole file; a missing file raises FileNotFoundError naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    with open(path, "rb") as f:
        return f.read()


@contextlib.contextmanager
def open_atomic(path: str) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file that replaces `path` only when the block exits
    without an error (for outputs too large to build in memory first)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(
            dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(outputs: Sequence[str]) -> int:
    """Removes the temporary files an interrupted atomic write of one of `outputs`
    left behind (`.<name>.<random>.tmp` next to it: a process killed between
    writing and renaming). Only these outputs' temporary files are touched, so
    other shards writing into the same directory are unaffected. Returns how many.
    """
    wanted: dict[str, set[str]] = {}
    for path in outputs:
        directory, name = os.path.split(os.path.abspath(path))
        wanted.setdefault(directory, set()).add(name)
    removed = 0
    for directory, names in wanted.items():
        try:
            entries = os.listdir(directory)
        except FileNotFoundError:
            continue
        for entry in entries:
            if (entry.startswith(".") and entry.endswith(".tmp")
                    and entry[1:-len(".tmp")].rsplit(".", 1)[0] in names):
                try:
                    os.unlink(os.path.join(directory, entry))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
