"""SavedModel export of DELF / DELG models with the extraction algorithm in-graph.

Three tf.Module wrappers, one per model kind, each with a `serving_default`
signature named exactly as the original's exporters name it:

  local (DELF):        input_image uint8[None,None,3], input_scales float32[None],
                       input_max_feature_num int32[], input_abs_thres float32[]
                       -> boxes [N,4], features [N,C], scales [N], scores [N,1]
  global:              input_image, input_scales (unless fixed at export),
                       input_global_scales_ind int32[None]
                       -> global_descriptors [G,Dg] (or pooled global_descriptor [Dg])
  local+global (DELG): the four local inputs + input_global_scales_ind
                       -> the four local outputs + global_descriptors [G,Dg]
"""

import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import tensorflow as tf

from delf_tf import checks
from delf_tf.extraction import feature_extractor, pyramid
from delf_tf.models import resnet

__all__ = [
    # The original's names (the compatibility surface).
    "ExportLocalModel", "ExportGlobalModel", "ExportLocalAndGlobalModel",
    # delf_tf's own API.
    "POOL_TYPES", "model_block3_strides", "attach_model", "LocalFeatureModule",
    "LocalAndGlobalFeatureModule", "GlobalFeatureModule", "SAVED_MODEL_ENTRIES",
    "ExportPathError", "check_export_path", "save_module", "ARCHITECTURE_FLAGS",
    "load_model_for_export",
]

POOL_TYPES = ("none", "average", "sum")

_IMAGE = tf.TensorSpec([None, None, 3], tf.uint8, name="input_image")
_SCALES = tf.TensorSpec([None], tf.float32, name="input_scales")
_MAX_FEATURE_NUM = tf.TensorSpec([], tf.int32, name="input_max_feature_num")
_ABS_THRES = tf.TensorSpec([], tf.float32, name="input_abs_thres")
_GLOBAL_SCALES_IND = tf.TensorSpec([None], tf.int32, name="input_global_scales_ind")


def model_block3_strides(model) -> bool:
    """Whether the model's block3 has stride 32 (True) or 16 (False)."""
    for owner in (model, getattr(model, "backbone", None)):
        value = getattr(owner, "block3_strides", None)
        if value is not None:
            return bool(value)
    raise ValueError(f"cannot tell block3_strides of {type(model).__name__}; "
                     "pass the geometry explicitly")


def _backing_variables(model) -> list[tf.Variable]:
    """The tf.Variables behind the model's Keras variables, in `model.variables` order.

    A Keras 3 variable wraps a tf.Variable, and the traced functions capture the wrapped
    variable's handle. Saving the Keras variables makes SavedModel create a second copy of
    each one: the object graph and the TF1 restore op then cover only the copies, and the
    handles the graph reads are never restored by a session loader (TF Serving,
    saved_model_cli run). Tracking the wrapped variables themselves gives one variable per
    weight, restored by both the TF1 and the TF2 loaders.
    """
    variables = []
    for variable in model.variables:
        inner = getattr(variable, "_value", variable)
        if not isinstance(inner, tf.Variable):
            raise TypeError(f"variable {variable.path} of {type(model).__name__} is not "
                            f"backed by a tf.Variable ({type(inner).__name__})")
        variables.append(inner)
    return variables


def attach_model(module: tf.Module, model, name: str = "model") -> None:
    """Sets `module.<name> = model` for a SavedModel that every loader can run.

    The model itself stays out of the module's object graph; the tf.Variables behind its
    Keras variables are tracked instead (as `<name>_variables`, see `_backing_variables`).
    Use it in every tf.Module exported with `save_module` in place of a plain attribute.
    """
    object.__setattr__(module, name, model)
    setattr(module, f"{name}_variables", _backing_variables(model))


def _feature_geometry(model) -> resnet.FeatureGeometry:
    """Where the model's feature-map cells sit: the model's own `feature_geometry` (its
    backbone's block3), or for a model that cannot tell, the original's ResNet-50 block3
    constants (field 291, padding 145) at the model's block3 stride."""
    geometry = getattr(model, "feature_geometry", None)
    if geometry is not None:
        return geometry
    return resnet.FeatureGeometry(feature_extractor.feature_stride(model_block3_strides(model)),
                                  feature_extractor.RECEPTIVE_FIELD)


