"""Exported SavedModels: signature names/dtypes/shapes, and outputs equal to the
in-memory model run through the same algorithm."""

import os

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.extraction import export, feature_extractor, pyramid
from delf_tf.models import normalize_images

SCALES = [0.7071, 1.0, 1.4142]
LOCAL_INPUTS = {
        "input_image": (tf.uint8, [None, None, 3]),
        "input_scales": (tf.float32, [None]),
        "input_max_feature_num": (tf.int32, []),
        "input_abs_thres": (tf.float32, []),
}
GLOBAL_IND = {"input_global_scales_ind": (tf.int32, [None])}


def load_signature(path):
    loaded = tf.saved_model.load(path)
    return loaded, loaded.signatures["serving_default"]


def assert_inputs(signature, expected):
    specs = signature.structured_input_signature[1]
    assert set(specs) == set(expected)
    for name, (dtype, shape) in expected.items():
        assert specs[name].dtype == dtype and specs[name].shape.as_list() == shape, name


def median_attention(model, image):
    _, attention, _ = model.build_call(normalize_images(image)[tf.newaxis])
    return float(np.median(attention.numpy()))


@pytest.fixture(scope="module")
def image(make_image):
    return make_image(96, 128, seed=1)


def test_delg_signature_and_outputs_match_in_memory_model(delg_export, delg_model, image):
    _, signature = load_signature(delg_export)
    assert_inputs(signature, {**LOCAL_INPUTS, **GLOBAL_IND})
    outputs = signature.structured_outputs
    assert set(outputs) == {"boxes", "features", "scales", "scores", "global_descriptors"}
    assert outputs["boxes"].shape.as_list() == [None, 4]
    assert outputs["features"].shape.as_list() == [None, 128]  # depth from the autoencoder
    assert outputs["scores"].shape.as_list() == [None, 1]
    assert outputs["global_descriptors"].shape.as_list() == [None, 2048]

    threshold = median_attention(delg_model, image)
    served = signature(input_image=tf.constant(image), input_scales=tf.constant(SCALES),
                       input_max_feature_num=tf.constant(10),
                       input_abs_thres=tf.constant(threshold),
                       input_global_scales_ind=tf.constant([2, 1]))
    in_memory = pyramid.extract_features(
            tf.constant(image), tf.constant(SCALES), delg_model.build_call,
            stride=32, abs_thres=threshold, max_feature_num=10, use_global=True,
            # resnet_tiny's own block3 field, which the export reads from the model.
            receptive_field=67, padding=33)
    assert served["boxes"].shape == (10, 4)
    for name in ("boxes", "features", "scales", "scores"):
        np.testing.assert_allclose(served[name].numpy(), in_memory[name].numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(served["global_descriptors"].numpy(),
                               in_memory["global_descriptors"].numpy()[[2, 1]],
                               rtol=1e-4, atol=1e-5)
    # Directly: the global row of scale 1.0 is the model's descriptor of the image.
    direct = delg_model.build_call(normalize_images(image)[tf.newaxis])[0].numpy()[0]
    np.testing.assert_allclose(served["global_descriptors"].numpy()[1], direct,
                               rtol=1e-4, atol=1e-5)


def test_delf_export_stride_16_and_depth_1024(delf_export, delf_model, image):
    _, signature = load_signature(delf_export)
    assert_inputs(signature, LOCAL_INPUTS)
    assert set(signature.structured_outputs) == {"boxes", "features", "scales", "scores"}
    assert signature.structured_outputs["features"].shape.as_list() == [None, 1024]
    served = signature(input_image=tf.constant(image), input_scales=tf.constant([1.0]),
                       input_max_feature_num=tf.constant(10**6),
                       input_abs_thres=tf.constant(-1.0))
    # Every cell of the 6x8 stride-16 map is kept; boxes are on the stride-16 grid.
    boxes = served["boxes"].numpy()
    assert len(boxes) == 6 * 8
    np.testing.assert_array_equal(
            np.sort(np.unique(boxes[:, 0])), 16 * np.arange(6) - 145.0)
    expected = feature_extractor.CalculateReceptiveBoxes(6, 8, 291, 16, 145).numpy()
    assert {tuple(b) for b in boxes} == {tuple(b) for b in expected}
    in_memory = pyramid.extract_features(
            tf.constant(image), tf.constant([1.0]), delf_model.build_call,
            stride=16, abs_thres=-1.0, max_feature_num=10**6)
    np.testing.assert_allclose(served["features"].numpy(), in_memory["features"].numpy(),
                               rtol=1e-4, atol=1e-5)


def test_global_export_pooling_and_fixed_scales(tmp_path, delg_model, image):
    path = str(tmp_path / "global")
    export.save_module(export.GlobalFeatureModule(
            delg_model, input_scales_list=SCALES, multi_scale_pool_type="average",
            normalize_global_descriptor=True), path)
    _, signature = load_signature(path)
    assert_inputs(signature, {"input_image": (tf.uint8, [None, None, 3]), **GLOBAL_IND})
    assert set(signature.structured_outputs) == {"global_descriptor"}
    pooled = signature(input_image=tf.constant(image),
                       input_global_scales_ind=tf.constant([0, 2]))["global_descriptor"].numpy()
    rows = pyramid.extract_features(
            tf.constant(image), tf.constant(SCALES), delg_model.build_call,
            stride=32, use_local=False, use_global=True)["global_descriptors"].numpy()
    expected = rows[[0, 2]].mean(axis=0)
    np.testing.assert_allclose(pooled, expected / np.linalg.norm(expected), rtol=1e-4, atol=1e-6)

    module = export.GlobalFeatureModule(delg_model)
    out = module.ExtractFeatures(tf.constant(image), tf.constant(SCALES), tf.constant([1]))
    np.testing.assert_allclose(out["global_descriptors"].numpy(), rows[[1]], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multi_scale_pool_type"):
        export.GlobalFeatureModule(delg_model, multi_scale_pool_type="max")


def test_saved_model_cli_lists_spec_names(delg_export, capsys):
    # What `saved_model_cli show --all --dir <export>` prints, run in-process (a
    # subprocess would pay the TensorFlow import again).
    from tensorflow.python.tools import saved_model_cli

    saved_model_cli._show_all(delg_export)
    shown = capsys.readouterr().out
    assert "signature_def['serving_default']" in shown
    expected = {"input_image": ("DT_UINT8", "(-1, -1, 3)"), "input_scales": ("DT_FLOAT", "(-1)"),
                "input_max_feature_num": ("DT_INT32", "()"),
                "input_abs_thres": ("DT_FLOAT", "()"),
                "input_global_scales_ind": ("DT_INT32", "(-1)"),
                "boxes": ("DT_FLOAT", "(-1, 4)"), "features": ("DT_FLOAT", "(-1, 128)"),
                "scales": ("DT_FLOAT", "(-1)"), "scores": ("DT_FLOAT", "(-1, 1)"),
                "global_descriptors": ("DT_FLOAT", "(-1, 2048)")}
    serving = shown.split("signature_def['serving_default']")[1]
    for name, (dtype, shape) in expected.items():
        entry = serving.split(f"['{name}'] tensor_info:")[1]
        assert entry.split("dtype: ")[1].split()[0] == dtype, name
        assert entry.split("shape: ")[1].split("\n")[0] == shape, name


def test_export_from_checkpoint_without_sidecar_uses_architecture(tmp_path, delf_model, image):
    from delf_tf.models import save_weights

    prefix = str(tmp_path / "delf_weights")
    save_weights(delf_model, prefix)
    os.remove(prefix + ".json")
    architecture = {"backbone": "resnet_tiny", "block3_strides": False, "use_autoencoder": False}
    export.ExportLocalModel(prefix, str(tmp_path / "ok"), architecture=architecture)
    _, signature = load_signature(str(tmp_path / "ok"))
    served = signature(input_image=tf.constant(image), input_scales=tf.constant([1.0]),
                       input_max_feature_num=tf.constant(5), input_abs_thres=tf.constant(-1.0))
    in_memory = pyramid.extract_features(
            tf.constant(image), tf.constant([1.0]), delf_model.build_call,
            stride=16, abs_thres=-1.0, max_feature_num=5)
    np.testing.assert_allclose(served["features"].numpy(), in_memory["features"].numpy(),
                               rtol=1e-4, atol=1e-5)

    # The checkpoint has no autoencoder: restoring into a model with one fails, and
    # nothing is left at the export path.
    with pytest.raises(ValueError, match="does not match"):
        export.ExportLocalModel(prefix, str(tmp_path / "bad"),
                                architecture={**architecture, "use_autoencoder": True})
    assert not os.path.exists(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="--ckpt_path"):
        export.ExportLocalModel(str(tmp_path / "nothing"), str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="unknown architecture"):
        export.ExportLocalModel(prefix, str(tmp_path / "bad"), architecture={"depth": 3})


@pytest.mark.parametrize("shape, scales", [
        ((1, 1), [1.0]),          # 1x1 image
        ((64, 64), [0.0]),        # scale 0
        ((64, 64), [-1.0]),       # negative scale
        ((10, 12), [0.25, 1.0]),  # 3x3 level next to a usable one
])
def test_serving_default_called_directly_on_degenerate_inputs(delg_export, shape, scales):
    # Levels below the backbone's minimum input size are skipped inside the graph,
    # whatever the CPU kernels (oneDNN or not) would do with them.
    _, signature = load_signature(delg_export)
    served = signature(input_image=tf.zeros(shape + (3,), tf.uint8),
                       input_scales=tf.constant(scales, tf.float32),
                       input_max_feature_num=tf.constant(10), input_abs_thres=tf.constant(0.0),
                       input_global_scales_ind=tf.constant([0]))
    assert served["features"].shape[-1] == 128 and served["boxes"].shape[-1] == 4
    usable = [s for s in scales if round(min(shape) * s) >= 5]
    assert (served["boxes"].shape[0] > 0) == bool(usable)
    assert np.isfinite(served["global_descriptors"].numpy()).all()
