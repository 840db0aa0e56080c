"""Tests for delf_tf.training.trainer: learning, tf.distribute, resume, summaries.

The data is an easy generated set: each class is a colour plus noise, so a few dozen steps of
the tiny backbone at 48 px are enough to see the loss fall.
"""

import glob
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from delf_tf.models import weights as model_weights
from delf_tf.training import summaries, trainer
from tests.conftest import write_gld_records

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NUM_CLASSES = 4
_COLOURS = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40]])


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> str:
    """Directory with train-* and validation-* shards of the easy 4-class set."""
    rng = np.random.default_rng(0)

    def images():
        for label, colour in enumerate(_COLOURS):
            for k in range(10):
                pixels = np.clip(colour + rng.normal(0, 30, (40, 40, 3)), 0, 255)
                yield f"c{label}_{k}", Image.fromarray(pixels.astype(np.uint8)), label

    return write_gld_records(tmp_path_factory.mktemp("easy"), images(), num_shards=2,
                             generate_train_validation_splits=True)


def _config(records: str, logdir: str, **overrides) -> trainer.TrainConfig:
    settings = dict(
            logdir=logdir,
            train_file_pattern=os.path.join(records, "train-*"),
            validation_file_pattern=os.path.join(records, "validation-*"),
            num_classes=_NUM_CLASSES, backbone="resnet_tiny", image_size=48, batch_size=8,
            delg_global_features=True, report_interval=1, eval_interval=1000,
            save_interval=1000, num_eval_batches=2)
    settings.update(overrides)
    return trainer.TrainConfig(**settings)


