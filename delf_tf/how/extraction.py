"""HOW's test-time local features: multi-scale, merged, the strongest kept.

The image is resized at every scale (HOW: 0.25, 0.353, 0.5, 0.707, 1, 1.414,
2 of the image limited to 1024 px); every feature-map cell of every scale is
a feature with descriptor L2(o(ū)) and strength w(u) = ||u||; the features of
all scales are ranked together by strength and the n strongest kept (HOW:
1000). It is the same in-graph pyramid as DELF's (`extraction.pyramid`), so
the exported SavedModel has DELF's `serving_default` signature (input_image,
input_scales, input_max_feature_num, input_abs_thres -> boxes, features,
scales, scores) and every delf_tf extraction tool runs it with a DelfConfig
(configs/how_r18_config.pbtxt); `ExtractHowFeatures` runs it in process.
"""

import numpy as np
import tensorflow as tf

from delf_tf import utils
from delf_tf.extraction import export, feature_extractor, pyramid
from delf_tf.how.model import HowNet, load_how_model
from delf_tf.io import feature_io
from delf_tf.local_features import LocalFeatures
from delf_tf.models import resnet
from delf_tf.protos import delf_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "ExtractHowFeatures", "WriteHowFeatures", "ExportHowModel",
    # delf_tf's own API.
    "HOW_SCALES", "HOW_MAX_IMAGE_SIZE", "HOW_MAX_FEATURE_NUM", "HowFeatureModule",
]

HOW_SCALES = (0.25, 0.3535534, 0.5, 0.7071068, 1.0, 1.4142135, 2.0)
HOW_MAX_IMAGE_SIZE = 1024
HOW_MAX_FEATURE_NUM = 1000


class HowFeatureModule(export._ExtractionModule):
    """A HowNet as a SavedModel module with DELF's local-feature signature;
    the model's own stride and receptive field place the features."""

    def __init__(self, model: HowNet, name: str | None = None):
        super().__init__(model, geometry=resnet.FeatureGeometry(model.stride,
                                                               model.receptive_field),
                         name=name)

    def _model_fn(self, images):
        strengths, descriptors = self.model.local_features(images, training=False)
        return tf.zeros([tf.shape(images)[0], 1]), strengths[..., None], descriptors

    def _extract(self, image, scales, *, use_local, use_global, abs_thres=0.0,
                 max_feature_num=0, global_scales_ind=None):
        return pyramid.extract_features(
                image, scales, self._model_fn, stride=self._geometry.stride,
                abs_thres=abs_thres,
                max_feature_num=max_feature_num, use_local=True, use_global=False,
                receptive_field=self._geometry.receptive_field,
                padding=self._geometry.padding,
                local_dim=self._local_dim, min_input_size=self._min_input_size)

    @tf.function(input_signature=[export._IMAGE, export._SCALES, export._MAX_FEATURE_NUM,
                                  export._ABS_THRES])
    def ExtractFeatures(self, input_image, input_scales, input_max_feature_num,
                        input_abs_thres):
        return self._extract(input_image, input_scales, use_local=True, use_global=False,
                             abs_thres=input_abs_thres, max_feature_num=input_max_feature_num)


def ExtractHowFeatures(
    module: HowFeatureModule,
    image: np.ndarray,
    scales=HOW_SCALES,
    max_image_size: int = HOW_MAX_IMAGE_SIZE,
    max_feature_num: int = HOW_MAX_FEATURE_NUM,
) -> LocalFeatures:
    """Local features of uint8 [H, W, 3].

    Returns:
      LocalFeatures, strongest first, N <= max_feature_num: locations float32
      [N, 2] (y, x) in the input image's pixels, scales float32 [N] (1 / pyramid
      scale, relative to the image limited to max_image_size), descriptors
      float32 [N, d] unit length, attention float32 [N] the strength w(u)
      (also `features["strengths"]`).
    """
    # The size rule of every DelfConfig-driven extraction (so in-process and
    # SavedModel extraction agree).
    resized, factors = utils.ResizeImage(
        np.asarray(image, np.uint8), delf_config_pb2.DelfConfig(max_image_size=max_image_size))
    out = module.ExtractFeatures(tf.constant(resized), tf.constant(scales, tf.float32),
                                 tf.constant(max_feature_num, tf.int32),
                                 tf.constant(0.0, tf.float32))
    locations = feature_extractor.CalculateKeypointCenters(out["boxes"]).numpy() / factors
    return LocalFeatures(locations=locations.astype(np.float32),
                         scales=out["scales"].numpy(),
                         descriptors=out["features"].numpy(),
                         attention=out["scores"].numpy().reshape(-1),
                         orientations=np.zeros([len(locations)], np.float32))


def WriteHowFeatures(path: str, features: LocalFeatures) -> None:
    """Writes `ExtractHowFeatures` output as a DelfFeatures file (strength in
    the `strength` field), readable by every delf_tf tool."""
    feature_io.write_features(path, features)


def ExportHowModel(ckpt_prefix: str, export_path: str, overwrite: bool = False) -> None:
    """A HowNet checkpoint (`save_how_model`) -> SavedModel with DELF's local
    feature signature at `export_path` (atomically; see export.save_module)."""
    export.check_export_path(export_path, overwrite)
    export.save_module(HowFeatureModule(load_how_model(ckpt_prefix)), export_path, overwrite)
