"""What every benchmark does at the end: write its numbers as JSON."""

import json
import os


def write_result(path: str, result: dict, indent: int = 2, announce: bool = True) -> None:
    """Writes `result` to `path` as JSON (creating the folder); prints where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=indent)
    if announce:
        print(f"wrote {path}")
