"""The multi-scale extraction algorithm that runs inside exported graphs.

image -> normalise -> for each scale: resize, run the model, receptive boxes of
the feature map mapped back to the input image, keep cells whose attention
>= threshold -> concatenate over scales -> keep the top `max_feature_num` by
attention (with NMS when iou_threshold < 1). Global descriptors are collected per
scale and gathered for the requested scale indices.

Works in eager mode and under tf.function (the loops are tf.while_loop).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from delf_tf.extraction import feature_extractor
from delf_tf.models import preprocessing

__all__ = [
    "ModelFn", "scaled_size", "resize_to_scale", "select_top_features", "PyramidParams",
    "extract_features", "run_pyramid",
]

# images float32 [1, H, W, 3] (normalised) ->
#   (global_descriptor [1, Dg], attention_prob [1, h, w, 1], local_features [1, h, w, C])
ModelFn = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def scaled_size(image: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """int32 [2]: (round(H*scale), round(W*scale)) of [H, W, C] `image`, at least 1x1."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    return tf.maximum(tf.cast(tf.round(size * tf.cast(scale, tf.float32)), tf.int32), 1)


def resize_to_scale(image: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Bilinear resize of float [H, W, C] to `scaled_size(image, scale)`."""
    return tf.image.resize(image, scaled_size(image, scale),
                           method=tf.image.ResizeMethod.BILINEAR)


def select_top_features(boxes: tf.Tensor, scores: tf.Tensor, max_feature_num: tf.Tensor,
                        iou_threshold: float = 1.0) -> tf.Tensor:
    """Indices of the features to keep, by descending score.

    boxes float32 [N, 4] (ymin, xmin, ymax, xmax), scores float32 [N]. With
    iou_threshold >= 1 nothing can be suppressed, so this is a plain top-k (much
    cheaper than NMS over tens of thousands of boxes); below 1, greedy NMS.
    """
    max_feature_num = tf.maximum(tf.cast(max_feature_num, tf.int32), 0)
    if iou_threshold >= 1.0:
        k = tf.minimum(max_feature_num, tf.shape(scores)[0])
        return tf.math.top_k(scores, k=k, sorted=True).indices
    return tf.image.non_max_suppression(
            boxes, scores, max_output_size=max_feature_num, iou_threshold=iou_threshold)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PyramidParams:
    """What the pyramid computes and the model's geometry, fixed per export.

    stride, receptive_field, padding: of the feature map in input pixels (the
      receptive box of cell (i, j) is centred at (stride * i, stride * j) minus
      `padding`, `receptive_field` wide).
    min_input_size: smallest image side (pixels) the model accepts; smaller scales
      are skipped in the graph (no local features, a zero global row).
    use_local / use_global: which outputs to compute.
    iou_threshold: NMS threshold of the final selection (>= 1: plain top-k).
    global_dim: Dg, needed with use_global and global scale indices (width of the
      placeholder rows of scales whose global head is skipped).
    local_dim: C, needed with use_local when a scale may be skipped before the
      model has been traced (eager mode).
    """
    stride: int
    receptive_field: int = feature_extractor.RECEPTIVE_FIELD
    padding: int = feature_extractor.RECEPTIVE_PADDING
    min_input_size: int = 1
    use_local: bool = True
    use_global: bool = False
    iou_threshold: float = 1.0
    global_dim: int | None = None
    local_dim: int | None = None


def extract_features(
    image: tf.Tensor,
    image_scales: tf.Tensor,
    model_fn: ModelFn,
    *,
    abs_thres: tf.Tensor | float = 0.0,
    max_feature_num: tf.Tensor | int = 1000,
    global_scales_ind: tf.Tensor | None = None,
    **params: Any,
) -> dict[str, tf.Tensor]:
    """`run_pyramid` with the PyramidParams fields (`stride` required) as keyword arguments."""
    return run_pyramid(image, image_scales, model_fn, PyramidParams(**params), abs_thres,
                       max_feature_num, global_scales_ind)


def run_pyramid(
    image: tf.Tensor,
    image_scales: tf.Tensor,
    model_fn: ModelFn,
    params: PyramidParams,
    abs_thres: tf.Tensor | float = 0.0,
    max_feature_num: tf.Tensor | int = 1000,
    global_scales_ind: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    """Runs the pyramid over `image` and selects features.

    Args:
      image: uint8 [H, W, 3].
      image_scales: float32 [S], S >= 1.
      model_fn: see ModelFn.
      params: see PyramidParams.
      abs_thres: attention threshold; max_feature_num: top-k size.
      global_scales_ind: int32 [G] indices into image_scales for the global
        descriptors (None: all scales). The model's global head only runs at
        these scales, so unrequested scales cost local features only.

    Returns:
      with use_local: "boxes" float32 [N, 4] (ymin, xmin, ymax, xmax) in input
      image pixels, "features" float32 [N, C], "scales" float32 [N] (1/scale),
      "scores" float32 [N, 1] (attention), N <= max_feature_num, by descending
      score; with use_global: "global_descriptors" float32 [G, Dg] (raw, per scale,
      in the order of global_scales_ind; zeros for a scale too small to give
      the network any feature-map cell, or smaller than min_input_size).
    """
    image_scales = tf.convert_to_tensor(image_scales, tf.float32)
    tf.debugging.assert_positive(tf.shape(image_scales)[0],
                                 message="input_scales must not be empty")
    if params.use_global and global_scales_ind is not None:
        global_scales_ind = tf.cast(global_scales_ind, tf.int32)
        if params.global_dim is None:
            raise ValueError("global_dim is needed when global_scales_ind is given")
    pyramid = _Pyramid(params, preprocessing.normalize_images(image), image_scales, model_fn,
                       tf.cast(abs_thres, tf.float32), global_scales_ind)
    return pyramid.outputs(pyramid.loop_over_scales(), max_feature_num)


class _Pyramid:
    """The steps of one `run_pyramid` call (graph-building helpers)."""

    def __init__(self, params, normalized, image_scales, model_fn, abs_thres,
                 global_scales_ind):
        self.params = params
        self.normalized = normalized
        self.image_scales = image_scales
        self.num_scales = tf.shape(image_scales)[0]
        self.model_fn = model_fn
        self.abs_thres = abs_thres
        self.global_scales_ind = global_scales_ind
        self.selective_global = params.use_global and global_scales_ind is not None
        # The static depths C and Dg of the model, remembered from the trace so
        # the concatenated outputs keep them (TensorArray.concat loses them).
        self.traced_depth: list = []
        self.traced_global_dim: list = []

    def run_scale(self, index):
        scale = self.image_scales[index]
        resized = resize_to_scale(self.normalized, scale)[tf.newaxis]
        global_descriptor, attention, features = self.model_fn(resized)
        self.traced_global_dim.append(global_descriptor.shape[-1])
        return scale, global_descriptor, attention, features

    def local_outputs(self, scale, attention, features):
        """(boxes, features, 1/scale, scores) of the cells with attention >= threshold."""
        self.traced_depth.append(features.shape[-1])
        height, width = tf.shape(features)[1], tf.shape(features)[2]
        boxes = feature_extractor.CalculateReceptiveBoxes(
                height, width, self.params.receptive_field, self.params.stride,
                self.params.padding) / scale
        attention = tf.reshape(attention, [-1])
        features = tf.reshape(features, [height * width, tf.shape(features)[3]])
        keep = tf.where(attention >= self.abs_thres)[:, 0]
        selected_scores = tf.gather(attention, keep)
        return (tf.gather(boxes, keep), tf.gather(features, keep),
                tf.fill(tf.shape(selected_scores), 1.0 / scale), selected_scores)

    def run_model_maybe_global(self, index):
        """(global_row [Dg], attention, features, scale) of one scale."""
        if not self.selective_global:
            scale, global_descriptor, attention, features = self.run_scale(index)
            return global_descriptor[0], attention, features, scale
        wanted = tf.reduce_any(tf.equal(self.global_scales_ind, index))

        def with_global():
            scale, global_descriptor, attention, features = self.run_scale(index)
            return global_descriptor[0], attention, features, scale

        def without_global():
            # The global output is unused here, so the graph prunes the part
            # of the model that only feeds it (block4, pooling, embedding).
            scale, _, attention, features = self.run_scale(index)
            return tf.zeros([self.params.global_dim], tf.float32), attention, features, scale

        return tf.cond(wanted, with_global, without_global)

    def model_rows(self, index):
        """(local outputs..., global_row [Dg]) of one scale the model can take."""
        global_row, attention, features, scale = self.run_model_maybe_global(index)
        rows = []
        if self.params.use_local:
            rows += list(self.local_outputs(scale, attention, features))
        if self.params.use_global:
            # A map that still pooled to a non-finite value would poison the sum
            # over scales: write zeros instead, which the extractor's L2 + sum ignore.
            rows.append(tf.where(tf.reduce_all(tf.math.is_finite(global_row)), global_row,
                                 tf.zeros_like(global_row)))
        return tuple(rows)

    def skipped_rows(self):
        """The same outputs for a scale too small for the model: nothing local, zeros."""
        rows = []
        if self.params.use_local:
            depth = self.params.local_dim if self.params.local_dim is not None else (
                    self.traced_depth[-1] if self.traced_depth else None)
            if depth is None:
                raise ValueError("local_dim is needed to skip a scale before the model ran")
            rows += [tf.zeros([0, 4], tf.float32), tf.zeros([0, depth], tf.float32),
                     tf.zeros([0], tf.float32), tf.zeros([0], tf.float32)]
        if self.params.use_global:
            if self.params.global_dim is None and not self.traced_global_dim:
                raise ValueError("global_dim is needed to skip a scale before the model ran")
            rows.append(tf.zeros([self.params.global_dim or self.traced_global_dim[-1]],
                                 tf.float32))
        return tuple(rows)

    def body(self, index, arrays):
        size = scaled_size(self.normalized, self.image_scales[index])
        fits = tf.reduce_all(size >= self.params.min_input_size)
        rows = tf.cond(fits, lambda: self.model_rows(index), self.skipped_rows)
        arrays = tuple(array.write(index, row) for array, row in zip(arrays, rows))
        return index + 1, arrays

    def new_arrays(self):
        def new_array(element_shape):
            return tf.TensorArray(tf.float32, size=self.num_scales, infer_shape=False,
                                  element_shape=element_shape)

        arrays = []
        if self.params.use_local:
            arrays += [new_array(tf.TensorShape([None, 4])),
                       new_array(tf.TensorShape([None, None])),
                       new_array(tf.TensorShape([None])), new_array(tf.TensorShape([None]))]
        if self.params.use_global:
            arrays.append(tf.TensorArray(tf.float32, size=self.num_scales))
        return arrays

    def loop_over_scales(self):
        """The per-scale rows, one TensorArray per output."""
        # One scale at a time: each scale's convolutions already use every core, and
        # overlapping scales (the default runs up to 10 iterations at once) multiplies
        # peak memory and was measured slower here (benchmarks/extraction_overhead.py).
        _, arrays = tf.while_loop(
                lambda index, _: index < self.num_scales, self.body,
                (tf.constant(0, tf.int32), tuple(self.new_arrays())),
                maximum_iterations=self.num_scales, parallel_iterations=1)
        return arrays

    def outputs(self, arrays, max_feature_num):
        """Concatenates the scales and keeps the top `max_feature_num` features."""
        outputs = {}
        if self.params.use_local:
            boxes, features, scales, scores = (array.concat() for array in arrays[:4])
            features = tf.ensure_shape(
                    features,
                    [None, self.traced_depth[-1] if self.traced_depth else self.params.local_dim])
            keep = select_top_features(boxes, scores, max_feature_num, self.params.iou_threshold)
            outputs.update(boxes=tf.gather(boxes, keep), features=tf.gather(features, keep),
                           scales=tf.gather(scales, keep),
                           scores=tf.expand_dims(tf.gather(scores, keep), 1))
        if self.params.use_global:
            per_scale = arrays[-1].stack()
            if self.global_scales_ind is not None:
                per_scale = tf.gather(per_scale, self.global_scales_ind)
            outputs["global_descriptors"] = per_scale
        return outputs
