"""Whitening maths, and whitening + multi-scale descriptors round-tripping through the
exported SavedModel and the extractor's PCA path."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data

from delf_tf.extraction import extractor
from delf_tf.global_features import extraction, whitening
from delf_tf.models import global_model
from delf_tf.protos import delf_config_pb2


def test_pca_whitening_decorrelates_and_learned_whitening_equalises_pair_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=[400, 4]) @ np.diag([3.0, 1.0, 0.5, 0.1]) + 2.0
    pca = whitening.learn_pca_whitening(x)
    white = (x - pca.mean) @ pca.projection.T / np.sqrt(pca.variances)
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(4), atol=1e-4)
    assert np.all(np.diff(pca.variances) <= 0)
    # Matching pairs differ by noise that is large along axis 0: learned whitening makes the
    # pair differences isotropic (covariance = identity after the projection).
    q = rng.normal(size=[300, 4])
    p = q + rng.normal(size=[300, 4]) * np.array([2.0, 0.1, 0.1, 0.1])
    learned = whitening.learn_whitening(np.concatenate([q, p]), np.arange(300),
                                        np.arange(300, 600))
    diff = (q - p) @ learned.projection.T
    np.testing.assert_allclose(diff.T @ diff / 300, np.eye(4), atol=1e-4)


def _images():
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for k in range(12):
        photo = photos[k % 4]
        y, x = 10 * (k // 4), 15 * (k // 4)
        out.append(np.asarray(Image.fromarray(photo[y:y + 200, x:x + 260]).resize((78, 60))))
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    model = global_model.GlobalFeatureNet("resnet18", "gem", whitening=True, whitening_dim=8,
                                          drop_last_stage=True)
    model.build_for_input()
    root = tmp_path_factory.mktemp("export")
    paths = []
    for k, image in enumerate(_images()):
        paths.append(str(root / f"{k}.png"))
        Image.fromarray(image).save(paths[-1])
    export_path = str(root / "model")
    extraction.ExportGlobalFeatureNet(model, export_path)
    return model, paths, export_path, root


@pytest.mark.parametrize("kind", ["learned", "pca"])
def test_whitening_round_trips_through_the_extractor(exported, kind):
    model, paths, export_path, root = exported
    scales = [1.0, 0.7071]
    vectors = extraction.extract_vectors(model, paths, image_size=1000, scales=scales)
    assert vectors.shape == (12, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    learned = (whitening.learn_whitening(vectors, np.arange(0, 8), np.arange(4, 12))
               if kind == "learned" else whitening.learn_pca_whitening(vectors))
    parameters = whitening.save_whitening(learned, str(root / kind), prefix=kind)
    parameters.pca_dim = 6
    config = delf_config_pb2.DelfConfig(model_path=export_path, image_scales=scales,
                                        use_local_features=False, use_global_features=True)
    config.delf_global_config.use_pca = True
    config.delf_global_config.pca_parameters.CopyFrom(parameters)
    extract = extractor.MakeExtractor(config)
    expected = learned.apply(vectors, dim=6)
    for k, path in enumerate(paths[:3]):
        got = extract(np.asarray(Image.open(path)))["global_descriptor"]
        np.testing.assert_allclose(got, expected[k], atol=2e-4)


def test_export_per_scale_outputs(exported):
    model, paths, export_path, _ = exported
    module = extraction.GlobalFeatureNetModule(model, pool_scales=False)
    image = tf.constant(np.asarray(Image.open(paths[0])))
    out = module.ExtractFeatures(image, tf.constant([1.0, 0.5, 0.25]), tf.constant([0, 2]))
    per_scale = out["global_descriptors"].numpy()
    assert per_scale.shape == (2, 8)
    single = extraction.extract_vectors(model, paths[:1], image_size=1000)[0]
    np.testing.assert_allclose(per_scale[0], single, atol=1e-5)
    loaded = tf.saved_model.load(export_path).signatures["serving_default"]
    assert set(loaded.structured_input_signature[1]) == {
            "input_image", "input_scales", "input_global_scales_ind"}
    assert set(loaded.structured_outputs) == {"global_descriptor"}


def test_original_column_layout_functions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=[3, 50])
    m, p = whitening.pcawhitenlearn(x)
    white = p @ (x - m)
    np.testing.assert_allclose(white @ white.T / 50, np.eye(3), atol=1e-4)
    m, p = whitening.whitenlearn(x, np.arange(25), np.arange(25, 50))
    applied = whitening.whitenapply(x, m, p, dimensions=2)
    assert applied.shape == (2, 50)
    np.testing.assert_allclose(np.linalg.norm(applied, axis=0), 1.0, atol=1e-5)


def test_export_global_features_model_writes_the_savedmodel_and_its_config(exported, tmp_path):
    from delf_tf import config as config_lib
    from delf_tf.global_features import export

    model = exported[0]
    global_model.save_global_model(model, str(tmp_path / "model_weights"))
    options = export.GlobalExportOptions(multiscale="[1, 0.5]", image_size=300,
                                         config_path=str(tmp_path / "c.pbtxt"))
    with pytest.raises(ValueError, match="--multiscale"):
        export.ExportGlobalFeaturesModel(str(tmp_path / "model_weights"), str(tmp_path / "x"),
                                         export.GlobalExportOptions(multiscale="1"))
    assert not (tmp_path / "x").exists()
    written = export.ExportGlobalFeaturesModel(str(tmp_path / "model_weights"),
                                               str(tmp_path / "export"), options)
    assert written == export.GlobalExport(None, str(tmp_path / "c.pbtxt"))
    config = config_lib.ReadDelfConfig(str(tmp_path / "c.pbtxt"))
    assert config.model_path == str(tmp_path / "export") and config.max_image_size == 300
    assert list(config.image_scales) == [1.0, 0.5] and not config.delf_global_config.use_pca
    assert "serving_default" in tf.saved_model.load(str(tmp_path / "export")).signatures
