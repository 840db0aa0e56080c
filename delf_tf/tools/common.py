"""What every tool's `main` does the same way: configure logging, refuse positional
arguments and turn the library's input errors into one `Error: ...` line and exit status 1."""

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

__all__ = ["INPUT_ERRORS", "check_no_arguments", "configure_logging", "reported_errors",
           "tool_main"]

# What the library raises for bad input (missing, unreadable or broken files, bad values):
# a message for the user, not a traceback.
INPUT_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError)


def configure_logging(level: int = logging.INFO) -> None:
    """Shows the library's log lines (the `delf_tf.*` loggers: progress with counts, rate and
    ETA, warnings) from `level` up, whatever --verbosity says about other libraries. Under
    absl's app.run they go through absl's handler on the root logger (stderr); in a process
    without any handler (a tool's main called directly) a plain one on stderr is added."""
    library = logging.getLogger("delf_tf")
    library.setLevel(level)
    if not logging.getLogger().handlers and not library.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        library.addHandler(handler)


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


def tool_main(run: Callable[[], None] | None = None, *,
              also_reported: tuple[type[BaseException], ...] = ()):
    """The `main(argv)` of a tool whose work is `run()`: logging configured, positional
    arguments refused, and the library's input errors (and `also_reported`) reported as one
    `Error: ...` line (exit status 1)::

        @common.tool_main
        def main():
            trainer.Train(_CONFIG.config())

        @common.tool_main(also_reported=(ImportError,))
        def main(): ...
    """
    if run is None:
        return functools.partial(tool_main, also_reported=also_reported)

    @functools.wraps(run)
    def main(argv: Sequence[str]) -> None:
        configure_logging()
        check_no_arguments(argv)
        with reported_errors(*also_reported):
            run()

    return main
