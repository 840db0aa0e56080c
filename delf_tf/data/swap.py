"""Replacing a set of files in one directory so that a kill at any moment is recoverable.

Used by the dataset builder to swap a rebuilt dataset's shards in over an older build's.
Renaming shards one by one is not atomic as a whole: a kill -9 between two renames leaves
some shards of the old build and some of the new, and a `train*` pattern reads both. So:

1. every new file is written completely under a temporary name (`stage`);
2. a small journal (`.swap_journal.json`, written atomically) names the pending renames and
   the old files to remove;
3. the renames and removals are done;
4. the journal is removed.

A kill before 2 leaves the old files untouched (and temporaries, which the next build
removes); a kill after 2 leaves the journal, and `complete_interrupted_swap` rolls the swap
forward (renames are idempotent to redo: a temporary already renamed is simply gone).
Readers call `check_no_interrupted_swap` and refuse a directory whose journal is present.
"""

import json
import os
from collections.abc import Sequence

from delf_tf.io import atomic

__all__ = ["JOURNAL_NAME", "InterruptedSwapError", "StagedSwap", "check_no_interrupted_swap",
           "complete_interrupted_swap"]

JOURNAL_NAME = ".swap_journal.json"


class InterruptedSwapError(ValueError):
    """A directory holds the journal of a swap that was interrupted: its files may be a mix
    of an old and a new set."""


def _journal_path(directory: str) -> str:
    return os.path.join(directory, JOURNAL_NAME)


def check_no_interrupted_swap(directory: str) -> None:
    """Raises InterruptedSwapError naming `directory` if a swap into it was interrupted."""
    path = _journal_path(directory)
    if os.path.exists(path):
        raise InterruptedSwapError(
                f"{directory} holds an interrupted dataset rebuild ({path} lists shard "
                "renames that were not all done), so its shards may mix the old and the new "
                "build: run build_image_dataset again with --output_directory="
                f"{directory} (it completes the swap first)")


def complete_interrupted_swap(directory: str) -> bool:
    """Rolls an interrupted swap in `directory` forward; returns whether there was one.

    Raises:
      InterruptedSwapError: a file the journal needs is gone (neither the temporary nor the
        renamed file exists), so the set cannot be completed.
    """
    path = _journal_path(directory)
    if not os.path.exists(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            journal = json.load(f)
        renames = [(str(tmp), str(final)) for tmp, final in journal["renames"]]
        removals = [str(name) for name in journal["removals"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InterruptedSwapError(f"{path}: unreadable swap journal ({e}); the files in "
                                   f"{directory} may mix two builds: rebuild into an empty "
                                   "directory") from None
    _apply(directory, renames, removals)
    os.unlink(path)
    return True


def _apply(directory: str, renames: Sequence[tuple[str, str]], removals: Sequence[str]) -> None:
    for tmp_name, final_name in renames:
        tmp_path, final_path = (os.path.join(directory, tmp_name),
                                os.path.join(directory, final_name))
        if os.path.exists(tmp_path):
            os.replace(tmp_path, final_path)
        elif not os.path.exists(final_path):
            raise InterruptedSwapError(
                    f"{directory}: interrupted swap cannot be completed, neither {tmp_name} "
                    f"nor {final_name} exists; rebuild into an empty directory")
    for name in removals:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass


class StagedSwap:
    """Files staged under temporary names in one directory, then swapped in all together.

    `stage(name)` gives the temporary path to write `name` to; `commit(removals)` renames
    every staged file into place and removes `removals`, recoverably (see the module
    docstring); `abort()` removes the temporaries.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self._staged: list[tuple[str, str]] = []

    @staticmethod
    def temporary_name(name: str) -> str:
        return f".{name}.tmp"

    @property
    def staged_names(self) -> list[str]:
        return [final for _, final in self._staged]

    def stage(self, name: str) -> str:
        tmp_name = self.temporary_name(name)
        self._staged.append((tmp_name, name))
        return os.path.join(self.directory, tmp_name)

    def commit(self, removals: Sequence[str] = ()) -> None:
        atomic.write_bytes_atomic(
                _journal_path(self.directory),
                json.dumps({"renames": self._staged, "removals": list(removals)}).encode())
        _apply(self.directory, self._staged, removals)
        os.unlink(_journal_path(self.directory))
        self._staged = []

    def abort(self) -> None:
        for tmp_name, _ in self._staged:
            try:
                os.unlink(os.path.join(self.directory, tmp_name))
            except FileNotFoundError:
                pass
        self._staged = []

    def remove_stale_journal_temporaries(self) -> int:
        """Removes the temporaries of a journal write that a kill interrupted."""
        return atomic.remove_stale_temporaries([_journal_path(self.directory)])
