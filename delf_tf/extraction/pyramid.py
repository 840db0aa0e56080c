"""The multi-scale extraction algorithm that runs inside exported graphs (SPEC §8).

image -> normalise -> for each scale: resize, run the model, receptive boxes of
the feature map mapped back to the input image, keep cells whose attention
>= threshold -> concatenate over scales -> keep the top `max_feature_num` by
attention (with NMS when iou_threshold < 1). Global descriptors are collected per
scale and gathered for the requested scale indices.

Works in eager mode and under tf.function (the loops are tf.while_loop).
"""

from collections.abc import Callable

import tensorflow as tf

from delf_tf.extraction import feature_extractor
from delf_tf.models import preprocessing

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


def extract_features(
    image: tf.Tensor,
    image_scales: tf.Tensor,
    model_fn: ModelFn,
    *,
    stride: int,
    abs_thres: tf.Tensor | float = 0.0,
    max_feature_num: tf.Tensor | int = 1000,
    global_scales_ind: tf.Tensor | None = None,
    use_local: bool = True,
    use_global: bool = False,
    iou_threshold: float = 1.0,
    global_dim: int | None = None,
    receptive_field: int = feature_extractor.RECEPTIVE_FIELD,
    padding: int = feature_extractor.RECEPTIVE_PADDING,
    min_input_size: int = 1,
    local_dim: int | None = None,
) -> dict[str, tf.Tensor]:
    """Runs the pyramid over `image` and selects features.

    Args:
      image: uint8 [H, W, 3].
      image_scales: float32 [S], S >= 1.
      model_fn: see ModelFn.
      stride: feature-map stride in input pixels (32 with block3_strides, else 16).
      abs_thres: attention threshold; max_feature_num: top-k size.
      global_scales_ind: int32 [G] indices into image_scales for the global
        descriptors (None: all scales). The model's global head only runs at
        these scales, so unrequested scales cost local features only.
      use_local / use_global: which outputs to compute.
      global_dim: Dg, needed with use_global and global_scales_ind (the width of
        the placeholder rows for scales whose global head is skipped).
      min_input_size: the smallest side (pixels) the model accepts (the model's
        `min_input_size`). A scale whose resized image has a shorter side is
        skipped in the graph: no local features, a zero global row. The model is
        never called on it, so no kernel sees an empty or negative-size window.
      local_dim: C, the local feature depth; needed with use_local when a scale
        may be skipped before the model has been traced (eager mode).

    Returns:
      with use_local: "boxes" float32 [N, 4] (ymin, xmin, ymax, xmax) in input
      image pixels, "features" float32 [N, C], "scales" float32 [N] (1/scale),
      "scores" float32 [N, 1] (attention), N <= max_feature_num, by descending
      score; with use_global: "global_descriptors" float32 [G, Dg] (raw, per scale,
      in the order of global_scales_ind; zeros for a scale too small to give
      the network any feature-map cell, or smaller than min_input_size).
    """
    image_scales = tf.convert_to_tensor(image_scales, tf.float32)
    num_scales = tf.shape(image_scales)[0]
    tf.debugging.assert_positive(num_scales, message="input_scales must not be empty")
    normalized = preprocessing.normalize_images(image)
    abs_thres = tf.cast(abs_thres, tf.float32)
    selective_global = use_global and global_scales_ind is not None
    if selective_global:
        global_scales_ind = tf.cast(global_scales_ind, tf.int32)
        if global_dim is None:
            raise ValueError("global_dim is needed when global_scales_ind is given")

    traced_global_dim = []

    def run_scale(index):
        scale = image_scales[index]
        resized = resize_to_scale(normalized, scale)[tf.newaxis]
        global_descriptor, attention, features = model_fn(resized)
        traced_global_dim.append(global_descriptor.shape[-1])
        return scale, global_descriptor, attention, features

    # The feature depth C is static in the model; remember it from the trace so
    # the concatenated outputs keep it (TensorArray.concat loses it).
    traced_depth = []

    def local_outputs(scale, attention, features):
        traced_depth.append(features.shape[-1])
        height, width = tf.shape(features)[1], tf.shape(features)[2]
        boxes = feature_extractor.CalculateReceptiveBoxes(
                height, width, receptive_field, stride, padding) / scale
        attention = tf.reshape(attention, [-1])
        features = tf.reshape(features, [height * width, tf.shape(features)[3]])
        keep = tf.where(attention >= abs_thres)[:, 0]
        selected_scores = tf.gather(attention, keep)
        return (tf.gather(boxes, keep), tf.gather(features, keep),
                tf.fill(tf.shape(selected_scores), 1.0 / scale), selected_scores)

    def model_rows(index):
        """(global_row [Dg], local outputs...) of one scale the model can take."""
        if selective_global:
            wanted = tf.reduce_any(tf.equal(global_scales_ind, index))

            def with_global():
                scale, global_descriptor, attention, features = run_scale(index)
                return global_descriptor[0], attention, features, scale

            def without_global():
                # The global output is unused here, so the graph prunes the part
                # of the model that only feeds it (block4, pooling, embedding).
                scale, _, attention, features = run_scale(index)
                return tf.zeros([global_dim], tf.float32), attention, features, scale

            global_row, attention, features, scale = tf.cond(
                    wanted, with_global, without_global)
        else:
            scale, global_descriptor, attention, features = run_scale(index)
            global_row = global_descriptor[0]
        rows = []
        if use_local:
            rows += list(local_outputs(scale, attention, features))
        if use_global:
            # A map that still pooled to a non-finite value would poison the sum
            # over scales: write zeros instead, which the extractor's L2 + sum ignore.
            rows.append(tf.where(tf.reduce_all(tf.math.is_finite(global_row)), global_row,
                                 tf.zeros_like(global_row)))
        return tuple(rows)

    def skipped_rows():
        """The same outputs for a scale too small for the model: nothing local, zeros."""
        rows = []
        if use_local:
            depth = local_dim if local_dim is not None else (
                    traced_depth[-1] if traced_depth else None)
            if depth is None:
                raise ValueError("local_dim is needed to skip a scale before the model ran")
            rows += [tf.zeros([0, 4], tf.float32), tf.zeros([0, depth], tf.float32),
                     tf.zeros([0], tf.float32), tf.zeros([0], tf.float32)]
        if use_global:
            if global_dim is None and not traced_global_dim:
                raise ValueError("global_dim is needed to skip a scale before the model ran")
            rows.append(tf.zeros([global_dim or traced_global_dim[-1]], tf.float32))
        return tuple(rows)

    def body(index, arrays):
        size = scaled_size(normalized, image_scales[index])
        fits = tf.reduce_all(size >= min_input_size)
        rows = tf.cond(fits, lambda: model_rows(index), skipped_rows)
        arrays = tuple(array.write(index, row) for array, row in zip(arrays, rows))
        return index + 1, arrays

    def new_array(element_shape):
        return tf.TensorArray(tf.float32, size=num_scales, infer_shape=False,
                              element_shape=element_shape)

    arrays = []
    if use_local:
        arrays += [new_array(tf.TensorShape([None, 4])), new_array(tf.TensorShape([None, None])),
                   new_array(tf.TensorShape([None])), new_array(tf.TensorShape([None]))]
    if use_global:
        arrays.append(tf.TensorArray(tf.float32, size=num_scales))
    # One scale at a time: each scale's convolutions already use every core, and
    # overlapping scales (the default runs up to 10 iterations at once) multiplies
    # peak memory and was measured slower here (benchmarks/extraction_overhead.py).
    _, arrays = tf.while_loop(
            lambda index, _: index < num_scales, body,
            (tf.constant(0, tf.int32), tuple(arrays)),
            maximum_iterations=num_scales, parallel_iterations=1)

    outputs = {}
    if use_local:
        boxes, features, scales, scores = (array.concat() for array in arrays[:4])
        features = tf.ensure_shape(
                features, [None, traced_depth[-1] if traced_depth else local_dim])
        keep = select_top_features(boxes, scores, max_feature_num, iou_threshold)
        outputs.update(boxes=tf.gather(boxes, keep), features=tf.gather(features, keep),
                       scales=tf.gather(scales, keep),
                       scores=tf.expand_dims(tf.gather(scores, keep), 1))
    if use_global:
        per_scale = arrays[-1].stack()
        if global_scales_ind is not None:
            per_scale = tf.gather(per_scale, global_scales_ind)
        outputs["global_descriptors"] = per_scale
    return outputs
