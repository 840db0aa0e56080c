"""`MakeExtractor`: a SavedModel + DelfConfig -> a function image -> features.

Any SavedModel whose `serving_default` signature follows the original's (see
extraction/export.py) works: ours, or one exported by the original's TF2 exporters. The
DelfConfig supplies the image size rules, scales, max features, attention threshold, global
scale indices and PCA/whitening; binarisation (DELG*) is optional.
"""

import logging
import os
import weakref
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from delf_tf import config as config_lib
from delf_tf import utils
from delf_tf.extraction import feature_extractor, postprocess
from delf_tf.local_features import LocalFeatures
from delf_tf.protos import delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "MakeExtractor",
    # delf_tf's own API.
    "MIN_IMAGE_SIDE", "Features", "ExtractorFn", "as_rgb_array",
]

logger = logging.getLogger(__name__)

# Smaller images (after resizing, on either side) yield empty features.
MIN_IMAGE_SIDE = 10

Features = dict[str, object]
ExtractorFn = Callable[..., Features]


def as_rgb_array(image) -> np.ndarray:
    """A PIL image or array [H,W], [H,W,1], [H,W,3], [H,W,4] -> uint8 [H, W, 3]."""
    if hasattr(image, "convert"):  # PIL image of any mode
        image = image.convert("RGB")
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be [H, W] or [H, W, 1|3|4], got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]  # as PIL's RGBA->RGB: alpha is dropped
    if image.dtype != np.uint8:
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image


# Loaded SavedModels by (path, modification time), alive while some extractor
# uses them: extractors made from one export share it instead of loading and
# optimising the graph again.
_LOADED: "weakref.WeakValueDictionary[tuple, object]" = weakref.WeakValueDictionary()

# A TF1 SavedModel (the original's DELF and delg_gld_20200520 exports) has no
# TF2 signature functions; its graph tensors carry the signature names.
_TF1_INPUTS = ("input_image", "input_scales", "input_abs_thres", "input_max_feature_num",
               "input_global_scales_ind")
_TF1_OUTPUTS = ("boxes", "features", "scales", "scores", "global_descriptors")


class _ServingFunction:
    """`serving_default` of a SavedModel: call(**inputs) -> {output name: tensor}.

    Attributes:
      inputs: names it accepts; outputs: output name -> static last dimension (0
      if unknown).
    """

    def __init__(self, call, inputs, outputs):
        self._call, self.inputs, self.outputs = call, set(inputs), dict(outputs)

    def __call__(self, **inputs):
        return self._call(**inputs)

    @classmethod
    def from_signature(cls, signature) -> "_ServingFunction":
        outputs = {}
        for name, spec in signature.structured_outputs.items():
            rank = spec.shape.rank
            outputs[name] = (spec.shape[-1] or 0) if rank else 0
        return cls(signature, signature.structured_input_signature[1], outputs)

    @classmethod
    def from_tf1_graph(cls, model, config: delf_config_pb2.DelfConfig) -> "_ServingFunction":
        inputs = ["input_image", "input_scales"]
        outputs = []
        if config.use_local_features:
            inputs += ["input_abs_thres", "input_max_feature_num"]
            outputs += ["boxes", "features", "scales", "scores"]
        if config.use_global_features:
            inputs.append("input_global_scales_ind")
            outputs.append("global_descriptors")
        pruned = model.prune(feeds=[name + ":0" for name in inputs],
                             fetches=[name + ":0" for name in outputs])

        def call(**feed):
            return dict(zip(outputs, pruned(*[feed[name] for name in inputs])))

        return cls(call, inputs, dict.fromkeys(outputs, 0))