class _ExtractionModule(tf.Module):
    """Holds the model and the pyramid settings shared by the three kinds."""

    def __init__(self, model, *, geometry: resnet.FeatureGeometry | None = None,
                 iou_threshold: float = 1.0, name: str | None = None):
        super().__init__(name=name)
        checks.in_range("iou_threshold", iou_threshold, 0.0, 1.0, low_inclusive=False)
        attach_model(self, model)
        self._geometry = geometry or _feature_geometry(model)
        self._iou_threshold = float(iou_threshold)
        # One small real call: builds every variable and tells the global width.
        global_descriptor, _, local_features = self._model_fn(
                tf.zeros([1, 64, 64, 3], tf.float32))
        self._global_dim = int(global_descriptor.shape[-1])
        self._local_dim = int(local_features.shape[-1])
        # Scales that resize the image below this are skipped inside the graph.
        self._min_input_size = int(getattr(model, "min_input_size", 1))

    def _model_fn(self, images):
        return self.model.build_call(images, training=False)

    def _extract(self, image, scales, *, use_local, use_global, abs_thres=0.0,
                 max_feature_num=0, global_scales_ind=None):
        return pyramid.extract_features(
                image, scales, self._model_fn, stride=self._geometry.stride, abs_thres=abs_thres,
                max_feature_num=max_feature_num, global_scales_ind=global_scales_ind,
                use_local=use_local, use_global=use_global,
                iou_threshold=self._iou_threshold, global_dim=self._global_dim,
                local_dim=self._local_dim, min_input_size=self._min_input_size,
                receptive_field=self._geometry.receptive_field,
                padding=self._geometry.padding)


class LocalFeatureModule(_ExtractionModule):
    """DELF: local features only."""

    @tf.function(input_signature=[_IMAGE, _SCALES, _MAX_FEATURE_NUM, _ABS_THRES])
    def ExtractFeatures(self, input_image, input_scales, input_max_feature_num,
                        input_abs_thres):
        return self._extract(input_image, input_scales, use_local=True, use_global=False,
                             abs_thres=input_abs_thres, max_feature_num=input_max_feature_num)


class LocalAndGlobalFeatureModule(_ExtractionModule):
    """DELG: local features and raw per-scale global descriptors."""

    @tf.function(input_signature=[_IMAGE, _SCALES, _MAX_FEATURE_NUM, _ABS_THRES,
                                  _GLOBAL_SCALES_IND])
    def ExtractFeatures(self, input_image, input_scales, input_max_feature_num,
                        input_abs_thres, input_global_scales_ind):
        return self._extract(input_image, input_scales, use_local=True, use_global=True,
                             abs_thres=input_abs_thres, max_feature_num=input_max_feature_num,
                             global_scales_ind=input_global_scales_ind)


class GlobalFeatureModule(_ExtractionModule):
    """Global descriptors only, optionally pooled over scales and L2-normalised.

    With `input_scales_list` the scales are fixed in the graph and the signature
    has no input_scales (as the original's --input_scales_list).
    """

    def __init__(self, model, *, input_scales_list: Sequence[float] | None = None,
                 multi_scale_pool_type: str = "none",
                 normalize_global_descriptor: bool = False,
                 name: str | None = None):
        super().__init__(model, name=name)
        pool_type = multi_scale_pool_type.lower()
        if pool_type not in POOL_TYPES:
            raise ValueError(
                f"multi_scale_pool_type must be one of {POOL_TYPES}, got {multi_scale_pool_type!r}")
        self._pool_type = pool_type
        self._normalize = bool(normalize_global_descriptor)
        if input_scales_list is None:
            self.ExtractFeatures = tf.function(
                    self._extract_with_scales,
                    input_signature=[_IMAGE, _SCALES, _GLOBAL_SCALES_IND])
        else:
            checks.positive_list("input_scales_list", input_scales_list)
            self._fixed_scales = tf.constant(list(input_scales_list), tf.float32)
            self.ExtractFeatures = tf.function(
                    self._extract_fixed_scales, input_signature=[_IMAGE, _GLOBAL_SCALES_IND])

    def _extract_with_scales(self, input_image, input_scales, input_global_scales_ind):
        return self._global(input_image, input_scales, input_global_scales_ind)

    def _extract_fixed_scales(self, input_image, input_global_scales_ind):
        return self._global(input_image, self._fixed_scales, input_global_scales_ind)

    def _global(self, image, scales, global_scales_ind):
        descriptors = self._extract(image, scales, use_local=False, use_global=True,
                                    global_scales_ind=global_scales_ind)["global_descriptors"]
        if self._pool_type == "none":
            if self._normalize:
                descriptors = tf.math.l2_normalize(descriptors, axis=1)
            return {"global_descriptors": descriptors}
        pooled = (tf.reduce_mean(descriptors, axis=0) if self._pool_type == "average"
                  else tf.reduce_sum(descriptors, axis=0))
        if self._normalize:
            pooled = tf.math.l2_normalize(pooled, axis=0)
        return {"global_descriptor": pooled}


