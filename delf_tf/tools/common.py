"""What every tool's `main` does the same way: refuse positional arguments and
turn the library's input errors into one `Error: ...` line and exit status 1."""

import contextlib
import sys
from collections.abc import Iterator, Sequence

__all__ = ["INPUT_ERRORS", "check_no_arguments", "reported_errors"]

# What the library raises for bad input (missing or broken files, bad values):
# a message for the user, not a traceback.
INPUT_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, ValueError)


def check_no_arguments(argv: Sequence[str]) -> None:
    """absl passes the program name and any positional arguments: tools take none."""
    if len(argv) > 1:
        from absl import app

        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")


@contextlib.contextmanager
def reported_errors(*extra: type[BaseException]) -> Iterator[None]:
    """Exits with `Error: <message>` (status 1) on an input error or one of `extra`."""
    try:
        yield
    except (*INPUT_ERRORS, *extra) as e:
        sys.exit(f"Error: {e}")
