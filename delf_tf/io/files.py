"""Checks on input files that every pipeline runs before its work starts."""

import os
from collections.abc import Sequence

__all__ = ["require_files"]


def require_files(paths: Sequence[str], what: str = "feature file(s)", max_named: int = 5) -> None:
    """Raises FileNotFoundError if any of `paths` is not a file.

    The message counts the missing files and names the first `max_named`:
    `"<n> <what> missing: a, b and <k> more"`, where `what` reads as the subject
    (e.g. "feature file(s)", "aggregation files are").
    """
    missing = [path for path in paths if not os.path.isfile(path)]
    if not missing:
        return
    shown = ", ".join(os.fspath(path) for path in missing[:max_named])
    hidden = len(missing) - max_named
    more = f" and {hidden} more" if hidden > 0 else ""
    raise FileNotFoundError(f"{len(missing)} {what} missing: {shown}{more}")
