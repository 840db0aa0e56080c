"""ELFM feature extraction from a DELG model: the backbone's last feature map over an image
pyramid, then `descriptor.describe` (top N by L2 norm, k-means, GeM, whitening, bits).

`ElfmModule` is a tf.Module (exportable as a SavedModel) with two functions:
  ExtractFeatures(input_image uint8 [H, W, 3], input_scales float32 [S],
                  input_max_feature_num int32 []) -> boxes float32 [N, 4] (ymin, xmin, ymax,
      xmax, input pixels), features float32 [N, D] (block4 vectors, all scales merged),
      scales float32 [N] (1 / scale), scores float32 [N, 1] (L2 norms), N <= max, by norm;
  Whiten(input float32 [k, D]) -> float32 [k, Dg]: the model's whitening layer (DELG's
      embedding FC after GeM).
`ElfmExtractor` runs it (from a checkpoint or a SavedModel) and clusters in NumPy.
"""

import logging
import math
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from delf_tf.elfm import descriptor
from delf_tf.elfm import functional as F
from delf_tf.extraction import export, feature_extractor, pyramid

__all__ = [
    # The original's names (the compatibility surface).
    "ExportElfmModel",
    # delf_tf's own API.
    "DEFAULT_SCALES", "DEFAULT_MAX_IMAGE_SIZE", "ElfmModule", "ElfmExtractor",
]

logger = logging.getLogger(__name__)

# The paper's local-feature pyramid: 1/(2 sqrt 2), 1/2, 1/sqrt 2, 1, sqrt 2.
DEFAULT_SCALES = (1 / (2 * math.sqrt(2)), 0.5, 1 / math.sqrt(2), 1.0, math.sqrt(2))
DEFAULT_MAX_IMAGE_SIZE = 1024

_IMAGE = tf.TensorSpec([None, None, 3], tf.uint8, name="input_image")
_SCALES = tf.TensorSpec([None], tf.float32, name="input_scales")
_MAX_FEATURE_NUM = tf.TensorSpec([], tf.int32, name="input_max_feature_num")


class ElfmModule(tf.Module):
    """ELFM in-graph part for a Delg model (its backbone must have the embedding layer)."""

    def __init__(self, model, name: str | None = None):
        super().__init__(name=name)
        export.attach_model(self, model)  # servable by the TF1 session loader as well
        backbone = model.backbone
        if getattr(backbone, "embedding_layer", None) is None:
            raise ValueError(f"{type(model).__name__} has no whitening (embedding) layer: "
                             "ELFM needs a DELG model")
        # block4 has stride 32 with or without block3_strides (which only moves the last
        # stride before block4).
        self._stride = feature_extractor.STRIDE_WITH_BLOCK3_STRIDES
        self._min_input_size = int(getattr(model, "min_input_size", 1))
        _, endpoints = backbone(tf.zeros([1, 64, 64, 3]), training=False)
        self._dim = int(endpoints["block4"].shape[-1])

    def _model_fn(self, images):
        _, endpoints = self.model.backbone(images, training=False)
        block4 = tf.cast(endpoints["block4"], tf.float32)
        norms = tf.norm(block4, axis=-1, keepdims=True)
        return tf.zeros([1, 1], tf.float32), norms, block4

    @tf.function(input_signature=[_IMAGE, _SCALES, _MAX_FEATURE_NUM])
    def ExtractFeatures(self, input_image, input_scales, input_max_feature_num):
        return pyramid.extract_features(
                input_image, input_scales, self._model_fn, stride=self._stride,
                abs_thres=0.0, max_feature_num=input_max_feature_num, use_local=True,
                use_global=False, min_input_size=self._min_input_size, local_dim=self._dim)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="input")])
    def Whiten(self, input):
        return tf.cast(self.model.backbone.embedding_layer(input), tf.float32)