# Top-level entries tf.saved_model.save writes; --overwrite replaces nothing else.
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "saved_model.pbtxt", "fingerprint.pb",
                                 "variables", "assets", "assets.extra"})


class ExportPathError(ValueError):
    """The export path exists and may not (or cannot safely) be replaced."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _exchange_directories(a: str, b: str) -> bool:
    """Atomically swaps two directories (Linux renameat2 RENAME_EXCHANGE); False if the
    platform or file system does not support it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def check_export_path(export_path: str, overwrite: bool = False) -> None:
    """Raises ExportPathError unless a SavedModel may be written to `export_path`.

    A missing or empty directory is always fine. An existing non-empty one needs
    `overwrite`, and then may hold only what an export writes (saved_model.pb,
    fingerprint.pb, variables/, assets/): other files are never deleted.
    """
    export_path = os.fspath(export_path)
    if not os.path.lexists(export_path):
        return
    if not os.path.isdir(export_path) or os.path.islink(export_path):
        raise ExportPathError(f"export path {export_path} exists and is not a directory")
    entries = sorted(os.listdir(export_path))
    if not entries:
        return
    if not overwrite:
        raise ExportPathError(f"export path {export_path} already exists and is not empty "
                              f"({len(entries)} entries); pass --overwrite to replace an "
                              "earlier export there")
    foreign = [e for e in entries if e not in SAVED_MODEL_ENTRIES]
    if foreign:
        raise ExportPathError(
                f"export path {export_path} holds files an export does not write "
                f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); not "
                "replacing it, so they are not deleted. Choose another --export_path or "
                "move them away")


def save_module(module: _ExtractionModule, export_path: str, overwrite: bool = False) -> None:
    """Saves `module` with its ExtractFeatures as `serving_default`.

    An existing non-empty `export_path` is refused unless `overwrite` (and even then
    only an earlier export is replaced, see `check_export_path`). The SavedModel is
    written to a temporary directory beside `export_path` and swapped into place
    (atomically where the OS allows), so an interrupted export never leaves a partial
    SavedModel and never loses the previous one. Directories get the user's umask.
    """
    export_path = os.path.abspath(os.fspath(export_path))
    check_export_path(export_path, overwrite)
    parent = os.path.dirname(export_path)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(export_path) + ".")
    try:
        os.chmod(tmp_dir, 0o777 & ~_current_umask())  # mkdtemp makes it 0700
        tf.saved_model.save(module, tmp_dir,
                            signatures={"serving_default": module.ExtractFeatures})
        if not os.path.isdir(export_path):
            os.rename(tmp_dir, export_path)
            return
        # Re-checked: the directory may have changed while the model was being saved.
        check_export_path(export_path, overwrite)
        if not os.listdir(export_path):
            os.rmdir(export_path)
            os.rename(tmp_dir, export_path)
        elif _exchange_directories(tmp_dir, export_path):
            pass  # tmp_dir now holds the previous export, removed below
        else:
            # Two renames: a crash between them leaves the previous export at old_dir.
            old_dir = tmp_dir + ".previous"
            os.rename(export_path, old_dir)
            os.rename(tmp_dir, export_path)
            tmp_dir = old_dir
        shutil.rmtree(tmp_dir, ignore_errors=True)
    except BaseException:
        if os.path.isdir(tmp_dir) and tmp_dir != export_path:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


# The original exporters' architecture flags -> Delf/Delg constructor kwargs.
ARCHITECTURE_FLAGS = {
        "backbone": "backbone",
        "block3_strides": "block3_strides",
        "use_autoencoder": "use_dim_reduction",
        "autoencoder_dimensions": "reduced_dimension",
        "local_feature_map_channels": "dim_expand_channels",
}