def _event_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of the scalar summaries under <logdir>/train_logs."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in glob.glob(os.path.join(logdir, "train_logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalars.setdefault(value.tag, []).append(
                            (event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


def _event_tags(logdir: str) -> set[str]:
    """Tags of every summary (scalars and images) under <logdir>/train_logs."""
    return {value.tag
            for path in glob.glob(os.path.join(logdir, "train_logs", "events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value}


_MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    # Two logical CPU devices; this must happen before TensorFlow initialises.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from delf_tf.training import trainer
    config = trainer.TrainConfig(**json.loads(sys.argv[1]))
    history = trainer.Train(config, progress=lambda message: print(message, flush=True))
    print("HISTORY " + json.dumps(history), flush=True)
    os._exit(0)  # skips TensorFlow's slow teardown; everything is written and flushed
""")


def test_delg_learns_under_mirrored_strategy(records, tmp_path):
    logdir = str(tmp_path / "log")
    # 8 images per replica: BatchNorm over fewer would mostly normalise the colours away.
    config = _config(records, logdir, distribution_strategy="mirrored", max_iters=24,
                     batch_size=16, image_size=32, initial_lr=0.03, report_interval=8,
                     eval_interval=24, save_interval=12)
    result = subprocess.run(
            [sys.executable, "-c", _MIRRORED_SCRIPT, json.dumps(vars(config))],
            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "with 2 replica(s)" in result.stdout
    history = json.loads(result.stdout.split("HISTORY ", 1)[1])
    assert [report["step"] for report in history] == [8, 16, 24]
    losses = [report["loss/total"] for report in history]
    desc_losses = [report["loss/desc/crossentropy"] for report in history]
    assert np.all(np.isfinite(losses))
    # Each report averages its 8 steps; the first 8 are compared with the last 16 (single
    # windows are noisy at this batch size). The training loss that must fall is the global
    # (descriptor) cross-entropy: the total is dominated by 10 x the reconstruction loss, whose
    # target (block3) moves while the backbone learns, so within 24 steps it may not fall.
    assert np.mean(desc_losses[1:]) < 0.6 * desc_losses[0], (desc_losses, losses)
    assert 0.0 <= history[-1]["validation_accuracy/desc"] <= 1.0

    # The SPEC's summaries are in the event files.
    scalars = _event_scalars(logdir)
    # The original's tags, and additions under their own names.
    for tag in ("loss/desc/crossentropy", "loss/attn/crossentropy", "loss/recon/mse",
                "learning_rate", "train_accuracy/desc", "validation_accuracy/desc",
                "attention/percent_25", "attention/percent_50", "attention/percent_75",
                "attention/min", "attention/max", "attention/mean",
                "sparsity/block0", "sparsity/block0mp", "sparsity/block4",
                "global_steps_per_sec", "image_range/min", "image_range/max",
                "scale_factor", "loss/total", "gradient_norm"):
        assert tag in scalars, sorted(scalars)
    assert -1.0 <= scalars["image_range/min"][-1][1] < scalars["image_range/max"][-1][1] <= 1.0
    assert {"batch_images", "batch_attention"} <= _event_tags(logdir)
    assert [step for step, _ in scalars["loss/desc/crossentropy"]] == [8, 16, 24]
    # Linear decay from 0.03 to 0 at step 24.
    assert scalars["learning_rate"][0][1] == pytest.approx(0.03 * (1 - 8 / 24))
    assert scalars["learning_rate"][-1][1] == pytest.approx(0.0, abs=1e-7)

    stats = summaries.ReadAttentionStats(os.path.join(logdir, "attention_stats.json"))
    assert stats["step"] == 24
    assert stats["min"] <= stats["percentiles"]["50"] <= stats["max"]
    assert stats["percentiles"]["50"] == pytest.approx(scalars["attention/percent_50"][-1][1])
    assert sorted(os.listdir(os.path.join(logdir, "delf_tf2-ckpt"))) == [
            "checkpoint", "ckpt-12.data-00000-of-00001", "ckpt-12.index",
            "ckpt-24.data-00000-of-00001", "ckpt-24.index"]
    assert os.path.exists(os.path.join(logdir, "delf_weights.index"))


def _optimizer_slot_total(optimizer) -> float:
    return float(sum(np.abs(v.numpy()).sum() for v in optimizer.variables if len(v.shape)))


def test_resume_continues_step_and_optimizer(records, tmp_path):
    logdir = str(tmp_path / "log")
    first = trainer.Train(_config(records, logdir, max_iters=7, save_interval=5),
                          progress=lambda message: None)
    assert [report["step"] for report in first] == list(range(1, 8))
    checkpoint_dir = os.path.join(logdir, "delf_tf2-ckpt")
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    assert latest.endswith("ckpt-7")  # the last step is saved, not only multiples of 5
    reader = tf.train.load_checkpoint(latest)
    saved_slots = sum(np.abs(reader.get_tensor(name)).sum()
                      for name, shape in tf.train.list_variables(latest)
                      if name.startswith("optimizer/_variables/") and shape)

    # A fresh trainer restores the step, the momentum slots and the iteration count.
    config = _config(records, logdir, max_iters=10)
    restored = trainer._Trainer(config, tf.distribute.get_strategy(), lambda message: None)
    assert _optimizer_slot_total(restored.optimizer) == 0.0
    assert restored.restore() == 7
    assert int(restored.optimizer.iterations.numpy()) == 7
    assert _optimizer_slot_total(restored.optimizer) == pytest.approx(saved_slots, rel=1e-6)
    assert saved_slots > 0

    messages = []
    second = trainer.Train(config, progress=messages.append)
    assert any("Restored" in m and "at step 7" in m for m in messages)
    assert [report["step"] for report in second] == [8, 9, 10]
    final = tf.train.load_checkpoint(tf.train.latest_checkpoint(checkpoint_dir))
    assert final.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 10
    assert final.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 10
    # Learning rate continues on the schedule of the new max_iters.
    assert second[0]["learning_rate"] == pytest.approx(0.01 * (1 - 8 / 10))


def test_labels_out_of_range_are_an_error(records, tmp_path):
    config = _config(records, str(tmp_path / "log"), num_classes=2, max_iters=3,
                     image_size=32, delg_global_features=False)
    with pytest.raises(ValueError, match="labels must be in \\[0, 2\\)"):
        trainer.Train(config, progress=lambda message: None)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_training_is_synchronous(records, tmp_path):
    logdir = str(tmp_path / "log")
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    # What a kill -9 of the non-chief worker leaves behind: its own temporaries.
    stale = [tmp_path / "log" / "worker_1" / "delf_tf2-ckpt" / "ckpt-9_temp",
             tmp_path / "log" / "worker_1" / ".delf_weights.tmp_temp",
             tmp_path / "log" / "worker_1" / ".delf_weights.tmp.index"]
    for path in stale[:2]:
        path.mkdir(parents=True)
    stale[2].write_bytes(b"half")
    processes = []
    for task_id in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": task_id}}))
        processes.append(subprocess.Popen(
                [sys.executable, os.path.join(_REPO, "tools", "train.py"),
                 f"--logdir={logdir}",
                 f"--train_file_pattern={os.path.join(records, 'train-*')}",
                 "--validation_file_pattern=", "--num_classes=4", "--backbone=resnet_tiny",
                 "--image_size=32", "--batch_size=4", "--max_iters=3", "--report_interval=1",
                 "--distribution_strategy=multi_worker_mirrored", "--delg_global_features"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "with 2 replica(s)" in outputs[0]

    chief = tf.train.load_checkpoint(os.path.join(logdir, "delf_weights"))
    other = tf.train.load_checkpoint(os.path.join(logdir, "worker_1", "delf_weights"))
    names = [name for name, shape in tf.train.list_variables(os.path.join(logdir, "delf_weights"))
             if name.startswith("model/")]
    assert len(names) > 50
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name), err_msg=name)
    for directory in (logdir, os.path.join(logdir, "worker_1")):
        step_reader = tf.train.load_checkpoint(
                tf.train.latest_checkpoint(os.path.join(directory, "delf_tf2-ckpt")))
        assert step_reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE") == 3
    assert not [path for path in stale if path.exists()]
    # Only the chief writes summaries.
    assert os.path.isdir(os.path.join(logdir, "train_logs"))
    assert not os.path.exists(os.path.join(logdir, "worker_1", "train_logs"))


def test_imagenet_weights_are_loaded_before_training(records, tmp_path):
    source = trainer.BuildModel(_config(records, str(tmp_path / "a")), _NUM_CLASSES)
    h5_path = str(tmp_path / "backbone.h5")
    model_weights.save_classic_h5(source.backbone, h5_path)
    config = _config(records, str(tmp_path / "log"), imagenet_checkpoint=h5_path)
    messages = []
    run = trainer._Trainer(config, tf.distribute.get_strategy(), messages.append)
    assert any("Loaded ImageNet weights" in m for m in messages)
    # Every conv/BN layer comes from the file (the DELG embedding is not an ImageNet layer).
    loaded = {v.path: v.numpy() for v in run.model.backbone.weights if "embedding" not in v.path}
    expected = {v.path: v.numpy() for v in source.backbone.weights if "embedding" not in v.path}
    assert loaded.keys() == expected.keys() and len(expected) > 50
    for path, value in expected.items():
        np.testing.assert_array_equal(loaded[path], value, err_msg=path)


_DETERMINISTIC_SCRIPT = r"""
import json, sys
from delf_tf.training import trainer
trainer.Train(trainer.TrainConfig(**json.loads(sys.argv[1])), progress=lambda message: None)
"""


def test_deterministic_training_repeats_exactly(records, tmp_path):
    # Two separate processes: op determinism and threading are process-wide, and two runs in
    # one process can agree where two processes do not. 128 px, batch 16: at this size
    # multi-threaded CPU kernels differ from run to run.
    weights = []
    for run in ("a", "b"):
        config = _config(records, str(tmp_path / run), max_iters=6, deterministic=True,
                         image_size=128, batch_size=16, report_interval=6, save_interval=6)
        result = subprocess.run(
                [sys.executable, "-c", _DETERMINISTIC_SCRIPT, json.dumps(vars(config))],
                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        prefix = os.path.join(config.logdir, "delf_weights")
        reader = tf.train.load_checkpoint(prefix)
        weights.append({name: reader.get_tensor(name)
                        for name, _ in tf.train.list_variables(prefix)
                        if "OBJECT_GRAPH" not in name})
    assert weights[0].keys() == weights[1].keys() and len(weights[0]) > 50
    differing = [name for name in weights[0]
                 if not np.array_equal(weights[0][name], weights[1][name])]
    assert not differing, differing[:5]



def test_a_non_finite_loss_is_an_error_before_saving():
    # Before, an --initial_lr large enough to blow up trained NaN weights, saved them and
    # exited 0. The check runs right before each save (see _Trainer.run).
    import types

    run = types.SimpleNamespace(loss_scaling=False, config=trainer.TrainConfig(initial_lr=1e30),
                                manager=types.SimpleNamespace(directory="log/delf_tf2-ckpt"))
    check = trainer._Trainer._check_finite_loss
    check(run, 4, [{"total": tf.constant(2.5)}], [{"step": 3, "loss/total": 2.0}])
    with pytest.raises(ValueError, match="Training diverged: the loss is not finite at step 4 "
                                         ".*initial_lr=1e\\+30.*log/delf_tf2-ckpt is kept"):
        check(run, 4, [{"total": tf.constant(np.nan)}], [])
    with pytest.raises(ValueError, match="at step 5"):
        check(run, 5, [], [{"step": 5, "loss/total": np.inf}])
    run.loss_scaling = True  # float16 loss scaling skips such steps itself
    check(run, 5, [], [{"step": 5, "loss/total": np.inf}])


_KILLED_SCRIPT = r"""
import json, os, signal, sys
from delf_tf.training import trainer
config = trainer.TrainConfig(**json.loads(sys.argv[1]))
kill_at = int(sys.argv[2])
save = trainer._Trainer.save

def save_then_die(self, step):
    if step < kill_at:
        return save(self, step)
    # SIGKILL after the checkpoint files are written but before the `checkpoint` state
    # file names them (the manager updates it last).
    self.checkpoint.write(os.path.join(self.manager.directory, f"ckpt-{step}"))
    os.kill(os.getpid(), signal.SIGKILL)

trainer._Trainer.save = save_then_die
trainer.Train(config, progress=lambda message: None)
"""


def _final_weights(logdir):
    prefix = os.path.join(logdir, "delf_weights")
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(prefix)
            if "OBJECT_GRAPH" not in name}


def test_kill_9_during_a_checkpoint_then_resume_gives_the_uninterrupted_weights(records,
                                                                                tmp_path):
    def config(run):
        return _config(records, str(tmp_path / run), max_iters=4, deterministic=True,
                       image_size=32, batch_size=4, report_interval=4, save_interval=1,
                       eval_interval=0, delg_global_features=False)

    def start(run, kill_at):
        return subprocess.Popen(
                [sys.executable, "-c", _KILLED_SCRIPT, json.dumps(vars(config(run))), kill_at],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # In parallel: an uninterrupted run, and one killed while writing ckpt-2 (ckpt-1 complete).
    reference, killed = start("reference", "1000"), start("resumed", "2")
    for process, code in ((reference, 0), (killed, -9)):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == code, stderr[-3000:]
    checkpoints = tmp_path / "resumed" / "delf_tf2-ckpt"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-1")
    (checkpoints / "ckpt-5_temp").mkdir()  # as a kill during a write leaves it
    (tmp_path / "resumed" / ".attention_stats.json.x1y2z3.tmp").write_text("{")

    trainer_result = subprocess.run(
            [sys.executable, "-c", _DETERMINISTIC_SCRIPT.replace(
                    "lambda message: None", "print"), json.dumps(vars(config("resumed")))],
            capture_output=True, text=True, timeout=300)
    assert trainer_result.returncode == 0, trainer_result.stderr[-3000:]
    messages = trainer_result.stdout
    assert "ckpt-2 at step 2" in messages  # no step lost to the kill
    assert not (checkpoints / "ckpt-5_temp").exists()
    assert not (tmp_path / "resumed" / ".attention_stats.json.x1y2z3.tmp").exists()
    expected, resumed = _final_weights(tmp_path / "reference"), _final_weights(
            tmp_path / "resumed")
    assert expected.keys() == resumed.keys() and len(expected) > 20
    differing = [name for name in expected if not np.array_equal(expected[name], resumed[name])]
    assert not differing, differing[:5]


def test_a_truncated_shard_is_named(records, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(records, data)
    bad = data / "train-00001-of-00002"
    bad.write_bytes(bad.read_bytes()[:-50])
    config = _config(str(data), str(tmp_path / "log"), max_iters=2, image_size=32,
                     batch_size=4, eval_interval=0, delg_global_features=False)
    with pytest.raises(ValueError, match=f"Truncated or corrupt TFRecord file {bad} "):
        trainer.Train(config, progress=lambda message: None)
