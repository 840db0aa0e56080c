"""Argument checks for the library's entry points (and so for the tools' flags).

Each check raises ValueError naming the parameter and the bad value. The entry
points call them before any work starts; their parameter names are the tools'
flag names, so the message names the flag a user typed.
"""

import math
import os
from collections.abc import Iterable

__all__ = [
    "finite", "positive", "non_negative", "in_range", "positive_list", "relative_name",
    "relative_names",
]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def finite(name: str, value) -> None:
    """`value` is a finite number (not NaN, not +-Inf)."""
    if not math.isfinite(_number(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def positive(name: str, value) -> None:
    """`value` is a finite number > 0."""
    finite(name, value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def non_negative(name: str, value) -> None:
    """`value` is a finite number >= 0."""
    finite(name, value)
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def in_range(name: str, value, low: float, high: float, *, low_inclusive: bool = True,
             high_inclusive: bool = True) -> None:
    """`value` is finite and within [low, high] (ends open where not inclusive)."""
    finite(name, value)
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        interval = (("[" if low_inclusive else "(") + f"{low:g}, {high:g}"
                    + ("]" if high_inclusive else ")"))
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def positive_list(name: str, values: Iterable) -> None:
    """A non-empty list of finite numbers > 0 (image scales and the like)."""
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for value in values:
        if not (math.isfinite(_number(value)) and _number(value) > 0):
            raise ValueError(f"{name} must hold finite numbers > 0, got {value!r} in {values}")


def relative_name(name: str, what: str) -> str:
    """`name` as a path that stays inside the directory it is joined to.

    Image names from dataset files and CSV ids become file names under an
    images/output directory; a name that is absolute or climbs out with `..`
    (or is empty) would read or write elsewhere, so it is refused.

    Raises:
      ValueError: naming `what` (e.g. "image name in gnd.mat") and the name.
    """
    text = str(name)
    normalized = os.path.normpath(text.replace("\\", "/")) if text else ""
    if (not text or "\0" in text or os.path.isabs(text) or text.startswith(("/", "\\"))
            or (len(text) > 1 and text[1] == ":")
            or normalized == ".." or normalized.startswith("../") or normalized == "."):
        raise ValueError(f"{what} {text!r} is not a relative path inside its directory "
                         "(absolute paths and '..' are refused)")
    return text


def relative_names(names: Iterable[str], what: str) -> list[str]:
    """relative_name over many names; the error names the first bad one."""
    return [relative_name(name, what) for name in names]