def ExportElfmModel(ckpt_path: str, export_path: str, overwrite: bool = False) -> None:
    """DELG checkpoint prefix (`<logdir>/delf_weights`) -> ELFM SavedModel at `export_path`
    (functions ExtractFeatures and Whiten; `serving_default` = ExtractFeatures). An earlier
    SavedModel there is replaced only with `overwrite` (see export.save_module)."""
    model = export.load_model_for_export(ckpt_path, "Delg")
    module = ElfmModule(model)
    export_path = os.path.abspath(export_path)
    module.ExtractFeatures.get_concrete_function()
    module.Whiten.get_concrete_function()
    export.save_module(module, export_path, overwrite)


class ElfmExtractor:
    """image uint8 [H, W, 3] -> (ElfmDescriptor, pyramid outputs) with the paper's settings.

    `source`: an ElfmModule, a DELG checkpoint prefix (with its .json sidecar) or an ELFM
    SavedModel directory (written by ExportElfmModel).
    """

    def __init__(self, source, *, scales: Sequence[float] = DEFAULT_SCALES,
                 num_features: int = F.DEFAULT_NUM_FEATURES,
                 num_clusters: int = F.DEFAULT_NUM_CLUSTERS,
                 gem_power: float = F.DEFAULT_GEM_POWER,
                 max_image_size: int = DEFAULT_MAX_IMAGE_SIZE):
        if isinstance(source, ElfmModule):
            self._module = source
        elif os.path.isdir(os.fspath(source)):
            self._module = tf.saved_model.load(os.fspath(source))
            if not hasattr(self._module, "Whiten"):
                raise ValueError(f"{source} is not an ELFM SavedModel (no Whiten function); "
                                 "export one with tools/export_elfm_model.py")
        else:
            from delf_tf.extraction import export

            self._module = ElfmModule(export.load_model_for_export(os.fspath(source), "Delg"))
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive and not empty, got {list(scales)}")
        if num_features < 1 or num_clusters < 1:
            raise ValueError(f"num_features ({num_features}) and num_clusters ({num_clusters}) "
                             "must be >= 1")
        self.scales = [float(s) for s in scales]
        self.num_features, self.num_clusters = int(num_features), int(num_clusters)
        self.gem_power, self.max_image_size = float(gem_power), int(max_image_size)
        self._dim = None

    def resize(self, image: np.ndarray, resize_factor: float = 1.0) -> np.ndarray:
        """Shrinks uint8 [H, W, 3] so its longer side is at most max_image_size * factor."""
        from delf_tf import utils
        from delf_tf.protos import delf_config_pb2

        config = delf_config_pb2.DelfConfig(max_image_size=self.max_image_size,
                                            min_image_size=-1)
        return utils.ResizeImage(image, config, resize_factor)[0]

    def pyramid(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The in-graph part on an already resized image: boxes, features, scales, scores."""
        outputs = self._module.ExtractFeatures(
                tf.constant(np.asarray(image, np.uint8)), tf.constant(self.scales, tf.float32),
                tf.constant(self.num_features, tf.int32))
        return {key: value.numpy() for key, value in outputs.items()}

    def whiten(self, x: np.ndarray) -> np.ndarray:
        return self._module.Whiten(tf.constant(np.asarray(x, np.float32))).numpy()

    def describe(self, features: np.ndarray) -> descriptor.ElfmDescriptor:
        if self._dim is None:
            self._dim = int(self.whiten(np.zeros([1, features.shape[1]], np.float32)).shape[1])
        return descriptor.describe(features, self.whiten, num_features=self.num_features,
                                   num_clusters=self.num_clusters, gem_power=self.gem_power,
                                   dim=self._dim)

    def __call__(self, image: np.ndarray, resize_factor: float = 1.0):
        """(ElfmDescriptor, pyramid outputs of the resized image, the resized image)."""
        resized = self.resize(image, resize_factor)
        outputs = self.pyramid(resized)
        return self.describe(outputs["features"]), outputs, resized
