"""Tuple training on the embedded demo set: validation loss falls; checkpoints resume."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.global_features import extraction, sfm, training
from delf_tf.global_features import tuples as tuples_lib
from delf_tf.models import global_model


def _config(data_root, directory, **kwargs):
    return training.TrainGlobalConfig(
            data_root=data_root, directory=directory, training_dataset="demo-SfM",
            test_datasets="demo", arch="resnet18", drop_last_stage=True, image_size=48,
            neg_num=2, query_size=16, pool_size=40, batch_size=4, lr=1e-3, **kwargs)


def test_demo_tuples_database_layout(demo_tuples_root):
    db = sfm.ReadSfmDatabase(os.path.join(demo_tuples_root, "train", "demo-SfM", "demo-SfM.pkl"))
    train, val = db["train"], db["val"]
    # 8 clean images per landmark: 6 train, 2 val; clusters = the 4 landmarks.
    assert len(train.cids) == 24 and len(val.cids) == 8
    assert sorted(set(train.cluster.tolist())) == [0, 1, 2, 3]
    assert np.all(train.cluster[train.qidxs] == train.cluster[train.pidxs])
    assert np.all(train.qidxs != train.pidxs)
    assert all(os.path.isfile(p) for p in train.image_paths(
            os.path.join(demo_tuples_root, "train", "demo-SfM", "ims")))


def _val_loss(model, config, val_tuples):
    """Mean contrastive loss per tuple, each image described on its own by `model`."""
    def describe(paths, bbxs):
        return extraction.extract_vectors(model, paths, config.image_size, bbxs)
    return training.tuples_loss(val_tuples, describe, "contrastive", 0.7)


def test_one_epoch_lowers_the_validation_loss_and_resumes(demo_tuples_root, tmp_path):
    directory = str(tmp_path / "run")
    config = _config(demo_tuples_root, directory, epochs=1, test_freq=1)
    # The job seeds then builds its network the same way: this is its starting point.
    tf.keras.utils.set_random_seed(config.seed)
    initial = training.build_model(config)
    db = sfm.ReadSfmDatabase(os.path.join(demo_tuples_root, "train", "demo-SfM", "demo-SfM.pkl"))
    val = tuples_lib.TuplesDataset(
            db["val"], os.path.join(demo_tuples_root, "train", "demo-SfM", "ims"),
            tuples_lib.TuplesConfig(config.neg_num, config.query_size, config.pool_size,
                                    config.image_size), seed=1)
    # Fixed validation tuples, mined with the untrained network.
    val.create_epoch_tuples(lambda paths, bbxs: extraction.extract_vectors(
            initial, paths, config.image_size, bbxs))
    before = _val_loss(initial, config, val)

    first = training.TrainGlobalFeatures(config)
    record = first["epochs"][0]
    assert record["epoch"] == 0 and np.isfinite(record["val_loss"])
    assert np.isfinite(record["train_loss"]) and 0.0 <= record["demo_medium_map"] <= 100.0
    trained = global_model.load_global_model(first["model_weights"])
    after = _val_loss(trained, config, val)
    assert after < 0.9 * before, (before, after)

    # Resuming a finished run restores the checkpoint and trains no further epoch.
    resumed = training.TrainGlobalFeatures(_config(demo_tuples_root, directory, epochs=1,
                                                   test_freq=0, resume=True))
    assert [r["epoch"] for r in resumed["epochs"]] == [0]
    again = global_model.load_global_model(resumed["model_weights"])
    for a, b in zip(trained.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with open(os.path.join(directory, "history.json")) as f:
        assert len(json.load(f)) == 1
    assert any(name.startswith("events") for name in os.listdir(
            os.path.join(directory, "train_logs")))


def test_parse_scales_and_bad_flags():
    assert training.parse_scales("[1, 1/2**(1/2), 1/2]") == pytest.approx([1, 2 ** -0.5, 0.5])
    with pytest.raises(ValueError, match="multiscale"):
        training.parse_scales("[__import__('os')]")
    with pytest.raises(ValueError, match="--pool"):
        training.validate(training.TrainGlobalConfig(pool="rmac"))
