"""Import of the original DELF/DELG (tensorflow/models research/delf, TF2) weights.

Sources the original's TF2 training and export write:
  - `<logdir>/delf_weights`: Keras-2 `Model.save_weights` (TF format), keys without a
    `model/` prefix (`backbone/l2a/conv2a/kernel/.ATTRIBUTES/VARIABLE_VALUE`);
  - `<logdir>/delf_tf2-ckpt/ckpt-N` (or the directory): `tf.train.Checkpoint(model=...,
    optimizer=...)`, keys under `model/` plus optimizer state;
  - an exported SavedModel directory (its `variables/variables` checkpoint; the model sits
    under the export module's attribute, e.g. `_model/`).

The object graph of delf_tf's models follows the original's attribute names, so a key maps
by three renames: Keras 3 tracks a Conv2D/Dense kernel as `_kernel` (Keras 2: `kernel`), and
the training heads are `att_fc`/`desc_fc` here, `attn_classification`/`desc_classification`
there. The architecture (DELF or DELG, backbone depth, autoencoder and embedding sizes,
number of classes) is read from the variables' names and shapes; `block3_strides` is not
visible in the weights (it is a max-pool) and is given by the caller.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re

import keras
import numpy as np
import tensorflow as tf

from delf_tf.models import checkpoint as model_checkpoint
from delf_tf.models import registry, resnet
from delf_tf.models.delf import Delf

__all__ = [
    # The original's names (the compatibility surface).
    "ReadOriginalWeights", "InferArchitecture", "ImportOriginalWeights",
    # delf_tf's own API.
    "ImportOptions", "import_original_weights", "original_key", "delf_tf_key",
    "model_variables_by_key", "SourceWeights", "ImportReport",
]

logger = logging.getLogger(__name__)

_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# Segment renames, delf_tf name -> the original's name.
_SEGMENT_TO_ORIGINAL = {"_kernel": "kernel", "att_fc": "attn_classification",
                        "desc_fc": "desc_classification"}
_SEGMENT_FROM_ORIGINAL = {v: k for k, v in _SEGMENT_TO_ORIGINAL.items()}
# Anchor used to find where the model starts inside a source's object graph.
_ANCHOR = "backbone/conv1/kernel"
_BLOCK_KEY = re.compile(r"^backbone/l(\d)([a-z]+)/(conv2c|conv2b)/kernel$")


def original_key(key: str) -> str:
    """delf_tf checkpoint key (relative to the model) -> the original's
    ('backbone/l2a/conv2a/_kernel' -> 'backbone/l2a/conv2a/kernel', 'att_fc/bias' ->
    'attn_classification/bias')."""
    return "/".join(_SEGMENT_TO_ORIGINAL.get(part, part) for part in key.split("/"))


def delf_tf_key(key: str) -> str:
    """The original's key (relative to the model) -> delf_tf's; inverse of original_key."""
    return "/".join(_SEGMENT_FROM_ORIGINAL.get(part, part) for part in key.split("/"))


def model_variables_by_key(model: Delf) -> dict[str, tf.Variable]:
    """{checkpoint key relative to the model (e.g. 'backbone/l2a/conv2a/_kernel'): variable}
    for every variable of a built model, walked through its object graph."""
    view = tf.train.TrackableView(model)
    found: dict[str, tf.Variable] = {}
    seen: set[int] = set()

    def walk(obj, path):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (tf.Variable, keras.Variable)):
            found[path] = obj
            return
        for name, child in view.children(obj).items():
            walk(child, f"{path}/{name}" if path else name)

    walk(model, "")
    return found


@dataclasses.dataclass
class SourceWeights:
    """Model weights read from an original checkpoint or SavedModel.

    values: {the original's key relative to the model: array}; prefix: the object-graph
    path the model sat under ('' for delf_weights, 'model/' for training checkpoints);
    skipped: keys that are not model weights (optimizer state, counters).
    """

    path: str
    checkpoint: str
    prefix: str
    values: dict[str, np.ndarray]
    skipped: list[str]


def _checkpoint_of(path: str) -> str:
    """Checkpoint prefix of a checkpoint prefix, a checkpoint directory or a SavedModel."""
    path = os.fspath(path)
    if os.path.isfile(path + ".index"):
        return path
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            prefix = os.path.join(path, "variables", "variables")
            if not os.path.isfile(prefix + ".index"):
                raise FileNotFoundError(f"SavedModel {path} has no variables/variables.index")
            return prefix
        latest = tf.train.latest_checkpoint(path)
        if latest is not None:
            return latest
    raise FileNotFoundError(
            f"No checkpoint or SavedModel at {path} (expected <prefix>.index, a directory with "
            "a 'checkpoint' file such as delf_tf2-ckpt/, or a SavedModel directory)")


def ReadOriginalWeights(path: str) -> SourceWeights:
    """Reads the model weights of an original checkpoint prefix, checkpoint directory
    (latest checkpoint) or SavedModel directory."""
    checkpoint = _checkpoint_of(path)
    reader = tf.train.load_checkpoint(checkpoint)
    keys = sorted(reader.get_variable_to_shape_map())
    variables = [k[:-len(_VALUE_SUFFIX)] for k in keys
                 if k.endswith(_VALUE_SUFFIX) and ".OPTIMIZER_SLOT" not in k]
    anchors = [k[:-len(_ANCHOR)] for k in variables if k.endswith(_ANCHOR)
               and (len(k) == len(_ANCHOR) or k[-len(_ANCHOR) - 1] == "/")]
    if len(anchors) != 1:
        raise ValueError(
                f"{checkpoint}: cannot find the model's weights ({len(anchors)} variables named "
                f"'.../{_ANCHOR}'; expected one, as in the original's delf_weights, "
                "delf_tf2-ckpt or SavedModel)")
    prefix = anchors[0]
    values, skipped = {}, []
    for key in keys:
        name = key[:-len(_VALUE_SUFFIX)] if key.endswith(_VALUE_SUFFIX) else None
        if name is None or ".OPTIMIZER_SLOT" in key or not name.startswith(prefix):
            skipped.append(key)
            continue
        values[name[len(prefix):]] = np.asarray(reader.get_tensor(key))
    return SourceWeights(os.fspath(path), checkpoint, prefix, values, skipped)


def _backbone_name(values: dict[str, np.ndarray]) -> str:
    blocks: dict[int, set[str]] = {}
    kinds = set()
    for key in values:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(match.group(2))
            kinds.add(match.group(3))
    counts = tuple(len(blocks.get(stage, ())) for stage in (2, 3, 4, 5))
    block_type = "bottleneck" if "conv2c" in kinds else "basic"
    for name, spec in resnet.BACKBONE_SPECS.items():
        if spec.blocks == counts and spec.block_type == block_type:
            return name
    raise ValueError(f"backbone with {counts} {block_type} blocks per stage matches none of "
                     f"{sorted(resnet.BACKBONE_SPECS)}")


def InferArchitecture(values: dict[str, np.ndarray],
                      block3_strides: bool = True) -> tuple[str, dict, int | None]:
    """(model class name 'Delf' | 'Delg', constructor kwargs, num_classes or None) of the
    original's weights `values` (keys relative to the model, the original's names)."""
    config: dict = {"backbone": _backbone_name(values), "block3_strides": block3_strides}
    is_delg = "cosine_weights" in values or "backbone/embedding_layer/kernel" in values
    autoencoder = values.get("autoencoder/conv1/kernel")
    config["use_dim_reduction"] = autoencoder is not None
    if autoencoder is not None:
        config["reduced_dimension"] = int(autoencoder.shape[-1])
        config["dim_expand_channels"] = int(values["autoencoder/conv2/kernel"].shape[-1])
    if is_delg:
        embedding = values.get("backbone/embedding_layer/kernel")
        if embedding is None:
            raise ValueError("DELG weights (cosine_weights) without backbone/embedding_layer")
        config["embedding_layer_dim"] = int(embedding.shape[-1])
        if "scale_factor" in values:
            config["scale_factor_init"] = float(values["scale_factor"])
    elif "backbone/embedding_layer/kernel" in values:
        config["embedding_layer"] = True
        config["embedding_layer_dim"] = int(values["backbone/embedding_layer/kernel"].shape[-1])
    num_classes = None
    head = values.get("attn_classification/kernel")
    if head is not None:
        num_classes = int(head.shape[-1])
    return ("Delg" if is_delg else "Delf"), config, num_classes


@dataclasses.dataclass
class ImportReport:
    """What ImportOriginalWeights did.

    assigned: delf_tf keys given a value; unmatched_source: the original's keys no model
    variable took (with why); missing: model keys the source lacks (kept at their
    initial values); skipped: source entries that are not model weights.
    """

    model_class: str
    config: dict
    num_classes: int | None
    assigned: list[str]
    unmatched_source: list[str]
    missing: list[str]
    skipped: list[str]

    def summary(self) -> str:
        lines = [f"{self.model_class}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"
                 f", num_classes={self.num_classes}",
                 f"assigned {len(self.assigned)} variables; {len(self.unmatched_source)} "
                 f"source variables unmatched; {len(self.missing)} model variables missing "
                 f"from the source; {len(self.skipped)} non-model entries skipped"]
        lines += [f"  unmatched source: {k}" for k in self.unmatched_source]
        lines += [f"  missing (initial value kept): {k}" for k in self.missing]
        return "\n".join(lines)


# Model variables a source may lack without making the model unusable: the DELG scale (the
# original creates it only with the classifiers; it is a constant of the constructor).
_OPTIONAL = {"scale_factor"}


def _match_variables(targets, values):
    """([(variable, value)] to assign, [shape problems], [assigned model keys])."""
    assignments, problems, assigned = [], [], []
    for key, variable in targets.items():
        name = original_key(key)
        if name not in values:
            continue
        value = values[name]
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(f"{name}: source shape {value.shape} != model shape "
                            f"{tuple(variable.shape)} ({key})")
            continue
        assignments.append((variable, value))
        assigned.append(key)
    return assignments, problems, assigned


def _unmatched_weights(values, taken, include_classifiers: bool) -> list[str]:
    """A line per source weight that no model variable took, saying why."""
    unmatched = []
    for name in sorted(values):
        if name in taken:
            continue
        why = ("training head left out (include_classifiers=False)"
               if not include_classifiers and name.split("/")[0] in (
                   "attn_classification", "desc_classification", "cosine_weights",
                   "scale_factor")
               else "no such variable in the delf_tf model")
        unmatched.append(f"{name} {list(values[name].shape)}: {why}")
    return unmatched


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    """How import_original_weights builds the model and what it accepts (the flags of
    tools/import_original_weights.py).

    Attributes:
      block3_strides: The original model's --block3_strides (not recorded in its weights).
      include_classifiers: Import the training heads (attention classifier, desc classifier or
        cosine weights) when the source has them.
      allow_missing: Write the checkpoint even if the source lacks some model variables (they
        keep their initial values).
    """
    block3_strides: bool = True
    include_classifiers: bool = True
    allow_missing: bool = False


def ImportOriginalWeights(source: str, output_prefix: str | None = None,
                          **options) -> tuple[Delf, ImportReport]:
    """import_original_weights with ImportOptions(**options) (its fields by keyword)."""
    return import_original_weights(source, output_prefix, ImportOptions(**options))


def import_original_weights(source: str, output_prefix: str | None = None,
                            options: ImportOptions = ImportOptions()
                            ) -> tuple[Delf, ImportReport]:
    """Builds the delf_tf model of an original checkpoint / SavedModel and assigns its weights.

    Args:
      source: checkpoint prefix (delf_weights, ckpt-N), checkpoint directory or SavedModel.
      output_prefix: if given, the model is written there with `save_weights` (checkpoint +
        JSON sidecar), ready for `load_model`, the export tools and fine-tuning.
      options: the architecture the weights do not show, and what is imported or accepted.

    Returns:
      (model, report). Raises ValueError on a shape mismatch or, unless allow_missing,
      missing weights; nothing is written then.
    """
    block3_strides, include_classifiers = options.block3_strides, options.include_classifiers
    weights = ReadOriginalWeights(source)
    class_name, config, num_classes = InferArchitecture(weights.values, block3_strides)
    if not include_classifiers:
        num_classes = None
    model = registry.create_model(class_name, num_classes, **config)
    model.build_for_input(64)
    targets = model_variables_by_key(model)
    assignments, problems, assigned = _match_variables(targets, weights.values)
    unmatched = _unmatched_weights(weights.values, {original_key(k) for k in assigned},
                                   include_classifiers)
    missing = sorted(k for k in targets if k not in assigned)
    report = ImportReport(class_name, config, num_classes, assigned, unmatched, missing,
                          weights.skipped)
    fatal_missing = [k for k in missing if k not in _OPTIONAL]
    if problems or (fatal_missing and not options.allow_missing):
        details = problems + [f"missing from the source: {original_key(k)}"
                              for k in fatal_missing]
        raise ValueError(f"Cannot import {source}:\n  " + "\n  ".join(details[:50])
                         + ("\n  ..." if len(details) > 50 else ""))
    for variable, value in assignments:
        variable.assign(value)
    if output_prefix is not None:
        model_checkpoint.save_weights(model, output_prefix)
    logger.info("Imported %s: %s", source, report.summary().splitlines()[1])
    return model, report
