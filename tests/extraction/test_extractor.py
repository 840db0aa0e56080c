"""MakeExtractor over small exported models: post-processing, coordinates, input
formats, tiny images, and every shipped DelfConfig."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delf_tf import config as config_lib
from delf_tf import utils
from delf_tf.extraction import extractor, feature_extractor, postprocess
from delf_tf.io import datum_io
from delf_tf.protos import delf_config_pb2

CONFIGS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "configs")


def delg_config(model_path, **overrides) -> delf_config_pb2.DelfConfig:
    config = delf_config_pb2.DelfConfig(
            model_path=model_path, image_scales=[0.7071, 1.0], use_local_features=True,
            use_global_features=True, is_tf2_exported=True)
    config.delf_local_config.use_pca = False
    config.delf_local_config.max_feature_num = 10
    config.delf_local_config.score_threshold = 0.0
    config.delf_global_config.use_pca = False
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def delg_extract(delg_export):
    return extractor.MakeExtractor(delg_config(delg_export))


@pytest.fixture(scope="module")
def image(make_image):
    return make_image(96, 128, seed=2)


def serve(extract_fn, image, config):
    """The raw signature outputs for `image` (already resized)."""
    signature = extract_fn.model.signatures["serving_default"]
    scales_ind = list(config.delf_global_config.image_scales_ind) or list(
            range(len(config.image_scales)))
    return signature(input_image=tf.constant(image),
                     input_scales=tf.constant(list(config.image_scales), tf.float32),
                     input_max_feature_num=tf.constant(config.delf_local_config.max_feature_num),
                     input_abs_thres=tf.constant(config.delf_local_config.score_threshold),
                     input_global_scales_ind=tf.constant(scales_ind, tf.int32))


def test_outputs_are_post_processed_signature_outputs(delg_extract, delg_export, image):
    config = delg_config(delg_export)
    features = delg_extract(image)
    raw = serve(delg_extract, image, config)
    local = features["local_features"]
    assert local["descriptors"].shape == (10, 128) and local["descriptors"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(local["descriptors"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(local["descriptors"],
                               postprocess.l2_normalize(raw["features"].numpy()), rtol=1e-5)
    np.testing.assert_allclose(
            local["locations"], feature_extractor.CalculateKeypointCenters(raw["boxes"].numpy()))
    np.testing.assert_allclose(local["attention"], raw["scores"].numpy()[:, 0])
    np.testing.assert_allclose(local["scales"], raw["scales"].numpy())
    per_scale = postprocess.l2_normalize(raw["global_descriptors"].numpy())
    expected = per_scale.sum(axis=0) / np.linalg.norm(per_scale.sum(axis=0))
    assert features["global_descriptor"].shape == (2048,)
    np.testing.assert_allclose(features["global_descriptor"], expected, rtol=1e-5, atol=1e-7)


def test_locations_map_back_to_the_original_image(delg_export, image):
    config = delg_config(delg_export, max_image_size=64)
    config.ClearField("image_scales")
    config.image_scales.append(1.0)
    config.delf_local_config.max_feature_num = 1000
    original = extractor.MakeExtractor(config)(image)["local_features"]["locations"]
    config.delf_local_config.use_resized_coordinates = True
    resized = extractor.MakeExtractor(config)(image)["local_features"]["locations"]
    # 96x128 -> 48x64: a 2x2 stride-32 map whose cell centres are 32 * (i, j).
    np.testing.assert_array_equal(np.unique(resized, axis=0), [[0, 0], [0, 32], [32, 0], [32, 32]])
    np.testing.assert_allclose(original, resized * 2.0)


def test_pca_whitening_and_binarized_output(tmp_path, delg_export, image):
    rng = np.random.RandomState(0)
    config = delg_config(delg_export)
    pca = config.delf_local_config.pca_parameters
    pca.mean_path, pca.projection_matrix_path = str(tmp_path / "m"), str(tmp_path / "p")
    pca.pca_variances_path, pca.pca_dim, pca.use_whitening = str(tmp_path / "v"), 24, True
    mean, matrix = rng.randn(128).astype(np.float32) * 0.01, rng.randn(32, 128).astype(np.float32)
    variances = rng.uniform(0.5, 2.0, 32).astype(np.float32)
    datum_io.WriteToFile(mean, pca.mean_path)
    datum_io.WriteToFile(matrix, pca.projection_matrix_path)
    datum_io.WriteToFile(variances, pca.pca_variances_path)
    config.delf_local_config.use_pca = True

    descriptors = extractor.MakeExtractor(config)(image)["local_features"]["descriptors"]
    raw = postprocess.l2_normalize(serve(extractor.MakeExtractor(config), image, config)
                                   ["features"].numpy())
    expected = postprocess.l2_normalize(((raw - mean) @ matrix[:24].T) / np.sqrt(variances[:24]))
    np.testing.assert_allclose(descriptors, expected, rtol=1e-4, atol=1e-6)

    binary = extractor.MakeExtractor(config, binarize_local_descriptors=True)(image)
    bits = binary["local_features"]["descriptors"]
    assert bits.dtype == np.uint8 and bits.shape == (10, 3)
    np.testing.assert_array_equal(bits, np.packbits(expected > 0, axis=1))


@pytest.mark.parametrize("binarize", [False, True])
def test_no_feature_above_the_threshold_gives_empty_features(delg_export, image, binarize):
    config = delg_config(delg_export)
    config.delf_local_config.score_threshold = 1e9
    features = extractor.MakeExtractor(config, binarize_local_descriptors=binarize)(image)
    local = features["local_features"]
    assert local["locations"].shape == (0, 2)
    assert local["descriptors"].shape == ((0, 16) if binarize else (0, 128))
    assert local["attention"].shape == (0,)
    assert features["global_descriptor"].any()


@pytest.mark.parametrize("shape", [(9, 40), (40, 9), (300, 25)])
def test_images_under_10_pixels_after_resizing_are_empty(delg_export, shape):
    config = delg_config(delg_export, max_image_size=100)  # 300x25 -> 100x8
    features = extractor.MakeExtractor(config)(np.zeros(shape + (3,), np.uint8))
    local = features["local_features"]
    assert local["locations"].shape == (0, 2) and local["descriptors"].shape == (0, 128)
    assert local["scales"].shape == (0,) and local["attention"].shape == (0,)
    assert features["global_descriptor"].shape == (2048,)
    assert not features["global_descriptor"].any()


def test_10_pixel_image_with_scales_too_small_for_the_network(delg_extract, delg_export):
    # At scale 0.25 a 10 px side becomes 2 px: the ResNet stem leaves no cell, the
    # global head of that scale pools nothing; the other scales still count.
    config = delg_config(delg_export)
    config.image_scales.insert(0, 0.25)
    features = extractor.MakeExtractor(config)(np.full([10, 12, 3], 200, np.uint8))
    assert np.isfinite(features["global_descriptor"]).all()
    np.testing.assert_allclose(np.linalg.norm(features["global_descriptor"]), 1.0, rtol=1e-5)
    assert len(features["local_features"]["locations"]) > 0


def test_grayscale_rgba_cmyk_png_inputs(tmp_path, delg_extract, image):
    gray = image.mean(axis=2).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([image, np.full(gray.shape, 128, np.uint8)]), "RGBA").save(
            tmp_path / "rgba.png")
    Image.fromarray(image).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(image).save(tmp_path / "rgb.png")

    def same(a, b):
        np.testing.assert_allclose(a["local_features"]["descriptors"],
                                   b["local_features"]["descriptors"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a["global_descriptor"], b["global_descriptor"], rtol=1e-5,
                                   atol=1e-6)

    reference = delg_extract(image)
    same(delg_extract(np.asarray(utils.RgbLoader(tmp_path / "rgb.png"))), reference)
    same(delg_extract(np.asarray(utils.RgbLoader(tmp_path / "rgba.png"))), reference)
    gray_reference = delg_extract(np.repeat(gray[:, :, None], 3, axis=2))
    same(delg_extract(np.asarray(utils.RgbLoader(tmp_path / "gray.png"))), gray_reference)
    same(delg_extract(gray), gray_reference)  # 2-D arrays are accepted too
    cmyk = np.asarray(utils.RgbLoader(tmp_path / "cmyk.jpg"))
    assert cmyk.shape == image.shape
    assert delg_extract(cmyk)["local_features"]["descriptors"].shape == (10, 128)


def _shipped_delf_configs():
    paths = sorted(glob.glob(os.path.join(CONFIGS_DIR, "*.pbtxt")))
    return [p for p in paths if "aggregation" not in os.path.basename(p)]


def test_all_shipped_delf_configs_are_covered():
    names = {os.path.basename(p) for p in _shipped_delf_configs()}
    assert {"delf_config_example.pbtxt", "delg_gld_config.pbtxt", "r50delg_gld_config.pbtxt",
            "r101delg_gld_config.pbtxt", "r50delg_gldv2clean_config.pbtxt",
            "r101delg_gldv2clean_config.pbtxt"} <= names


@pytest.mark.parametrize("config_path", _shipped_delf_configs(), ids=os.path.basename)
def test_shipped_config_drives_extraction(config_path, tmp_path, delg_export, delf_export,
                                          make_image):
    config = config_lib.ReadDelfConfig(config_path)
    # Random weights give small attention values: keep the shipped threshold's
    # role but let features through.
    config.delf_local_config.score_threshold = 0.0
    config.model_path = delg_export if config.use_global_features else delf_export
    depth = 128 if config.use_global_features else 1024
    for pca_config in (config.delf_local_config.pca_parameters,
                       config.delf_global_config.pca_parameters):
        width = 2048 if pca_config is config.delf_global_config.pca_parameters else depth
        rng = np.random.RandomState(width)
        pca_config.mean_path = str(tmp_path / f"mean{width}")
        pca_config.projection_matrix_path = str(tmp_path / f"proj{width}")
        pca_config.pca_variances_path = str(tmp_path / f"var{width}")
        datum_io.WriteToFile(rng.randn(width).astype(np.float32), pca_config.mean_path)
        datum_io.WriteToFile(rng.randn(64, width).astype(np.float32),
                             pca_config.projection_matrix_path)
        datum_io.WriteToFile(np.ones([64], np.float32), pca_config.pca_variances_path)
    image = make_image(60, 80, seed=5)
    if config.max_image_size > 0:
        config.max_image_size = 64  # keeps the 7-scale pyramid cheap on a tiny model
    features = extractor.MakeExtractor(config)(image)

    assert ("global_descriptor" in features) == config.use_global_features
    local = features["local_features"]
    expected_dim = (config.delf_local_config.pca_parameters.pca_dim
                    if config.delf_local_config.use_pca else depth)
    assert local["descriptors"].shape == (len(local["locations"]), expected_dim)
    assert 0 < len(local["locations"]) <= config.delf_local_config.max_feature_num
    # 7 scales: every feature's scale is 1 / one of them.
    np.testing.assert_allclose(
            np.min(np.abs(local["scales"][:, None] * np.array(config.image_scales)[None] - 1),
                   axis=1), 0, atol=1e-5)
    if config.use_global_features:
        assert features["global_descriptor"].shape == (2048,)
        np.testing.assert_allclose(np.linalg.norm(features["global_descriptor"]), 1.0, rtol=1e-5)


def test_bad_model_path_and_mismatched_signature(tmp_path, delf_export):
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        extractor.MakeExtractor(delg_config(str(tmp_path / "no_such_model")))
    with pytest.raises(ValueError, match="input_global_scales_ind"):
        extractor.MakeExtractor(delg_config(delf_export))  # DELF export, DELG config


def test_tf1_saved_model_is_fed_by_tensor_names(tmp_path):
    """The original's TF1 exports (is_tf2_exported: false) have graph tensors
    named like the signature; a stand-in graph checks the wiring."""
    path = str(tmp_path / "tf1")
    with tf.Graph().as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, 3], name="input_image")
        scales = tf.compat.v1.placeholder(tf.float32, [None], name="input_scales")
        thres = tf.compat.v1.placeholder(tf.float32, [], name="input_abs_thres")
        tf.compat.v1.placeholder(tf.int32, [], name="input_max_feature_num")
        scales_ind = tf.compat.v1.placeholder(tf.int32, [None], name="input_global_scales_ind")
        tf.identity(tf.constant([[0.0, 0.0, 64.0, 32.0], [10.0, 10.0, 30.0, 50.0]]), name="boxes")
        tf.identity(tf.constant([[3.0, 4.0], [0.0, -2.0]]), name="features")
        tf.identity(tf.stack([1.0 / scales[0], 1.0 / scales[1]]), name="scales")
        tf.identity(tf.constant([5.0, 4.0]) + thres, name="scores")
        height = tf.cast(tf.shape(image)[0], tf.float32)
        rows = tf.stack([tf.stack([height, 0.0, 0.0]), tf.constant([0.0, 1.0, 0.0])])
        tf.identity(tf.gather(rows, scales_ind), name="global_descriptors")
        with tf.compat.v1.Session() as session:
            builder = tf.compat.v1.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(session, ["serve"])
            builder.save()

    config = config_lib.ReadDelfConfig(os.path.join(CONFIGS_DIR, "delg_gld_config.pbtxt"))
    assert not config.is_tf2_exported
    config.model_path = path
    config.ClearField("image_scales")
    config.image_scales.extend([0.5, 1.0])
    config.delf_global_config.ClearField("image_scales_ind")
    config.delf_local_config.score_threshold = 0.5
    features = extractor.MakeExtractor(config)(np.zeros([40, 60, 3], np.uint8))
    local = features["local_features"]
    np.testing.assert_allclose(local["locations"], [[32, 16], [20, 30]])
    np.testing.assert_allclose(local["descriptors"], [[0.6, 0.8], [0.0, -1.0]])
    np.testing.assert_allclose(local["scales"], [2.0, 1.0])
    np.testing.assert_allclose(local["attention"], [5.5, 4.5])
    np.testing.assert_allclose(features["global_descriptor"], [0.5**0.5, 0.5**0.5, 0.0],
                               rtol=1e-6)
