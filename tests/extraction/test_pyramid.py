"""The in-graph multi-scale algorithm against a NumPy reference, with a cheap
stand-in model (stride-32 average pooling) so every step is checkable."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.extraction import pyramid
from delf_tf.models import normalize_images

STRIDE = 32


def fake_model(images):
    """images [1,H,W,3] -> (global [1,3], attention [1,h,w,1], features [1,h,w,6])."""
    pooled = tf.nn.avg_pool2d(images, ksize=STRIDE, strides=STRIDE, padding="SAME")
    features = tf.concat([pooled, 2.0 * pooled + 1.0], axis=-1)
    attention = tf.nn.softplus(4.0 * tf.reduce_sum(pooled, axis=-1, keepdims=True))
    return tf.reduce_mean(pooled, axis=[1, 2]), attention, features


def reference(image, scales, abs_thres, max_feature_num):
    """NumPy version of the original's pyramid algorithm over fake_model."""
    boxes, features, feature_scales, scores, global_rows = [], [], [], [], []
    normalized = normalize_images(image)
    for scale in scales:
        size = [int(round(image.shape[0] * scale)), int(round(image.shape[1] * scale))]
        resized = tf.image.resize(normalized, size)[tf.newaxis]
        global_descriptor, attention, feature_map = (t.numpy()[0] for t in fake_model(resized))
        global_rows.append(global_descriptor)
        height, width = attention.shape[:2]
        for i in range(height):
            for j in range(width):
                if attention[i, j, 0] >= abs_thres:
                    top, left = STRIDE * i - 145, STRIDE * j - 145
                    boxes.append(np.array([top, left, top + 290, left + 290]) / scale)
                    features.append(feature_map[i, j])
                    feature_scales.append(1.0 / scale)
                    scores.append(attention[i, j, 0])
    order = np.argsort(-np.array(scores), kind="stable")[:max_feature_num]
    return (np.array(boxes).reshape(-1, 4)[order], np.array(features).reshape(-1, 6)[order],
            np.array(feature_scales)[order], np.array(scores)[order], np.array(global_rows))


@pytest.fixture(scope="module")
def image(make_image):
    return make_image(70, 130, seed=3)


def run(image, scales, **kwargs):
    return pyramid.extract_features(tf.constant(image), tf.constant(scales, tf.float32),
                                    fake_model, stride=STRIDE, **kwargs)


def test_matches_reference(image):
    scales = [0.5, 1.0, 2.0]
    all_scores = reference(image, scales, -1.0, 10**6)[3]
    threshold = float(np.median(all_scores))
    expected = reference(image, scales, threshold, 12)
    out = run(image, scales, abs_thres=threshold, max_feature_num=12)
    assert out["boxes"].shape == (12, 4) and out["scores"].shape == (12, 1)
    np.testing.assert_allclose(out["boxes"].numpy(), expected[0], rtol=1e-6)
    np.testing.assert_allclose(out["features"].numpy(), expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["scales"].numpy(), expected[2], rtol=1e-6)
    np.testing.assert_allclose(out["scores"].numpy()[:, 0], expected[3], rtol=1e-6)
    assert np.all(np.diff(out["scores"].numpy()[:, 0]) <= 0)


def test_global_descriptors_follow_scale_indices(image):
    scales = [0.5, 1.0, 2.0]
    expected = reference(image, scales, 0.0, 0)[4]
    out = run(image, scales, use_local=False, use_global=True,
              global_scales_ind=tf.constant([2, 0]), global_dim=3)
    assert set(out) == {"global_descriptors"}
    np.testing.assert_allclose(out["global_descriptors"].numpy(), expected[[2, 0]], rtol=1e-5)
    everything = run(image, scales, use_local=False, use_global=True)
    np.testing.assert_allclose(everything["global_descriptors"].numpy(), expected, rtol=1e-5)


def test_threshold_above_everything_gives_empty_outputs(image):
    out = run(image, [1.0], abs_thres=1e9, max_feature_num=100)
    assert out["boxes"].shape == (0, 4)
    assert out["features"].shape == (0, 6)
    assert out["scales"].shape == (0,) and out["scores"].shape == (0, 1)


def test_max_feature_num_larger_than_candidates(image):
    out = run(image, [0.5, 1.0], abs_thres=-1.0, max_feature_num=10**6)
    assert len(out["boxes"]) == len(reference(image, [0.5, 1.0], -1.0, 10**6)[0])


def _iou(a, b):
    height = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    width = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = height * width
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_nms_below_iou_one_suppresses_overlaps(image):
    everything = run(image, [1.0, 2.0], abs_thres=-1.0, max_feature_num=1000)
    out = run(image, [1.0, 2.0], abs_thres=-1.0, max_feature_num=1000, iou_threshold=0.5)
    boxes = out["boxes"].numpy()
    assert 0 < len(boxes) < len(everything["boxes"])
    for i in range(len(boxes)):
        for j in range(i):
            assert _iou(boxes[i], boxes[j]) <= 0.5 + 1e-6
    # The best-scoring feature always survives.
    np.testing.assert_array_equal(boxes[0], everything["boxes"].numpy()[0])


def test_resize_rounds_each_side():
    resized = pyramid.resize_to_scale(tf.zeros([10, 15, 3]), tf.constant(0.5))
    assert resized.shape == (5, 8, 3)
    assert pyramid.resize_to_scale(tf.zeros([3, 3, 3]), tf.constant(0.01)).shape == (1, 1, 3)


def strict_model(images):
    """fake_model that fails loudly when called on an image under 5 px, as a
    kernel with an empty or negative-size window would."""
    tf.debugging.assert_greater_equal(tf.reduce_min(tf.shape(images)[1:3]), 5,
                                      message="model called on a too-small image")
    return fake_model(images)


@pytest.mark.parametrize("graph", [False, True])
def test_scales_below_min_input_size_are_skipped_without_calling_the_model(image, graph):
    def extract(scales):
        def call():
            return pyramid.extract_features(
                    tf.constant(image), tf.constant(scales, tf.float32), strict_model,
                    stride=STRIDE, use_global=True, min_input_size=5, local_dim=6, global_dim=3)
        return tf.function(call)() if graph else call()

    # 70 x 130 at 0.05 is 4 x 6 and at 0.0 (clamped) 1 x 1: both skipped.
    with_small = extract([0.05, 1.0, 0.0, 0.5])
    without = extract([1.0, 0.5])
    for key in ("boxes", "features", "scales", "scores"):
        np.testing.assert_allclose(with_small[key].numpy(), without[key].numpy())
    rows = with_small["global_descriptors"].numpy()
    np.testing.assert_array_equal(rows[[0, 2]], 0.0)
    np.testing.assert_allclose(rows[[1, 3]], without["global_descriptors"].numpy())
    assert with_small["features"].shape[-1] == 6


def test_every_scale_too_small_gives_empty_outputs(image):
    out = pyramid.extract_features(tf.constant(image), tf.constant([0.01], tf.float32),
                                   strict_model, stride=STRIDE, use_global=True,
                                   min_input_size=5, local_dim=6, global_dim=3)
    assert out["features"].shape == (0, 6) and out["boxes"].shape == (0, 4)
    np.testing.assert_array_equal(out["global_descriptors"].numpy(), np.zeros([1, 3]))
