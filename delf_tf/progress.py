"""One progress line for every long loop: count, rate and time left.

    progress = Progress(len(paths), "Read features of", unit="images", log=print)
    for path in paths:
        ...
        progress.step()          # "Read features of 120/500 images (31.2/s, ETA 12 s)"

Lines go to `log` (default: this module's logger at INFO, which the tools configure), at
most every `every` items or `min_seconds` seconds, and always for the last item. A job resumed
part-way starts at `initial` done; its rate counts only what this run did.
"""

import logging
import time
from collections.abc import Callable

__all__ = ["Progress", "format_seconds"]

logger = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """12 s, 3.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts items done out of `total` and reports `<header> <done>/<total> <unit> (...)`."""

    def __init__(self, total: int, header: str, *, unit: str = "",
                 log: Callable[[str], object] | None = None, every: int = 1,
                 min_seconds: float = 0.0, clock: Callable[[], float] = time.perf_counter,
                 initial: int = 0):
        self.total = int(total)
        self.header = header
        self.unit = f" {unit}" if unit else ""
        self.log = log or logger.info
        self.every = max(1, int(every))
        self.min_seconds = float(min_seconds)
        self.clock = clock
        self.done = self.initial = int(initial)
        self.start = clock()
        self._last_report = None

    def line(self, note: str = "") -> str:
        """The current line: count, rate per second, seconds per item and ETA."""
        elapsed = max(self.clock() - self.start, 1e-9)
        done_here = self.done - self.initial
        rate = done_here / elapsed
        parts = [f"{rate:.3g}/s" if rate >= 1 else f"{elapsed / max(done_here, 1):.2f} s each"]
        if done_here > 0 and self.done < self.total:
            parts.append(f"ETA {format_seconds((self.total - self.done) / rate)}")
        elif self.done >= self.total:
            parts.append(f"took {format_seconds(elapsed)}")
        if note:
            parts.insert(0, note)
        return f"{self.header} {self.done}/{self.total}{self.unit} ({', '.join(parts)})"

    def step(self, count: int = 1, note: str = "") -> None:
        """Marks `count` more items done and reports when due."""
        crossed = self.done // self.every < (self.done + count) // self.every
        self.done += count
        now = self.clock()
        due = (crossed and (
            self._last_report is None or now - self._last_report >= self.min_seconds))
        if due or self.done >= self.total:
            self._last_report = now
            self.log(self.line(note))
