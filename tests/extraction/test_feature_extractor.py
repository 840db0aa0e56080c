"""Receptive boxes, keypoint centres and descriptor post-processing (worked examples)."""

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.extraction import feature_extractor, postprocess


def test_receptive_boxes_spec_example():
    boxes = feature_extractor.CalculateReceptiveBoxes(1, 2, 291, 32, 145)
    np.testing.assert_array_equal(boxes.numpy(), [[-145, -145, 145, 145], [-145, -113, 145, 177]])


def test_receptive_boxes_rows_outer_stride_16():
    boxes = feature_extractor.CalculateReceptiveBoxes(2, 3, 291, 16, 145).numpy()
    assert boxes.shape == (6, 4) and boxes.dtype == np.float32
    # Cell (i=1, j=2) is the last one: rows outer, columns inner.
    np.testing.assert_array_equal(boxes[5], [16 - 145, 32 - 145, 16 - 145 + 290, 32 - 145 + 290])
    np.testing.assert_array_equal(boxes[1], [-145, 16 - 145, 145, 16 + 145])


def test_receptive_boxes_in_graph_with_dynamic_shape():
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def boxes_fn(height, width):
        return feature_extractor.CalculateReceptiveBoxes(height, width, 291, 32, 145)

    np.testing.assert_array_equal(boxes_fn(3, 4).numpy(),
                                  feature_extractor.CalculateReceptiveBoxes(3, 4, 291, 32, 145))


def test_keypoint_centers_tensor_and_array():
    boxes = np.array([[-145, -145, 145, 145], [-145, -113, 145, 177]], np.float32)
    expected = [[0, 0], [0, 32]]
    np.testing.assert_array_equal(feature_extractor.CalculateKeypointCenters(boxes), expected)
    np.testing.assert_array_equal(
            feature_extractor.CalculateKeypointCenters(tf.constant(boxes)).numpy(), expected)


def test_feature_stride():
    assert feature_extractor.feature_stride(True) == 32
    assert feature_extractor.feature_stride(False) == 16


PCA_MATRIX = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 1.0], [5.0, 5.0, 5.0]], np.float32)
PCA_MEAN = np.array([1.0, 2.0, 3.0], np.float32)
PCA_VARIANCES = np.array([4.0, 1.0, 9.0], np.float32)


def test_pca_whitening_spec_example():
    out = feature_extractor.ApplyPcaAndWhitening(
            np.array([[1.0, 2.0, -2.0]]), PCA_MATRIX, PCA_MEAN, 2, use_whitening=True,
            pca_variances=PCA_VARIANCES)
    np.testing.assert_allclose(out, [[2.5, -5.0]])


def test_pca_without_whitening():
    out = feature_extractor.ApplyPcaAndWhitening(
            np.array([[1.0, 2.0, -2.0]]), PCA_MATRIX, PCA_MEAN, 2)
    np.testing.assert_allclose(out, [[5.0, -5.0]])
    with pytest.raises(ValueError, match="pca_variances"):
        feature_extractor.ApplyPcaAndWhitening(np.ones([1, 3]), PCA_MATRIX, PCA_MEAN, 2, True)


def test_post_process_descriptors_l2_pca_l2():
    data = np.array([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(
            feature_extractor.PostProcessDescriptors(data, use_pca=False),
            [[0.6, 0.0, 0.8], [0.0, 0.0, 0.0]])

    params = postprocess.PcaParameters(mean=PCA_MEAN, matrix=PCA_MATRIX, output_dim=2,
                                       use_whitening=True, variances=PCA_VARIANCES)
    out = feature_extractor.PostProcessDescriptors(data[:1], True, params)
    projected = ((data[:1] / 5.0 - PCA_MEAN) @ PCA_MATRIX[:2].T) / np.sqrt(PCA_VARIANCES[:2])
    np.testing.assert_allclose(out, projected / np.linalg.norm(projected), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    # The original's dict layout gives the same result.
    as_dict = {"mean": PCA_MEAN, "matrix": PCA_MATRIX, "dim": 2, "use_whitening": True,
               "variances": PCA_VARIANCES}
    np.testing.assert_array_equal(
            feature_extractor.PostProcessDescriptors(data[:1], True, as_dict), out)


def test_delf_feature_post_processing():
    boxes = np.array([[0, 0, 10, 20], [-5, -5, 5, 5]], np.float32)
    descriptors = np.array([[2.0, 0.0], [0.0, -3.0]], np.float32)
    locations, out = feature_extractor.DelfFeaturePostProcessing(boxes, descriptors, False)
    np.testing.assert_array_equal(locations, [[5, 10], [0, 0]])
    np.testing.assert_array_equal(out, [[1, 0], [0, -1]])