def load_model_for_export(ckpt_path: str, default_class: str,
                          architecture: Mapping[str, Any] | None = None,
                          explicit: Collection[str] | None = None):
    """Builds the model of checkpoint prefix `ckpt_path` and restores its weights.

    The JSON sidecar written next to the weights (`<ckpt_path>.json`) describes
    the model; entries of `architecture` (keyed by ARCHITECTURE_FLAGS names)
    override it only when named in `explicit` (None: all). Without a sidecar the
    model is `default_class` ("Delf" or "Delg") built from `architecture`.
    """
    # Imported here: the export modules themselves need no training-side code.
    from delf_tf import models
    from delf_tf.models import registry

    architecture = dict(architecture or {})
    for name in ("autoencoder_dimensions", "local_feature_map_channels"):
        if name in architecture:
            checks.positive(name, architecture[name])
    unknown = set(architecture) - set(ARCHITECTURE_FLAGS)
    if unknown:
        raise ValueError(f"unknown architecture options {sorted(unknown)}; "
                         f"expected {sorted(ARCHITECTURE_FLAGS)}")
    if explicit is None:
        explicit = architecture.keys()
    if os.path.isfile(ckpt_path + ".json"):
        overrides = {ARCHITECTURE_FLAGS[k]: v for k, v in architecture.items() if k in explicit}
        return models.load_model(ckpt_path, num_classes=None, **overrides)
    if not os.path.isfile(ckpt_path + ".index"):
        raise FileNotFoundError(
                f"No checkpoint at --ckpt_path={ckpt_path} (expected {ckpt_path}.index, the "
                "<logdir>/delf_weights prefix written by training)")
    model = registry.create_model(
        default_class, **{ARCHITECTURE_FLAGS[k]: v for k, v in architecture.items()})
    model.build_for_input()
    models.restore_weights(model, ckpt_path)
    return model


def _export_local_features(module_class: type, default_class: str, ckpt_path: str,
                           export_path: str, architecture: Mapping[str, Any] | None,
                           explicit: Collection[str] | None, iou_threshold: float,
                           overwrite: bool) -> None:
    """The DELF and DELG exports: checkpoint -> `module_class(model, iou_threshold)` saved
    at `export_path` (`default_class` is the model class of a checkpoint without sidecar)."""
    check_export_path(export_path, overwrite)
    checks.in_range("iou_threshold", iou_threshold, 0.0, 1.0, low_inclusive=False)
    model = load_model_for_export(ckpt_path, default_class, architecture, explicit)
    save_module(module_class(model, iou_threshold=iou_threshold), export_path, overwrite)


def ExportLocalModel(ckpt_path: str, export_path: str, *,
                     architecture: Mapping[str, Any] | None = None,
                     explicit: Collection[str] | None = None,
                     iou_threshold: float = 1.0, overwrite: bool = False) -> None:
    """Checkpoint prefix -> DELF (local features) SavedModel at `export_path`."""
    _export_local_features(LocalFeatureModule, "Delf", ckpt_path, export_path, architecture,
                           explicit, iou_threshold, overwrite)


def ExportGlobalModel(ckpt_path: str, export_path: str, *,
                      architecture: Mapping[str, Any] | None = None,
                      explicit: Collection[str] | None = None,
                      input_scales_list: Sequence[float] | None = None,
                      multi_scale_pool_type: str = "none",
                      normalize_global_descriptor: bool = False,
                      overwrite: bool = False) -> None:
    """Checkpoint prefix -> global-descriptor SavedModel at `export_path`."""
    check_export_path(export_path, overwrite)
    if input_scales_list is not None:
        checks.positive_list("input_scales_list", input_scales_list)
    model = load_model_for_export(ckpt_path, "Delg", architecture, explicit)
    save_module(GlobalFeatureModule(model, input_scales_list=input_scales_list,
                                    multi_scale_pool_type=multi_scale_pool_type,
                                    normalize_global_descriptor=normalize_global_descriptor),
                export_path, overwrite)


def ExportLocalAndGlobalModel(ckpt_path: str, export_path: str, *,
                              architecture: Mapping[str, Any] | None = None,
                              explicit: Collection[str] | None = None,
                              iou_threshold: float = 1.0, overwrite: bool = False) -> None:
    """Checkpoint prefix -> DELG (local + global) SavedModel at `export_path`."""
    _export_local_features(LocalAndGlobalFeatureModule, "Delg", ckpt_path, export_path,
                           architecture, explicit, iou_threshold, overwrite)
