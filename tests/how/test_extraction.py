"""HOW test-time extraction: the strongest features across all scales, files,
SavedModel export run by the generic DELF extractor."""

import numpy as np
import tensorflow as tf

from delf_tf import utils
from delf_tf.extraction import extractor as extractor_lib
from delf_tf.extraction import pyramid
from delf_tf.how import extraction
from delf_tf.how import model as how_model
from delf_tf.io import feature_io
from delf_tf.models import preprocessing
from delf_tf.protos import delf_config_pb2


def _model():
    net = how_model.HowNet("resnet_tiny", output_dim=8, smoothing_size=3)
    net.build_for_input()
    rng = np.random.default_rng(0)
    net.set_whitening(rng.normal(size=[8, net.input_dim]), rng.normal(size=[net.input_dim]))
    return net


def _image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=[150, 200, 3], dtype=np.uint8)


def test_strongest_features_are_chosen_across_scales(tmp_path):
    net = _model()
    image = _image()
    scales = (0.5, 1.0, 2.0)
    module = extraction.HowFeatureModule(net)
    features = extraction.ExtractHowFeatures(module, image, scales=scales, max_feature_num=40)

    # By hand: every cell of every scale, ranked together by ||u||.
    normalized = preprocessing.normalize_images(image)
    all_strengths, all_scales, all_descriptors = [], [], []
    for scale in scales:
        resized = pyramid.resize_to_scale(normalized, scale)[None]
        strengths, descriptors = net.local_features(resized)
        all_strengths.append(strengths.numpy().reshape(-1))
        all_descriptors.append(descriptors.numpy().reshape(-1, 8))
        all_scales.append(np.full(strengths.numpy().size, 1.0 / scale))
    all_strengths = np.concatenate(all_strengths)
    order = np.argsort(-all_strengths)[:40]
    assert len(all_strengths) > 40
    np.testing.assert_allclose(features["strengths"], all_strengths[order], rtol=1e-5)
    np.testing.assert_allclose(features["scales"], np.concatenate(all_scales)[order])
    np.testing.assert_allclose(features["descriptors"],
                               np.concatenate(all_descriptors)[order], atol=1e-5)
    # The kept features come from more than one scale.
    assert len(set(features["scales"])) > 1
    assert np.all(np.diff(features["strengths"]) <= 0)
    assert features["locations"].shape == (40, 2)
    # Locations lie around the image (receptive-field centres).
    assert np.all(features["locations"] > -net.stride)
    assert np.all(features["locations"] < 200 + 2 * net.stride)

    # max_image_size: the image is shrunk first (200 -> 100 px), locations
    # come back in the input image's pixels.
    small = extraction.ExtractHowFeatures(module, image, scales=scales, max_feature_num=40,
                                          max_image_size=100)
    resized, factors = utils.ResizeImage(image, delf_config_pb2.DelfConfig(max_image_size=100))
    assert resized.shape[:2] == (75, 100)
    half = extraction.ExtractHowFeatures(module, resized, scales=scales, max_feature_num=40)
    np.testing.assert_allclose(small["strengths"], half["strengths"], rtol=1e-5)
    np.testing.assert_allclose(small["locations"], half["locations"] / factors, rtol=1e-5)

    path = str(tmp_path / "image.delf")
    extraction.WriteHowFeatures(path, features)
    _, read_scales, descriptors, attention, _ = feature_io.ReadFromFile(path)
    np.testing.assert_allclose(descriptors, features["descriptors"], rtol=1e-6)
    np.testing.assert_allclose(attention, features["strengths"], rtol=1e-6)
    np.testing.assert_allclose(read_scales, features["scales"])


def test_exported_savedmodel_runs_in_the_delf_extractor(tmp_path):
    net = _model()
    prefix = str(tmp_path / "ckpt" / "how")
    how_model.save_how_model(net, prefix)
    export_path = str(tmp_path / "export")
    extraction.ExportHowModel(prefix, export_path)
    config = delf_config_pb2.DelfConfig(model_path=export_path, use_local_features=True,
                                        image_scales=[0.5, 1.0], max_image_size=1024)
    config.delf_local_config.use_pca = False
    config.delf_local_config.max_feature_num = 25
    config.delf_local_config.score_threshold = 0.0
    extract = extractor_lib.MakeExtractor(config)
    theirs = extract(_image())["local_features"]
    ours = extraction.ExtractHowFeatures(extraction.HowFeatureModule(net), _image(),
                                         scales=(0.5, 1.0), max_feature_num=25)
    np.testing.assert_allclose(theirs["attention"].reshape(-1), ours["strengths"], rtol=1e-5)
    np.testing.assert_allclose(theirs["descriptors"], ours["descriptors"], atol=1e-5)
    np.testing.assert_allclose(theirs["locations"], ours["locations"], atol=1e-3)
    assert tf.saved_model.contains_saved_model(export_path)
