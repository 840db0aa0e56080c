"""Multi-scale global descriptors from a GlobalFeatureNet, in memory and as a SavedModel.

Per image: for each scale s the image is resized by s (bilinear) and described by the network
(an L2-normalised [D] vector); the per-scale vectors are combined by their generalized mean
with power `msp` (mean(v_s^msp)^(1/msp); msp = 1 is the average) and L2-normalised again.
"""

import weakref
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from delf_tf.global_features import images as image_lib
from delf_tf.models.normalization import l2_normalize
from delf_tf.models.preprocessing import normalize_images

__all__ = [
    # The original's names (the compatibility surface).
    "ExportGlobalFeatureNet", "WriteGlobalDelfConfig",
    # delf_tf's own API.
    "per_scale_descriptors", "combine_scales", "extract_vectors", "GlobalFeatureNetModule",
]

_IMAGE = tf.TensorSpec([None, None, 3], tf.uint8, name="input_image")
_SCALES = tf.TensorSpec([None], tf.float32, name="input_scales")
_GLOBAL_SCALES_IND = tf.TensorSpec([None], tf.int32, name="input_global_scales_ind")


def _scaled_descriptor(model, image, scale, min_input_size: int):
    """uint8 [H,W,3], float scale -> the network's descriptor [D] of the rescaled image."""
    size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
    size = tf.maximum(size, min_input_size)
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    return model(normalize_images(resized)[None], training=False)[0]


def per_scale_descriptors(model, image, scales) -> tf.Tensor:
    """uint8 [H,W,3], float32 scales [S] -> float32 [S, D] (graph-friendly loop over scales)."""
    min_input_size = int(getattr(model, "min_input_size", 1))
    dim = int(model.meta["outputdim"])
    scales = tf.convert_to_tensor(scales, tf.float32)
    out = tf.TensorArray(tf.float32, size=tf.shape(scales)[0], element_shape=[dim])
    for i in tf.range(tf.shape(scales)[0]):
        out = out.write(i, _scaled_descriptor(model, image, scales[i], min_input_size))
    return out.stack()


def combine_scales(descriptors, msp: float = 1.0):
    """float [S, D] -> float32 [D]: L2(mean(max(v, 0)^msp)^(1/msp)); msp = 1 keeps signs."""
    descriptors = tf.cast(descriptors, tf.float32)
    if msp == 1.0:
        pooled = tf.reduce_mean(descriptors, axis=0)
    else:
        # A fractional power of a negative entry is undefined: clamp (GeM vectors are >= 0).
        pooled = tf.pow(tf.reduce_mean(tf.pow(tf.maximum(descriptors, 0.0), msp), axis=0),
                        1.0 / msp)
    return l2_normalize(pooled, axis=0)


# model -> {(scales, msp): traced function}: mining calls extract_vectors every epoch, and a
# new tf.function per call would retrace the network each time.
_DESCRIBE_FUNCTIONS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _describe_function(model, scales: tuple[float, ...], msp: float):
    functions = _DESCRIBE_FUNCTIONS.setdefault(model, {})
    if (scales, msp) not in functions:
        scales_tensor = tf.constant(list(scales), tf.float32)

        @tf.function(input_signature=[_IMAGE])
        def describe(image):
            if scales == (1.0,):
                return model(normalize_images(image)[None], training=False)[0]
            return combine_scales(per_scale_descriptors(model, image, scales_tensor), msp)

        functions[(scales, msp)] = describe
    return functions[(scales, msp)]


def extract_vectors(model, paths: Sequence[str], image_size: int,
                    bbxs: Sequence | None = None, scales: Sequence[float] = (1.0,),
                    msp: float = 1.0) -> np.ndarray:
    """Descriptors float32 [N, D] of the listed image files (the original's extract_vectors).

    Images are cropped to `bbxs` (when given) and shrunk to `image_size` first.
    """
    describe = _describe_function(model, tuple(float(s) for s in scales), float(msp))
    out = np.zeros([len(paths), int(model.meta["outputdim"])], np.float32)
    try:
        for i, image in enumerate(image_lib.ImagesFromList(paths, image_size, bbxs)):
            out[i] = describe(image).numpy()
    except tf.errors.InvalidArgumentError as e:
        error = image_lib.box_outside_error(e)
        if error is None:
            raise
        raise error from None
    return out


class GlobalFeatureNetModule(tf.Module):
    """The original's global-only export: `serving_default` takes input_image uint8 [H,W,3],
    input_scales float32 [S], input_global_scales_ind int32 [G] and returns either
    global_descriptors float32 [G, D] (per selected scale; pool_scales=False) or
    global_descriptor float32 [D] (their GeM with power `msp`, then L2; pool_scales=True)."""

    def __init__(self, model, *, pool_scales: bool = True, msp: float | None = None):
        super().__init__(name="global_feature_net")
        if not model.weights:
            model.build_for_input()
        # Imported here: export.py pulls in the DELF/DELG extraction graph code.
        from delf_tf.extraction import export

        export.attach_model(self, model)  # servable by the TF1 session loader as well
        self._pool_scales = pool_scales
        self._msp = float(model.multi_scale_power() if msp is None else msp)
        self.ExtractFeatures = tf.function(self._extract, input_signature=[
                _IMAGE, _SCALES, _GLOBAL_SCALES_IND])

    def _extract(self, input_image, input_scales, input_global_scales_ind):
        selected = tf.gather(input_scales, input_global_scales_ind)
        descriptors = per_scale_descriptors(self.model, input_image, selected)
        if not self._pool_scales:
            return {"global_descriptors": descriptors}
        return {"global_descriptor": combine_scales(descriptors, self._msp)}


def ExportGlobalFeatureNet(model, export_path: str, *, pool_scales: bool = True,
                           msp: float | None = None, overwrite: bool = False) -> None:
    """Writes `model` as a global-only SavedModel (see GlobalFeatureNetModule) at export_path,
    atomically (a temporary directory renamed into place; an earlier SavedModel there only
    with `overwrite`, see export.save_module)."""
    # Imported here: export.py pulls in the DELF/DELG extraction graph code.
    from delf_tf.extraction import export

    export.save_module(GlobalFeatureNetModule(model, pool_scales=pool_scales, msp=msp),
                       export_path, overwrite)


def WriteGlobalDelfConfig(config_path: str, model_path: str, scales: Sequence[float],
                          max_image_size: int = -1, pca_parameters=None) -> None:
    """Writes a DelfConfig pbtxt for a global-only export (the input of MakeExtractor and the
    extraction tools): the scales, global features only, and the whitening (if given) as the
    global PCA parameters."""
    from google.protobuf import text_format

    from delf_tf.io import atomic
    from delf_tf.protos import delf_config_pb2

    config = delf_config_pb2.DelfConfig(
            model_path=model_path, image_scales=list(scales), max_image_size=max_image_size,
            use_local_features=False, use_global_features=True, is_tf2_exported=True)
    config.delf_global_config.use_pca = pca_parameters is not None
    if pca_parameters is not None:
        config.delf_global_config.pca_parameters.CopyFrom(pca_parameters)
    atomic.write_bytes_atomic(config_path, text_format.MessageToString(config).encode())
