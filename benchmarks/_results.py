"""What every benchmark shares: timing calls and writing its numbers as JSON."""

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any


def flag_parser(doc: str, **defaults: Any) -> argparse.ArgumentParser:
    """The benchmark's command line: the first line of its module docstring `doc` as the
    description, and a `--<name>` flag for each keyword: a switch when its default is False,
    else a value of the default's type. Flags that need more (help, choices, their own
    parsing) are added to the returned parser."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        if default is False:
            parser.add_argument(f"--{name}", action="store_true")
        else:
            parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall and process CPU seconds (all threads) of each timed call, and what the
    last call returned."""

    walls: list[float]
    cpus: list[float]
    result: Any = None

    @property
    def wall(self) -> float:
        """The best wall seconds."""
        return min(self.walls)

    @property
    def cpu(self) -> float:
        """The best CPU seconds. CPU time is far less noisy than wall time on a shared
        machine, and the ratio of two runs' work is what the benchmarks compare."""
        return min(self.cpus)

    @property
    def best(self) -> tuple[float, float]:
        """(best wall seconds, best CPU seconds)."""
        return self.wall, self.cpu

    @property
    def cpu_of_fastest(self) -> float:
        """The CPU seconds of the call with the best wall time."""
        return self.cpus[self.walls.index(self.wall)]


def timed(fn: Callable[[], Any], repeats: int = 1, *, warmup: bool = False) -> Timing:
    """Calls `fn()` `repeats` times, timing each call; with `warmup`, once more
    before, untimed (traces, allocations)."""
    if warmup:
        fn()
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(walls, cpus, result)


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, repeats: int = 1, *,
                warmup: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """({name: best wall seconds}, {name: best CPU seconds}) of the named functions, each
    `timed(fn, repeats, warmup=warmup)` once a round, round after round, so changes of the
    machine's load hit them all alike."""
    timings: dict[str, list[Timing]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            timings[name].append(timed(fn, repeats, warmup=warmup))
    return ({name: min(t.wall for t in runs) for name, runs in timings.items()},
            {name: min(t.cpu for t in runs) for name, runs in timings.items()})


def print_and_write(path: str, result: dict) -> None:
    """Prints `result` one key a line (floats to 4 decimals) and writes it to `path`."""
    for key, value in result.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    write_result(path, result, announce=False)


def write_result(path: str, result: dict, indent: int = 2, announce: bool = True) -> None:
    """Writes `result` to `path` as JSON (creating the folder); prints where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=indent)
    if announce:
        print(f"wrote {path}")
