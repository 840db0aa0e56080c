"""ImageNet initialisation of the ResNet backbone from a local Keras HDF5 weights file.

Reads the classic Keras HDF5 layout (root attribute `layer_names`; per layer group attribute
`weight_names`, e.g. "res2a_branch2a/kernel:0") with either the original layer names
(conv1, bn_conv1, res2a_branch2a, bn2a_branch2a, ...) or the keras.applications names
(conv1_conv, conv1_bn, conv2_block1_1_conv, conv2_block1_1_bn, ...). Every layer, stem included,
must be matched, so no layer silently stays random.
"""

import os
import re

import h5py
import numpy as np
import tensorflow as tf

from delf_tf.models import resnet

__all__ = [
    "applications_name", "original_name", "read_classic_h5", "load_imagenet_weights",
    "save_classic_h5",
]

_BRANCH_TO_INDEX = {"branch2a": "1", "branch2b": "2", "branch2c": "3", "branch1": "0"}
_ORIGINAL_NAME = re.compile(r"^(res|bn)(\d)([a-z])_(branch2a|branch2b|branch2c|branch1)$")
_APPLICATIONS_NAME = re.compile(r"^conv(\d)_block(\d+)_(\d)_(conv|bn)$")
_INDEX_TO_BRANCH = {v: k for k, v in _BRANCH_TO_INDEX.items()}
# The stem's layers, original name -> keras.applications name.
_STEM_TO_APPLICATIONS = {"conv1": "conv1_conv", "bn_conv1": "conv1_bn"}
_STEM_TO_ORIGINAL = {v: k for k, v in _STEM_TO_APPLICATIONS.items()}


def applications_name(original: str) -> str:
    """Original layer name -> keras.applications name (res3b_branch2c -> conv3_block2_3_conv)."""
    if original in _STEM_TO_APPLICATIONS:
        return _STEM_TO_APPLICATIONS[original]
    match = _ORIGINAL_NAME.match(original)
    if match is None:
        raise ValueError(f"Not a ResNet layer name: {original!r}")
    kind, stage, letter, branch = match.groups()
    block = ord(letter) - ord("a") + 1
    suffix = "conv" if kind == "res" else "bn"
    return f"conv{stage}_block{block}_{_BRANCH_TO_INDEX[branch]}_{suffix}"


def original_name(name: str) -> str:
    """Either naming -> the original name (conv3_block2_3_conv -> res3b_branch2c)."""
    if name in _STEM_TO_ORIGINAL:
        return _STEM_TO_ORIGINAL[name]
    match = _APPLICATIONS_NAME.match(name)
    if match is None:
        return name
    stage, block, index, kind = match.groups()
    letter = resnet.block_letter(int(block) - 1)
    return f"{'res' if kind == 'conv' else 'bn'}{stage}{letter}_{_INDEX_TO_BRANCH[index]}"


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _variable_key(weight_name: str) -> str:
    """'res2a_branch2a/kernel:0' -> 'kernel'; also accepts 'moving_mean' etc. without a path."""
    return weight_name.split("/")[-1].split(":")[0]


def read_classic_h5(h5_path: str) -> dict[str, dict[str, np.ndarray]]:
    """Reads a classic-layout Keras HDF5 weights file -> {original layer name: {var: array}}.

    Layers without weights (activations, pooling) are skipped. Also accepts full-model files
    whose weights sit under a `model_weights` group.
    """
    if not os.path.isfile(h5_path):
        raise FileNotFoundError(f"No ImageNet weights file {h5_path}")
    layers: dict[str, dict[str, np.ndarray]] = {}
    try:
        f = h5py.File(h5_path, "r")
    except OSError as e:  # h5py's message names no file
        raise ValueError(f"{h5_path}: not an HDF5 weights file ({e})") from None
    with f:
        root = f.get("model_weights", f)
        if "layer_names" not in root.attrs:
            raise ValueError(f"{h5_path}: not a classic Keras HDF5 weights file "
                             "(no 'layer_names' attribute)")
        for layer_name in map(_decode, root.attrs["layer_names"]):
            group = root[layer_name]
            weight_names = [_decode(w) for w in group.attrs.get("weight_names", [])]
            if not weight_names:
                continue
            layers[original_name(layer_name)] = {
                    _variable_key(w): np.asarray(group[w]) for w in weight_names}
    return layers


def load_imagenet_weights(backbone: resnet.ResNet, h5_path: str,
                          image_size: int = 64) -> None:
    """Assigns every conv/BN layer of `backbone` from `h5_path` (either naming).

    Builds the backbone first if needed. Raises ValueError listing the backbone layers that
    the file does not provide and any shape mismatch; nothing is assigned in that case.
    Layers in the file the backbone lacks (e.g. fc1000) are ignored.
    """
    if not backbone.weights:
        backbone(tf.zeros([1, image_size, image_size, 3], tf.float32))
    file_layers = read_classic_h5(h5_path)
    targets = backbone.named_layers()
    missing = [name for name in targets if name not in file_layers]
    assignments = []
    problems = []
    for name, layer in targets.items():
        if name in missing:
            continue
        values = file_layers[name]
        keys = [_variable_key(variable.name) for variable in layer.weights]
        if not set(keys) <= set(values) and len(values) == len(keys):
            # Files with unusual weight names (e.g. 'conv1_W:0') keep Keras' order:
            # kernel, bias / gamma, beta, moving_mean, moving_variance.
            values = dict(zip(keys, values.values()))
        for variable, key in zip(layer.weights, keys):
            if key not in values:
                problems.append(f"{name}: no '{key}' in file (has {sorted(values)})")
            elif tuple(values[key].shape) != tuple(variable.shape):
                problems.append(f"{name}/{key}: file shape {values[key].shape} != model shape "
                                f"{tuple(variable.shape)}")
            else:
                assignments.append((variable, values[key]))
    if missing or problems:
        lines = []
        if missing:
            lines.append(f"{len(missing)} backbone layers not found in {h5_path}: "
                         + ", ".join(missing))
        lines.extend(problems)
        raise ValueError("ImageNet weight import failed:\n  " + "\n  ".join(lines))
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))


def save_classic_h5(backbone: resnet.ResNet, h5_path: str, naming: str = "original") -> None:
    """Writes the backbone's conv/BN weights in the classic Keras layout.

    naming: "original" (res2a_branch2a, ...) or "applications" (conv2_block1_1_conv, ...).
    """
    if naming not in ("original", "applications"):
        raise ValueError(f"naming must be 'original' or 'applications', got {naming!r}")
    targets = backbone.named_layers()
    if naming == "applications":
        targets = {applications_name(name): layer for name, layer in targets.items()}
    with h5py.File(h5_path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode("utf8") for n in targets])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name, layer in targets.items():
            group = f.create_group(name)
            weight_names = []
            for variable in layer.weights:
                key = _variable_key(variable.name)
                weight_name = f"{name}/{key}:0"
                group.create_dataset(weight_name, data=np.asarray(variable.numpy()))
                weight_names.append(weight_name.encode("utf8"))
            group.attrs["weight_names"] = np.array(weight_names)
