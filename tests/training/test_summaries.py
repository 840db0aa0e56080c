"""Tests for delf_tf.training.summaries and delf_tf.training.strategy."""

import os

import numpy as np
import pytest
import tensorflow as tf

from delf_tf.training import strategy, summaries


def test_attention_stats_percentiles():
    stats = summaries.AttentionStats()
    assert stats.result() is None
    values = np.arange(1, 201, dtype=np.float32)
    stats.add(values[:100].reshape(4, 5, 5, 1))
    stats.add(values[100:].reshape(4, 5, 5, 1))
    result = stats.result()
    assert result["num_batches"] == 2 and result["num_values"] == 200
    assert (result["min"], result["max"], result["mean"]) == (1.0, 200.0, 100.5)
    assert sorted(result["percentiles"], key=int) == [str(p) for p in summaries.PERCENTILES]
    assert result["percentiles"]["50"] == pytest.approx(np.percentile(values, 50))
    stats.reset()
    assert stats.result() is None


def test_attention_stats_subsample_large_batches():
    stats = summaries.AttentionStats(max_values_per_batch=1000)
    stats.add(np.linspace(0, 1, 10_000))
    result = stats.result()
    assert result["num_values"] == 1000
    assert result["percentiles"]["50"] == pytest.approx(0.5, abs=0.01)


def test_attention_stats_file_round_trip(tmp_path):
    path = str(tmp_path / summaries.ATTENTION_STATS_FILENAME)
    stats = summaries.AttentionStats()
    stats.add(np.array([1.0, 2.0, 3.0]))
    summaries.WriteAttentionStats(path, 1200, stats.result())
    read = summaries.ReadAttentionStats(path)
    assert read["step"] == 1200 and read["percentiles"]["50"] == 2.0
    assert os.listdir(tmp_path) == [summaries.ATTENTION_STATS_FILENAME]  # no temp file left


def test_activation_sparsity():
    assert summaries.ActivationSparsity(np.array([0.0, 1.0, 0.0, 2.0])) == 0.5


def test_summaries_readable_as_tensorboard_scalars_and_images(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        summaries.WriteScalar("loss/total", 2.5, step=3)
        summaries.WriteImages("batch_images", np.full((4, 5, 6, 3), 0.5, np.float32), step=3,
                              max_outputs=2)
    writer.close()
    (path,) = [os.path.join(tmp_path, name) for name in os.listdir(tmp_path)]
    found = {}
    for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
            found[value.tag] = (value.metadata.plugin_data.plugin_name,
                                tf.make_ndarray(value.tensor))
    assert found["loss/total"][0] == "scalars" and found["loss/total"][1] == 2.5
    plugin, images = found["batch_images"]
    assert plugin == "images" and images[:2].tolist() == [b"6", b"5"] and len(images) == 4
    assert tf.io.decode_png(images[2]).shape == (5, 6, 3)


def test_strategy_selection():
    assert strategy.GetStrategy("default") is tf.distribute.get_strategy()
    assert strategy.WorkerRole(tf.distribute.get_strategy()) == (True, 0)
    assert strategy.WorkerDirectory("/log", True, 0) == "/log"
    assert strategy.WorkerDirectory("/log", False, 2) == "/log/worker_2"
    with pytest.raises(ValueError, match="Unknown distribution strategy"):
        strategy.GetStrategy("horovod")