def _load_serving_function(config: delf_config_pb2.DelfConfig):
    """(loaded model, _ServingFunction) for config.model_path."""
    model_path = config.model_path
    if not model_path:
        raise ValueError("DelfConfig.model_path is empty")
    if not os.path.isdir(model_path):
        raise FileNotFoundError(f"No SavedModel directory at model_path {model_path!r}")
    graph_file = os.path.join(model_path, "saved_model.pb")
    key = (os.path.realpath(model_path),
           os.stat(graph_file).st_mtime_ns if os.path.isfile(graph_file) else None)
    model = _LOADED.get(key)
    if model is None:
        try:
            model = tf.saved_model.load(model_path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise ValueError(f"Cannot load SavedModel {model_path}: {e}") from e
        _LOADED[key] = model
    if "serving_default" in model.signatures and not hasattr(model, "prune"):
        return model, _ServingFunction.from_signature(model.signatures["serving_default"])
    if hasattr(model, "prune"):
        try:
            return model, _ServingFunction.from_tf1_graph(model, config)
        except (KeyError, ValueError) as e:
            raise ValueError(f"TF1 SavedModel {model_path} lacks the tensors the config needs "
                             f"({_TF1_INPUTS} -> {_TF1_OUTPUTS}): {e}") from e
    raise ValueError(f"SavedModel {model_path} has no serving_default signature "
                     f"(has {sorted(model.signatures)})")


def _check_serving_function(serving: _ServingFunction, config: delf_config_pb2.DelfConfig,
                            model_path: str) -> None:
    needed_in, needed_out = {"input_image"}, set()
    if config.use_local_features:
        needed_in |= {"input_scales", "input_max_feature_num", "input_abs_thres"}
        needed_out |= {"boxes", "features", "scores"}
    if config.use_global_features:
        needed_in.add("input_global_scales_ind")
        if not set(serving.outputs) & {"global_descriptors", "global_descriptor"}:
            needed_out.add("global_descriptors")
    missing = sorted((needed_in - serving.inputs) | (needed_out - set(serving.outputs)))
    if missing:
        raise ValueError(
            f"SavedModel {model_path} serving_default lacks {missing} needed by the config "
            f"(use_local_features={config.use_local_features}, use_global_features="
            f"{config.use_global_features}); it has inputs {sorted(serving.inputs)}, outputs "
            f"{sorted(serving.outputs)}")


def MakeExtractor(config: delf_config_pb2.DelfConfig,
                  binarize_local_descriptors: bool = False) -> ExtractorFn:
    """Loads config.model_path and returns `extract(image, resize_factor=1.0)`.

    `extract` takes uint8 [H, W, 3] (or a PIL image, grayscale or RGBA array) and
    returns {'global_descriptor': float32 [Dg] (with use_global_features),
    'local_features': LocalFeatures (with use_local_features: locations float32
    [N, 2] (y, x), descriptors float32 [N, D] (uint8 [N, D/8] when binarized),
    scales, attention float32 [N]; also readable as the original's dictionary,
    `['locations']` etc.)}. Locations are in the
    input image's pixels unless use_resized_coordinates. `resize_factor` scales
    the config's size limits (cropped queries).
    """
    if not (config.use_local_features or config.use_global_features):
        raise ValueError("DelfConfig enables neither use_local_features nor use_global_features")
    config_lib.ValidateDelfConfig(config)
    model, serving = _load_serving_function(config)
    _check_serving_function(serving, config, config.model_path)
    _warn_if_iou_ignored(config)
    local_pca, global_pca = _load_pca(config)
    feed_values = _feed_values(config, serving.inputs)
    local_dim, global_dim = _output_dims(serving, local_pca, global_pca,
                                         binarize_local_descriptors)

    def extract(image, resize_factor: float = 1.0) -> Features:
        resized, scale_factors = utils.ResizeImage(as_rgb_array(image), config, resize_factor)
        if min(resized.shape[:2]) < MIN_IMAGE_SIDE:
            return _empty_features(config, local_dim, global_dim, binarize_local_descriptors)
        feed = {name: value for name, value in feed_values.items() if name in serving.inputs}
        outputs = serving(input_image=tf.constant(resized), **feed)
        features: Features = {}
        if config.use_global_features:
            features["global_descriptor"] = _global_descriptor(
                outputs, config.delf_global_config, global_pca)
        if config.use_local_features:
            features["local_features"] = _local_features(
                outputs, config.delf_local_config, local_pca, scale_factors,
                binarize_local_descriptors)
        return features

    # Keeps the loaded model (and so the signature's variables) alive.
    extract.model = model
    return extract


def _warn_if_iou_ignored(config: delf_config_pb2.DelfConfig) -> None:
    iou_threshold = config.delf_local_config.iou_threshold
    if config.use_local_features and iou_threshold < 1.0:
        # The serving signature has no IoU input: NMS is fixed when exporting.
        logger.warning("delf_local_config.iou_threshold=%g is not applied: the NMS IoU is "
                       "fixed at export time (the export tools' --iou_threshold)",
                       iou_threshold)


def _load_pca(config: delf_config_pb2.DelfConfig):
    """(local, global) PcaParameters, each None unless that branch uses PCA."""
    local_config, global_config = config.delf_local_config, config.delf_global_config
    local_pca = (postprocess.LoadPcaParameters(local_config.pca_parameters)
                 if config.use_local_features and local_config.use_pca else None)
    global_pca = (postprocess.LoadPcaParameters(global_config.pca_parameters)
                  if config.use_global_features and global_config.use_pca else None)
    return local_pca, global_pca


def _feed_values(config: delf_config_pb2.DelfConfig, accepted) -> dict[str, tf.Tensor]:
    """The serving inputs besides the image, from the config (checked)."""
    if not config.image_scales and "input_scales" in accepted:
        raise ValueError("DelfConfig.image_scales is empty")
    scales_ind = (list(config.delf_global_config.image_scales_ind)
                  or list(range(len(config.image_scales))))
    for index in scales_ind:
        if not 0 <= index < max(len(config.image_scales), 1):
            raise ValueError(f"delf_global_config.image_scales_ind {index} is out of range "
                             f"for {len(config.image_scales)} image_scales")
    local_config = config.delf_local_config
    return {
            "input_scales": tf.constant(list(config.image_scales), tf.float32),
            "input_max_feature_num": tf.constant(local_config.max_feature_num, tf.int32),
            "input_abs_thres": tf.constant(local_config.score_threshold, tf.float32),
            "input_global_scales_ind": tf.constant(scales_ind, tf.int32),
    }


def _output_dims(serving, local_pca, global_pca, binarize: bool) -> tuple[int, int]:
    """(local descriptor width, global descriptor width) of the extractor's outputs."""
    local_dim = local_pca.output_dim if local_pca else serving.outputs.get("features", 0)
    if binarize:
        local_dim = (local_dim + 7) // 8
    global_dim = global_pca.output_dim if global_pca else max(
            serving.outputs.get("global_descriptors", 0),
            serving.outputs.get("global_descriptor", 0))
    return local_dim, global_dim


def _empty_features(config, local_dim: int, global_dim: int, binarize: bool) -> Features:
    """The outputs for an image too small to extract anything from."""
    features: Features = {}
    if config.use_global_features:
        features["global_descriptor"] = np.zeros([global_dim], np.float32)
    if config.use_local_features:
        features["local_features"] = LocalFeatures.empty(
                local_dim, np.uint8 if binarize else np.float32)
    return features


def _global_descriptor(outputs, global_config, global_pca) -> np.ndarray:
    """Per-scale descriptors post-processed, summed and L2-normalised: float32 [Dg]."""
    if "global_descriptors" in outputs:
        per_scale = np.reshape(outputs["global_descriptors"].numpy(),
                               [-1, outputs["global_descriptors"].shape[-1]])
    else:
        per_scale = outputs["global_descriptor"].numpy().reshape(1, -1)
    per_scale = feature_extractor.PostProcessDescriptors(
            per_scale, global_config.use_pca, global_pca)
    return postprocess.l2_normalize(per_scale.sum(axis=0))


def _local_features(outputs, local_config, local_pca, scale_factors,
                    binarize: bool) -> LocalFeatures:
    """The selected features (orientations zero)."""
    boxes = outputs["boxes"].numpy()
    raw_descriptors = outputs["features"].numpy()
    locations, descriptors = feature_extractor.DelfFeaturePostProcessing(
            boxes, raw_descriptors.reshape(len(boxes), raw_descriptors.shape[-1]),
            local_config.use_pca, local_pca)
    if not local_config.use_resized_coordinates:
        locations = locations / scale_factors
    if binarize:
        descriptors = postprocess.binarize(descriptors)
    scales = (outputs["scales"].numpy() if "scales" in outputs
              else np.ones([len(boxes)], np.float32))
    return LocalFeatures(
            locations=locations.astype(np.float32),
            scales=scales.reshape(-1).astype(np.float32),
            descriptors=descriptors,
            attention=outputs["scores"].numpy().reshape(-1).astype(np.float32),
            orientations=np.zeros([len(locations)], np.float32))
