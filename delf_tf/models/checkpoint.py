"""Model weights for export: a TF checkpoint plus a JSON sidecar describing the model.

`save_weights(model, "<logdir>/delf_weights")` writes `delf_weights.index`,
`delf_weights.data-*` and `delf_weights.json` ({"class": "Delf"|"Delg", "config": {...},
"num_classes": C or null}); `load_model` rebuilds the model from the sidecar alone.
"""

import glob
import json
import os

import tensorflow as tf

from delf_tf.io import atomic
from delf_tf.models.delf import Delf
from delf_tf.models.registry import MODEL_CLASSES, create_model

__all__ = [
    "write_with_sidecar", "read_sidecar", "restore_matching", "save_described",
    "load_described", "save_weights", "restore_weights", "load_model",
]

_BUILD_IMAGE_SIZE = 64


def _sidecar_path(prefix: str) -> str:
    return os.fspath(prefix) + ".json"


def write_with_sidecar(model, prefix: str, sidecar: dict) -> None:
    """Writes tf.train.Checkpoint(model=model) to `prefix` and `sidecar` as `<prefix>.json`.

    The checkpoint is written under a temporary prefix, then renamed (data files first, the
    index last), so a kill mid-write leaves the previous weights readable rather than
    half-written ones; the sidecar is written atomically after them.
    """
    prefix = os.fspath(prefix)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    tmp_prefix = os.path.join(directory, "." + os.path.basename(prefix) + ".tmp")
    tf.train.Checkpoint(model=model).write(tmp_prefix)
    written = sorted(glob.glob(glob.escape(tmp_prefix) + ".data-*"))
    for path in written:
        os.replace(path, prefix + path[len(tmp_prefix):])
    for stale in glob.glob(glob.escape(prefix) + ".data-*"):
        if stale not in {prefix + path[len(tmp_prefix):] for path in written}:
            os.unlink(stale)
    os.replace(tmp_prefix + ".index", prefix + ".index")
    atomic.write_bytes_atomic(_sidecar_path(prefix),
                              (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())


def read_sidecar(prefix: str, expected_class: str | None = None) -> dict:
    """The `<prefix>.json` description of the weights at `prefix`; with `expected_class`,
    an error unless it describes that class."""
    sidecar_path = _sidecar_path(prefix)
    if not os.path.isfile(sidecar_path):
        raise FileNotFoundError(f"No model description {sidecar_path} next to weights {prefix}")
    with open(sidecar_path) as f:
        sidecar = json.load(f)
    if expected_class is not None and sidecar.get("class") != expected_class:
        raise ValueError(f"{sidecar_path}: not a {expected_class} "
                         f"(class {sidecar.get('class')!r})")
    return sidecar


def restore_matching(model, prefix: str, description: str) -> None:
    """Restores `prefix` into the built `model`; an error naming `description` when a
    variable of the model has no value in the checkpoint."""
    try:
        status = tf.train.Checkpoint(model=model).read(os.fspath(prefix))
    except (tf.errors.OpError, IndexError) as error:  # truncated or corrupt data files
        raise ValueError(f"Checkpoint {prefix} is unreadable (truncated or corrupt?): "
                         f"{error}") from None
    status.expect_partial()  # the checkpoint may hold heads (or an optimizer) the model lacks
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(f"Checkpoint {prefix} does not match {description}: {error}") from None


def save_described(model, prefix: str) -> None:
    """Weights of a model that describes itself (`model_config` and `meta`: GlobalFeatureNet,
    HowNet) at `prefix`, plus `<prefix>.json` {"class", "config", "meta"} for `load_described`."""
    write_with_sidecar(model, prefix, {"class": type(model).__name__,
                                       "config": model.model_config, "meta": model.meta})


def load_described(model_class: type, prefix: str):
    """Rebuilds the `model_class` model described by `<prefix>.json` (an error unless it
    describes that class) and restores its weights."""
    name = model_class.__name__
    sidecar = read_sidecar(prefix, expected_class=name)
    model = model_class(**sidecar["config"])
    model.build_for_input()
    restore_matching(model, prefix, f"its {name} description")
    return model


def save_weights(model: Delf, prefix: str) -> None:
    """Writes tf.train.Checkpoint(model=model) to `prefix` and the sidecar `<prefix>.json`."""
    class_name = type(model).__name__
    if class_name not in MODEL_CLASSES:
        raise TypeError(f"save_weights expects a Delf or Delg model, got {class_name}")
    write_with_sidecar(model, prefix, {"class": class_name, "config": model.model_config,
                                       "num_classes": model.num_classes})


def restore_weights(model: Delf, prefix: str) -> None:
    """Restores `prefix` into a model built with `build_for_input` (classifier heads optional)."""
    if not tf.io.gfile.exists(os.fspath(prefix) + ".index"):
        raise FileNotFoundError(f"No checkpoint at {prefix} (missing {prefix}.index)")
    restore_matching(model, prefix, "the model (different backbone/config, or classifier "
                     "heads it was saved without)")


def load_model(prefix: str, **overrides) -> Delf:
    """Builds the model described by `<prefix>.json` (kwargs in `overrides` win), builds its
    variables and restores the weights. The classifier heads are created only if they were
    saved and `num_classes` is not overridden to None."""
    sidecar = read_sidecar(prefix)
    class_name = sidecar.get("class")
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"{_sidecar_path(prefix)}: unknown model class {class_name!r}")
    num_classes = overrides.pop("num_classes", sidecar.get("num_classes"))
    config = dict(sidecar.get("config", {}))
    config.update(overrides)
    model = create_model(class_name, num_classes, **config)
    model.build_for_input(_BUILD_IMAGE_SIZE)
    restore_weights(model, prefix)
    return model
