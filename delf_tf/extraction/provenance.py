"""Which model and config produced the features in an output directory.

Extraction skips images whose outputs exist, so a rerun with another model or config into
the same directory would silently keep the old features next to new ones. Each run
records its source in `<output_dir>/extraction_source.json` (written atomically); a run
whose source differs from the recorded one warns, naming both, and says that --overwrite
replaces the old outputs.

A source is {"model_path", "model_fingerprint" (hash of the SavedModel's fingerprint or
graph and variable index: a re-export to the same path is another model), "config_path",
"config_sha256" (of the config's text), options}; the config path is shown but not compared.
"""

import hashlib
import json
import logging
import os

from delf_tf.io import atomic

__all__ = ["SIDECAR_NAME", "describe_source", "record_source"]

logger = logging.getLogger(__name__)

SIDECAR_NAME = "extraction_source.json"
# Files whose bytes identify a SavedModel (fingerprint.pb, when TF wrote one, already
# hashes the graph and the variables).
_MODEL_FILES = (("fingerprint.pb",), ("saved_model.pb", "variables/variables.index"))


def _model_fingerprint(model_path: str) -> str:
    for names in _MODEL_FILES:
        paths = [os.path.join(model_path, name) for name in names]
        if all(os.path.isfile(path) for path in paths):
            digest = hashlib.sha256()
            for path in paths:
                digest.update(atomic.read_bytes(path))
            return digest.hexdigest()[:16]
    return ""


def describe_source(model_path: str, config_path: str, config_text: str, **options) -> dict:
    """The source record of a run: model, config and the options that change outputs."""
    return {"model_path": os.path.abspath(model_path) if model_path else "",
            "model_fingerprint": _model_fingerprint(model_path) if model_path else "",
            "config_path": os.path.abspath(config_path) if config_path else "",
            "config_sha256": hashlib.sha256(config_text.encode()).hexdigest()[:16],
            **options}


def _same(a: dict, b: dict) -> bool:
    return ({k: v for k, v in a.items() if k != "config_path"}
            == {k: v for k, v in b.items() if k != "config_path"})


def _read_sources(path: str) -> list[dict] | None:
    try:
        with open(path, encoding="utf-8") as f:
            sources = json.load(f)["sources"]
        if isinstance(sources, list) and all(isinstance(s, dict) for s in sources):
            return sources
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    logger.warning("%s is unreadable; it is replaced by this run's source", path)
    return None


def _summary(source: dict) -> str:
    options = ", ".join(f"{key}={value}" for key, value in source.items()
                        if key not in ("model_path", "model_fingerprint", "config_path",
                                       "config_sha256"))
    return (f"model {source.get('model_path')} (fingerprint {source.get('model_fingerprint')}), "
            f"config {source.get('config_path')} (sha256 {source.get('config_sha256')})"
            + (f", {options}" if options else ""))


def record_source(output_dir: str, source: dict, overwrite: bool) -> None:
    """Compares `source` with the one recorded in `output_dir`, warns if they differ, and
    records it. Without `overwrite` the old outputs stay, so both sources are recorded
    (a later run with either still warns about the other's files)."""
    path = os.path.join(output_dir, SIDECAR_NAME)
    recorded = _read_sources(path) or []
    others = [old for old in recorded if not _same(old, source)]
    if others:
        old = "; ".join(_summary(s) for s in others)
        if overwrite:
            logger.warning("Outputs in %s were extracted with %s; this run uses %s and, with "
                           "--overwrite, replaces them", output_dir, old, _summary(source))
        else:
            logger.warning("Outputs in %s were extracted with %s, but this run uses %s: "
                           "existing outputs are kept and only missing ones are written with "
                           "the new model/config; pass --overwrite to replace them",
                           output_dir, old, _summary(source))
    sources = [source] if overwrite else others + [source]
    if sources != recorded:
        atomic.write_bytes_atomic(path, json.dumps({"sources": sources}, indent=1).encode())
