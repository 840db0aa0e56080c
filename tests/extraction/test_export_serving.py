"""Exports run under the TF1 session loader (the path TF Serving's C++ loader and
`saved_model_cli run` follow), and the export path rules (refuse / overwrite / umask /
atomic replacement)."""

import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.extraction import export
from delf_tf.models import save_weights

SCALES = [0.7071, 1.0]


@pytest.fixture(scope="module")
def image(make_image):
    return make_image(80, 96, seed=3)


@pytest.fixture(scope="module")
def global_export(tmp_path_factory, delg_model):
    path = str(tmp_path_factory.mktemp("global") / "export")
    export.save_module(export.GlobalFeatureModule(
            delg_model, input_scales_list=SCALES, multi_scale_pool_type="average",
            normalize_global_descriptor=True), path)
    return path


def session_run(path, inputs):
    """Loads `path` with tf.compat.v1.saved_model.loader.load into a fresh graph and runs
    serving_default through Session.run, feeding by the signature's tensor names."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        assert set(signature.inputs) == set(inputs)
        feeds = {signature.inputs[name].name: value for name, value in inputs.items()}
        fetches = {name: info.name for name, info in signature.outputs.items()}
        return session.run(fetches, feeds)


def tf2_run(path, inputs):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in
                                                  inputs.items()}).items()}


def local_inputs(image):
    return {"input_image": image, "input_scales": np.array(SCALES, np.float32),
            "input_max_feature_num": np.int32(8), "input_abs_thres": np.float32(-1.0)}


def assert_same_outputs(session_outputs, tf2_outputs):
    assert set(session_outputs) == set(tf2_outputs)
    for name, value in tf2_outputs.items():
        np.testing.assert_allclose(session_outputs[name], value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_tf1_session_loader_runs_all_three_signatures(delg_export, delf_export, global_export,
                                                      delg_model, image):
    delg_inputs = {**local_inputs(image), "input_global_scales_ind": np.array([1], np.int32)}
    delg = session_run(delg_export, delg_inputs)
    assert delg["features"].shape == (8, 128)
    assert_same_outputs(delg, tf2_run(delg_export, delg_inputs))
    # Restored weights, not initial values: the scale-1.0 row is the model's own descriptor.
    from delf_tf.models import normalize_images
    direct = delg_model.build_call(normalize_images(image)[tf.newaxis])[0].numpy()[0]
    np.testing.assert_allclose(delg["global_descriptors"][0], direct, rtol=1e-4, atol=1e-5)

    delf = session_run(delf_export, local_inputs(image))
    assert delf["features"].shape == (8, 1024)
    assert_same_outputs(delf, tf2_run(delf_export, local_inputs(image)))

    global_inputs = {"input_image": image, "input_global_scales_ind": np.array([0, 1], np.int32)}
    pooled = session_run(global_export, global_inputs)
    assert pooled["global_descriptor"].shape == (2048,)
    assert_same_outputs(pooled, tf2_run(global_export, global_inputs))


def test_every_saved_variable_is_one_the_graph_reads(delg_export):
    # One variable per weight; the restore op covers every handle in the graph.
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(delg_export, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    meta_graph = saved_model.meta_graphs[0]
    handles = {node.attr["shared_name"].s.decode() for node in meta_graph.graph_def.node
               if node.op == "VarHandleOp"}
    saved = [node.variable.name for node in meta_graph.object_graph_def.nodes
             if node.WhichOneof("kind") == "variable"]
    assert len(saved) == len(set(saved)) == len(handles)
    assert set(saved) == handles
    assert "backbone/conv1/kernel" in handles


def test_saved_model_cli_run(delg_export, tmp_path, image):
    # The code path of `saved_model_cli run --inputs ...`, in-process (a subprocess would
    # pay the TensorFlow import again): .npy inputs, Session.run, .npy outputs.
    from tensorflow.python.tools import saved_model_cli

    inputs = {**local_inputs(image), "input_global_scales_ind": np.array([0, 1], np.int32)}
    specs = []
    for name, value in inputs.items():
        np.save(tmp_path / f"{name}.npy", value)
        specs.append(f"{name}={tmp_path / name}.npy")
    feeds = saved_model_cli.load_inputs_from_input_arg_string(";".join(specs), "", "")
    outdir = tmp_path / "out"
    saved_model_cli.run_saved_model_with_feed_dict(
            delg_export, "serve", "serving_default", feeds, str(outdir), False)
    outputs = {name: np.load(outdir / f"{name}.npy") for name in
               ("boxes", "features", "scales", "scores", "global_descriptors")}
    assert outputs["global_descriptors"].shape == (2, 2048)
    assert_same_outputs(outputs, tf2_run(delg_export, inputs))


# -- export path ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory, delf_model):
    prefix = str(tmp_path_factory.mktemp("weights") / "delf_weights")
    save_weights(delf_model, prefix)
    return prefix


def test_existing_export_path_refused_without_overwrite(tmp_path, weights):
    target = tmp_path / "export"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(export.ExportPathError, match="--overwrite"):
        export.ExportLocalModel(weights, str(target))
    # With --overwrite, a directory holding anything but a SavedModel is still refused.
    with pytest.raises(export.ExportPathError, match="notes.txt"):
        export.ExportLocalModel(weights, str(target), overwrite=True)
    assert (target / "notes.txt").read_text() == "mine"
    assert os.listdir(target) == ["notes.txt"]
    assert not [e for e in os.listdir(tmp_path) if e != "export"]  # no temporary left
    with pytest.raises(export.ExportPathError, match="not a directory"):
        export.ExportLocalModel(weights, str(target / "notes.txt"), overwrite=True)


def test_export_modes_follow_umask_and_overwrite_replaces(tmp_path, weights, monkeypatch):
    old_mask = os.umask(0o022)
    try:
        target = tmp_path / "new" / "export"
        export.ExportLocalModel(weights, str(target))
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
        assert stat.S_IMODE(os.stat(target.parent).st_mode) == 0o755
        first = (target / "saved_model.pb").stat().st_ino
        (target / "variables" / "stale.txt").write_text("left by an earlier export")

        # An export that fails half-way leaves the previous export untouched.
        def failing_save(*args, **kwargs):
            raise RuntimeError("killed")

        monkeypatch.setattr(tf.saved_model, "save", failing_save)
        with pytest.raises(RuntimeError, match="killed"):
            export.ExportLocalModel(weights, str(target), overwrite=True)
        monkeypatch.undo()
        assert (target / "saved_model.pb").stat().st_ino == first
        assert sorted(os.listdir(target.parent)) == ["export"]

        export.ExportLocalModel(weights, str(target), overwrite=True)
        assert (target / "saved_model.pb").stat().st_ino != first
        assert not (target / "variables" / "stale.txt").exists()
        assert sorted(os.listdir(target.parent)) == ["export"]
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
        assert "serving_default" in tf.saved_model.load(str(target)).signatures
    finally:
        os.umask(old_mask)
