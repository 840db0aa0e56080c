"""The original's import paths (top package renamed) and the public names its own tests
call: NormalizePixelValues, CalculateKeypointCenters on lists, the backbone's
intermediate outputs by name, global_and_local_forward_pass."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

ALIASES = {
        "delf_tf.python.box_io": "delf_tf.io.box_io",
        "delf_tf.python.datum_io": "delf_tf.io.datum_io",
        "delf_tf.python.feature_io": "delf_tf.io.feature_io",
        "delf_tf.python.utils": "delf_tf.utils",
        "delf_tf.python.feature_extractor": "delf_tf.extraction.feature_extractor",
        "delf_tf.python.feature_aggregation_extractor": "delf_tf.aggregation.extractor",
        "delf_tf.python.feature_aggregation_similarity": "delf_tf.aggregation.similarity",
        "delf_tf.python.examples.extractor": "delf_tf.extraction.extractor",
        "delf_tf.python.datasets.revisited_op.dataset": "delf_tf.retrieval.dataset",
        "delf_tf.python.datasets.google_landmarks_dataset.metrics": "delf_tf.retrieval.gldv2",
        "delf_tf.python.datasets.google_landmarks_dataset.dataset_file_io":
            "delf_tf.retrieval.gldv2",
        "delf_tf.python.detect_to_retrieve.dataset": "delf_tf.retrieval.dataset",
        "delf_tf.python.detect_to_retrieve.aggregation_extraction":
            "delf_tf.aggregation.aggregation_extraction",
        "delf_tf.python.detect_to_retrieve.image_reranking": "delf_tf.matching.reranking",
        "delf_tf.python.training.model.delf_model": "delf_tf.models.delf",
        "delf_tf.python.training.model.delg_model": "delf_tf.models.delg",
        "delf_tf.python.training.model.resnet50": "delf_tf.models.resnet",
        "delf_tf.python.training.model.export_model_utils": "delf_tf.extraction.pyramid",
        "delf_tf.python.training.datasets.googlelandmarks": "delf_tf.data.gld",
        "delf_tf.python.training.losses.ranking_losses": "delf_tf.models.ranking_losses",
        "delf_tf.python.pooling_layers.pooling": "delf_tf.models.pooling",
        "delf_tf.python.normalization_layers.normalization": "delf_tf.models.normalization",
        "delf_tf.python.training.model.global_model": "delf_tf.models.global_model",
        "delf_tf.python.datasets.sfm120k.sfm120k": "delf_tf.global_features.sfm",
        "delf_tf.python.datasets.tuples_dataset": "delf_tf.global_features.tuples",
        "delf_tf.python.datasets.generic_dataset": "delf_tf.global_features.images",
        "delf_tf.python.whiten": "delf_tf.global_features.whitening",
}


@pytest.mark.parametrize("alias", list(ALIASES))
def test_original_import_paths(alias):
    package, _, name = alias.rpartition(".")
    real = importlib.import_module(ALIASES[alias])
    # `from <package> import <name>` and `import <alias>` give the real module.
    assert getattr(__import__(package, fromlist=[name]), name) is real
    assert importlib.import_module(alias) is real


def test_names_used_by_the_originals_code():
    from delf_tf import feature_io  # noqa: F401
    from delf_tf.python.datasets.google_landmarks_dataset import metrics
    from delf_tf.python.datasets.revisited_op import dataset
    from delf_tf.python.training.model import delf_model, delg_model

    assert callable(dataset.ComputeMetrics) and callable(dataset.ReadDatasetFile)
    assert callable(metrics.GlobalAveragePrecision) and callable(metrics.MeanAveragePrecision)
    assert delf_model.Delf and delg_model.Delg


def test_normalize_pixel_values_and_keypoint_centers():
    from delf_tf.python import feature_extractor

    image = tf.constant([[[0, 128, 255]]], tf.uint8)
    np.testing.assert_allclose(feature_extractor.NormalizePixelValues(image).numpy(),
                               [[[-1.0, 0.0, 127.0 / 128.0]]])
    np.testing.assert_allclose(
            feature_extractor.NormalizePixelValues(image, pixel_value_offset=0.0,
                                                   pixel_value_scale=255.0).numpy(),
            [[[0.0, 128 / 255, 1.0]]], rtol=1e-6)
    centers = feature_extractor.CalculateKeypointCenters([[0, 0, 10, 10], [10, 20, 30, 40]])
    np.testing.assert_allclose(centers, [[5.0, 5.0], [20.0, 30.0]])
    tensor = feature_extractor.CalculateKeypointCenters(tf.constant([[0.0, 0.0, 2.0, 4.0]]))
    np.testing.assert_allclose(tensor.numpy(), [[1.0, 2.0]])


def test_backbone_intermediates_and_global_and_local_forward_pass():
    from delf_tf.python.training.model import delg_model

    model = delg_model.Delg(backbone="resnet_tiny")
    model.build_for_input(64)
    images = tf.random.stateless_uniform([1, 96, 96, 3], [0, 1], -1.0, 1.0)
    blocks = {}
    output = model.backbone.build_call(images, training=False, intermediates_dict=blocks)
    assert sorted(blocks) == ["block0", "block0mp", "block1", "block2", "block3", "block4"]
    assert blocks["block0"].shape == (1, 48, 48, 64)
    assert blocks["block0mp"].shape == (1, 23, 23, 64)
    assert blocks["block3"].shape[-1] == 1024 and blocks["block4"].shape[-1] == 2048
    assert output.shape == (1, 2048)

    (desc_prelogits, attn_prelogits, attn_scores, backbone_blocks, expanded,
     reduced) = model.global_and_local_forward_pass(images, training=False)
    global_descriptor, attention, local_features = model.build_call(images)
    np.testing.assert_allclose(desc_prelogits.numpy(), global_descriptor.numpy(), atol=1e-5)
    np.testing.assert_allclose(attn_scores.numpy(), attention.numpy(), atol=1e-6)
    np.testing.assert_allclose(reduced.numpy(), local_features.numpy(), atol=1e-6)
    assert attn_prelogits.shape == (1, 1024) and expanded.shape[-1] == 1024
    assert set(backbone_blocks) == set(blocks)
