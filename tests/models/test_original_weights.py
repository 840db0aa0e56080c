"""Import of the original's weights: original-layout checkpoints are produced here by
renaming a delf_tf model's variables into the original's names (Keras-2 delf_weights
without prefix, delf_tf2-ckpt with model/ and optimizer state, a SavedModel with the
export module's _model/), imported back, and the forward outputs compared."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.aggregation import codebook
from delf_tf.models import Delf, Delg, load_model, normalize_images, original_weights

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def original_tree(model, extra=None, drop=()):
    """Nested tf.Modules whose object graph has the original's names, holding copies of the
    model's values: {attribute: module or tf.Variable}."""
    root = {}
    values = {original_weights.original_key(k): v.numpy()
              for k, v in original_weights.model_variables_by_key(model).items()}
    values.update(extra or {})
    for key in drop:
        del values[key]
    for key, value in values.items():
        node = root
        parts = key.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = tf.Variable(value)

    def build(node):
        if isinstance(node, tf.Variable):
            return node
        module = tf.Module()
        for name, child in node.items():
            setattr(module, name, build(child))
        return module

    return {name: build(child) for name, child in root.items()}, values


@pytest.fixture(scope="module")
def delg():
    model = Delg(backbone="resnet_tiny")
    model.init_classifiers(7)
    model.build_for_input(64)
    rng = np.random.default_rng(0)
    for variable in model.variables:  # BN statistics and biases away from their defaults
        if "moving" in variable.path or variable.path.endswith("bias"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return normalize_images(rng.integers(0, 256, [2, 72, 88, 3]).astype(np.uint8))


def assert_same_forward(a, b, images):
    for x, y in zip(a.build_call(images), b.build_call(images)):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=0, atol=1e-6)


def test_keras2_delf_weights_layout_imports_with_equal_outputs(tmp_path, delg, images):
    tree, values = original_tree(delg, extra={"backbone/l9z/conv2a/kernel": np.zeros([1])})
    assert "backbone/l2a/conv2a/kernel" in values and "attn_classification/kernel" in values
    assert "cosine_weights" in values
    source = str(tmp_path / "delf_weights")
    tf.train.Checkpoint(**tree).write(source)  # Keras-2 save_weights: no model/ prefix

    # The tool, as a user runs it.
    output = str(tmp_path / "imported" / "delf_weights")
    completed = subprocess.run(
            [sys.executable, os.path.join(_ROOT, "tools", "import_original_weights.py"),
             f"--source_path={source}", f"--output_prefix={output}"],
            capture_output=True, text=True, cwd=_ROOT,
            env={**os.environ, "PYTHONPATH": _ROOT})
    assert completed.returncode == 0, completed.stderr[-3000:]
    print(completed.stdout)
    n = len(delg.variables)
    assert f"assigned {n} variables; 1 source variables unmatched; 0 model variables missing" \
        in completed.stdout
    assert "unmatched source: backbone/l9z/conv2a/kernel [1]: no such variable" \
        in completed.stdout
    imported = load_model(output)
    assert type(imported) is Delg and imported.num_classes == 7
    assert imported.model_config["backbone"] == "resnet_tiny"
    assert_same_forward(delg, imported, images)
    np.testing.assert_array_equal(imported.cosine_weights.numpy(), delg.cosine_weights.numpy())
    np.testing.assert_array_equal(imported.att_fc.kernel.numpy(), delg.att_fc.kernel.numpy())


def test_training_checkpoint_directory_and_saved_model(tmp_path, delg, images):
    tree, _ = original_tree(delg)
    optimizer = tf.Module()
    optimizer.iter = tf.Variable(5, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=tf.Module(), optimizer=optimizer),
            str(tmp_path / "delf_tf2-ckpt"), max_to_keep=2)
    for name, child in tree.items():
        setattr(manager.checkpoint.model, name, child)
    manager.save()
    model, report = original_weights.ImportOriginalWeights(str(tmp_path / "delf_tf2-ckpt"))
    assert not report.unmatched_source and not report.missing
    assert any(k.startswith("optimizer/") for k in report.skipped)
    assert_same_forward(delg, model, images)

    # A SavedModel of an export module holding the model as _model.
    module = tf.Module()
    module._model = manager.checkpoint.model
    tf.saved_model.save(module, str(tmp_path / "saved_model"))
    model, report = original_weights.ImportOriginalWeights(
            str(tmp_path / "saved_model"), include_classifiers=False)
    assert model.num_classes is None
    # attn_classification kernel and bias, cosine_weights (scale_factor is a model constant).
    assert sum("training head left out" in line for line in report.unmatched_source) == 3
    assert_same_forward(delg, model, images)


def test_delf_without_autoencoder_and_errors(tmp_path, images):
    delf = Delf(backbone="resnet_tiny", block3_strides=False, use_dim_reduction=False)
    delf.init_classifiers(3)
    delf.build_for_input(64)
    tree, values = original_tree(delf)
    assert "desc_classification/kernel" in values
    tf.train.Checkpoint(**tree).write(str(tmp_path / "delf"))
    model, report = original_weights.ImportOriginalWeights(str(tmp_path / "delf"),
                                                           block3_strides=False)
    assert type(model) is Delf and model.autoencoder is None and model.num_classes == 3
    assert not report.unmatched_source and not report.missing
    assert_same_forward(delf, model, images)

    # A missing backbone layer is an error naming it; nothing is written.
    tree, _ = original_tree(delf, drop=["backbone/l3a/bn2a/gamma"])
    tf.train.Checkpoint(**tree).write(str(tmp_path / "broken"))
    with pytest.raises(ValueError, match="missing from the source: backbone/l3a/bn2a/gamma"):
        original_weights.ImportOriginalWeights(str(tmp_path / "broken"),
                                               str(tmp_path / "out" / "w"))
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="No checkpoint or SavedModel"):
        original_weights.ImportOriginalWeights(str(tmp_path / "nothing"))


def test_codebook_from_both_checkpoint_layouts(tmp_path):
    clusters = np.arange(12, dtype=np.float32).reshape(4, 3)
    tf.train.Checkpoint(codebook=tf.Variable(clusters)).write(str(tmp_path / "object_graph"))
    np.testing.assert_array_equal(codebook.ReadCodebook(str(tmp_path / "object_graph")),
                                  clusters)
    graph = tf.Graph()
    with graph.as_default():
        variable = tf.compat.v1.Variable(clusters, name="clusters")
        saver = tf.compat.v1.train.Saver([variable])
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(variable.initializer)
            saver.save(session, str(tmp_path / "tf1" / "model.ckpt"))
    np.testing.assert_array_equal(codebook.ReadCodebook(str(tmp_path / "tf1")), clusters)
    tf.train.Checkpoint(other=tf.Variable(clusters)).write(str(tmp_path / "neither"))
    with pytest.raises(ValueError, match="neither a 'clusters' variable nor a 'codebook'"):
        codebook.ReadCodebook(str(tmp_path / "neither"))


def test_import_original_weights_wrapper_passes_import_options(monkeypatch):
    """ImportOriginalWeights is import_original_weights on ImportOptions."""
    seen = []
    monkeypatch.setattr(original_weights, "import_original_weights",
                        lambda *args: seen.append(args) or ("model", "report"))
    assert original_weights.ImportOriginalWeights(
        "src", "out", block3_strides=False, allow_missing=True) == ("model", "report")
    assert seen == [("src", "out", original_weights.ImportOptions(block3_strides=False,
                                                                  allow_missing=True))]
