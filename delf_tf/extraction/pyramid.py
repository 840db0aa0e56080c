"""The multi-scale extraction algorithm that runs inside exported graphs (SPEC §8).

image -> normalise -> for each scale: resize, run the model, receptive boxes of
the feature map mapped back to the input image, keep cells whose attention
>= threshold -> concatenate over scales -> keep the top `max_feature_num` by
attention (with NMS when iou_threshold < 1). Global descriptors are collected per
scale and gathered for the requested scale indices.

Works in eager mode and under tf.function (the loops are tf.while_loop).
"""

from typing import Callable

import tensorflow as tf

from delf_tf.extraction import feature_extractor
from delf_tf.models import preprocessing

# images float32 [1, H, W, 3] (normalised) ->
#   (global_descriptor [1, Dg], attention_prob [1, h, w, 1], local_features [1, h, w, C])
ModelFn = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def resize_to_scale(image: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Bilinear resize of float [H, W, C] to (round(H*scale), round(W*scale)),
    at least 1x1."""
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    new_size = tf.maximum(tf.cast(tf.round(size * scale), tf.int32), 1)
    return tf.image.resize(image, new_size, method=tf.image.ResizeMethod.BILINEAR)


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

    Returns:
      with use_local: "boxes" float32 [N, 4] (ymin, xmin, ymax, xmax) in input
      image pixels, "features" float32 [N, C], "scales" float32 [N] (1/scale),
      "scores" float32 [N, 1] (attention), N <= max_feature_num, by descending
      score; with use_global: "global_descriptors" float32 [G, Dg] (raw, per scale,
      in the order of global_scales_ind; zeros for a scale too small to give
      the network any feature-map cell).
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

    def run_scale(index):
        scale = image_scales[index]
        resized = resize_to_scale(normalized, scale)[tf.newaxis]
        global_descriptor, attention, features = model_fn(resized)
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

    def body(index, arrays):
        arrays = list(arrays)
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
        if use_local:
            for slot, value in enumerate(local_outputs(scale, attention, features)):
                arrays[slot] = arrays[slot].write(index, value)
        if use_global:
            # A scale too small for the network to produce any cell (< 5 px for
            # ResNet) pools an empty map into NaN: write zeros instead, which
            # the extractor's L2 + sum ignore.
            global_row = tf.where(tf.reduce_all(tf.math.is_finite(global_row)), global_row,
                                  tf.zeros_like(global_row))
            arrays[-1] = arrays[-1].write(index, global_row)
        return index + 1, tuple(arrays)

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
        features = tf.ensure_shape(features, [None, traced_depth[-1]])
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
