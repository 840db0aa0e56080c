"""The DELF/DELG training loop: one loop for both models under any tf.distribute strategy.

As the original's train.py: SGD with momentum 0.9, learning rate decaying linearly from
`initial_lr` to 0 at `max_iters`, gradients clipped by global norm 10 (after summing over
replicas, so the clip sees the true global gradient), losses from
`delf_tf.models.compute_losses` averaged over the global batch. Model + optimizer + step are
checkpointed in `<logdir>/delf_tf2-ckpt` (resumed automatically); export weights go to
`<logdir>/delf_weights`; TensorBoard summaries to `<logdir>/train_logs`; attention percentiles
to `<logdir>/attention_stats.json` (the extraction threshold is chosen from them).
"""

import dataclasses
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from delf_tf import checks
from delf_tf.data import gld
from delf_tf.models import Delf, Delg, compute_losses
from delf_tf.models import checkpoint as model_checkpoint
from delf_tf.models import weights as model_weights
from delf_tf.progress import Progress
from delf_tf.training import strategy as strategy_lib
from delf_tf.training import summaries

__all__ = [
    # The original's names (the compatibility surface).
    "BuildModel", "LearningRateSchedule", "BuildOptimizer", "CheckTrainConfig", "Train",
    # delf_tf's own API.
    "CHECKPOINT_SUBDIR", "WEIGHTS_NAME", "SUMMARY_SUBDIR", "MAX_CHECKPOINTS_TO_KEEP",
    "MOMENTUM", "CLIP_NORM", "ATTENTION_STATS_STEPS", "NUM_SUMMARY_IMAGES", "TrainConfig",
    "LR_SCHEDULES",
]

logger = logging.getLogger(__name__)

CHECKPOINT_SUBDIR = "delf_tf2-ckpt"
WEIGHTS_NAME = "delf_weights"
SUMMARY_SUBDIR = "train_logs"
MAX_CHECKPOINTS_TO_KEEP = 10
MOMENTUM = 0.9
CLIP_NORM = 10.0
# Attention probabilities are collected over this many training steps before each report.
ATTENTION_STATS_STEPS = 10
NUM_SUMMARY_IMAGES = 3
_LABEL_ERROR_TAG = "Label out of range"


@dataclasses.dataclass
class TrainConfig:
    """Every flag of tools/train.py (the original's names and defaults; the options of the
    ELFM baseline, Hu & Bors 2022, default to the DELG recipe).

    Attributes:
      logdir: Directory for checkpoints, export weights, summaries and statistics.
      train_file_pattern: Glob of the training TFRecord shards.
      validation_file_pattern: Glob of the validation TFRecord shards (validation is skipped if
        none).
      dataset_version: Google Landmarks version; sets the number of classes.
      num_classes: Number of classes of a custom dataset; overrides --dataset_version.
      seed: Seed of the input pipeline and TensorFlow.
      initial_lr: Initial learning rate; decays to 0 at max_iters.
      batch_size: Global batch size (over all replicas).
      max_iters: Number of training steps.
      block3_strides: Stride 32 at block3 (a 1x1 max-pool after stage 4), as the original;
        --noblock3_strides keeps stride 16.
      use_augmentation: Random crops for training (the original's) instead of a plain resize.
      imagenet_checkpoint: Keras HDF5 file of ImageNet backbone weights, loaded before the first
        step.
      attention_loss_weight: Weight of the attention classification loss.
      delg_global_features: Train DELG (GeM + embedding + ArcFace) instead of DELF.
      delg_gem_power: DELG GeM pooling power.
      delg_embedding_layer_dim: DELG global descriptor dimension.
      delg_scale_factor_init: DELG cosine classifier scale s.
      delg_arcface_margin: DELG ArcFace margin m.
      image_size: Side of the training images (the ELFM baseline uses 512).
      use_autoencoder: Whether the model has the local-feature autoencoder (dimension reduction).
      reconstruction_loss_weight: Weight of the autoencoder reconstruction loss.
      autoencoder_dimensions: Local descriptor dimension after the autoencoder.
      local_feature_map_channels: Channels of the autoencoder's reconstruction (block3's depth).
      backbone: Backbone network (resnet_tiny: one block per stage, for tests).
      distribution_strategy: tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.
      tpu: TPU name or address for --distribution_strategy=tpu.
      mixed_precision: Mixed precision (float16 on GPU, bfloat16 on TPU) with loss scaling.
      report_interval: Steps between summaries, log lines and attention statistics.
      eval_interval: Steps between validation runs (0: never).
      save_interval: Steps between checkpoints and weight exports.
      num_eval_batches: Validation batches per evaluation.
      debug: Debug mode: eager execution, batch of at most 4, 10 steps.
      deterministic: Reproducible training: the same --seed gives the same weights (fixed input
        order, deterministic and single-threaded TensorFlow kernels; slower).
      delg_learnable_scale: Train the ArcFace scale (temperature), starting from
        --delg_scale_factor_init (the ELFM baseline: learnable, sqrt(D) = 45.25 for D = 2048,
        margin 0.15).
      lr_schedule: Learning-rate decay from --initial_lr to 0 at --max_iters: linear (the original
        DELF/DELG) or cosine (the ELFM baseline).
      weight_decay: SGD weight decay (Keras' decoupled form: each step subtracts
        lr * weight_decay * variable); 0 = none, the ELFM baseline uses 1e-4.
    """

    logdir: str = "/tmp/delf"
    train_file_pattern: str = "/tmp/data/train*"
    validation_file_pattern: str = "/tmp/data/validation*"
    dataset_version: Literal["gld_v1", "gld_v2", "gld_v2_clean"] = "gld_v1"
    num_classes: int | None = None
    seed: int = 0
    initial_lr: float = 0.01
    batch_size: int = 32
    max_iters: int = 500_000
    block3_strides: bool = True
    use_augmentation: bool = True
    imagenet_checkpoint: str | None = None
    attention_loss_weight: float = 1.0
    delg_global_features: bool = False
    delg_gem_power: float = 3.0
    delg_embedding_layer_dim: int = 2048
    delg_scale_factor_init: float = 45.25
    delg_arcface_margin: float = 0.1
    image_size: int = 321
    use_autoencoder: bool = True
    reconstruction_loss_weight: float = 10.0
    autoencoder_dimensions: int = 128
    local_feature_map_channels: int = 1024
    backbone: Literal["resnet50", "resnet101", "resnet_tiny"] = "resnet50"
    distribution_strategy: str = "default"
    tpu: str | None = None
    mixed_precision: bool = False
    report_interval: int = 100
    eval_interval: int = 1000
    save_interval: int = 1000
    num_eval_batches: int = 100
    debug: bool = False
    deterministic: bool = False
    delg_learnable_scale: bool = False
    lr_schedule: Literal["linear", "cosine"] = "linear"
    weight_decay: float = 0.0


def _use_single_threaded_kernels(progress: Callable[[str], None]) -> None:
    """Runs TensorFlow's CPU kernels on one thread. Op determinism alone does not make the
    multi-threaded CPU convolution gradients reproducible (measured: at 128 px, batch 16 two
    runs differed in 118 of 120 variables; single-threaded, in none)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        if tf.config.threading.get_intra_op_parallelism_threads() != 1:
            progress("warning: TensorFlow was initialised before Train(); --deterministic "
                     "cannot switch to single-threaded kernels, results may still vary")


def _debug_config(config: TrainConfig) -> TrainConfig:
    """Debug mode: eager execution, a tiny batch and a few steps, reporting every step."""
    return dataclasses.replace(
            config,
            batch_size=min(config.batch_size, 4),
            max_iters=min(config.max_iters, 10),
            report_interval=1,
            eval_interval=5,
            save_interval=5,
            num_eval_batches=1)


def BuildModel(config: TrainConfig, num_classes: int) -> Delf:
    """The DELF or DELG model of `config`, with classifier heads, fully built."""
    common = dict(backbone=config.backbone,
                  block3_strides=config.block3_strides,
                  use_dim_reduction=config.use_autoencoder,
                  reduced_dimension=config.autoencoder_dimensions,
                  dim_expand_channels=config.local_feature_map_channels)
    if config.delg_global_features:
        model = Delg(gem_power=config.delg_gem_power,
                     embedding_layer_dim=config.delg_embedding_layer_dim,
                     scale_factor_init=config.delg_scale_factor_init,
                     arcface_margin=config.delg_arcface_margin,
                     learnable_scale=config.delg_learnable_scale,
                     **common)
    else:
        model = Delf(**common)
    model.init_classifiers(num_classes)
    # Variables do not depend on the image size; a small input builds them cheaply.
    model.build_for_input(64)
    return model


LR_SCHEDULES = ("linear", "cosine")


def LearningRateSchedule(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """initial_lr decaying to 0 at max_iters: linearly, or along a half cosine."""
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.initial_lr,
                                                      decay_steps=config.max_iters, alpha=0.0)
    if config.lr_schedule != "linear":
        raise ValueError(f"--lr_schedule must be one of {LR_SCHEDULES}, got "
                         f"{config.lr_schedule!r}")
    return keras.optimizers.schedules.PolynomialDecay(
            config.initial_lr, decay_steps=config.max_iters, end_learning_rate=0.0, power=1.0)


def BuildOptimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """SGD with momentum, the learning-rate schedule and weight decay of `config`."""
    if config.weight_decay < 0:
        raise ValueError(f"--weight_decay must be >= 0, got {config.weight_decay}")
    return keras.optimizers.SGD(learning_rate=LearningRateSchedule(config), momentum=MOMENTUM,
                                weight_decay=config.weight_decay or None)


def _num_classes(config: TrainConfig) -> int:
    if config.num_classes is not None:
        if config.num_classes < 1:
            raise ValueError(f"--num_classes must be positive, got {config.num_classes}")
        return config.num_classes
    return gld.GetNumberOfClasses(config.dataset_version)


def _has_files(pattern: str) -> bool:
    return bool(pattern) and bool(tf.io.gfile.glob(pattern))


def _next_batch(iterator, file_pattern: str):
    """next(iterator); a truncated or corrupt record raises ValueError naming its file."""
    try:
        return next(iterator)
    except tf.errors.DataLossError as e:
        raise gld.CorruptRecordsError(file_pattern, e) from None


class _Trainer:
    """Holds the model, optimizer, datasets and compiled steps of one training run."""

    def __init__(self, config: TrainConfig, strategy: tf.distribute.Strategy,
                 progress: Callable[[str], None]):
        self.config = config
        self.strategy = strategy
        self.progress = progress
        self.num_classes = _num_classes(config)
        self.is_chief, task_id = strategy_lib.WorkerRole(strategy)
        self.worker_dir = strategy_lib.WorkerDirectory(config.logdir, self.is_chief, task_id)
        replicas = strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(f"--batch_size={config.batch_size} must be divisible by the "
                             f"number of replicas ({replicas})")

        with strategy.scope():
            # Model and optimizer fully built inside the scope before strategy.run: variables
            # created later would not be mirrored across replicas.
            self.model = BuildModel(config, self.num_classes)
            if config.imagenet_checkpoint:
                model_weights.load_imagenet_weights(self.model.backbone,
                                                    config.imagenet_checkpoint)
                progress(f"Loaded ImageNet weights from {config.imagenet_checkpoint}")
            optimizer = BuildOptimizer(config)
            # float16 needs loss scaling; bfloat16 (TPU) has float32's range and does not.
            self.loss_scaling = (config.mixed_precision
                                 and config.distribution_strategy != "tpu")
            if self.loss_scaling:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.model.trainable_variables)
            self.optimizer = optimizer
            self.global_step = tf.Variable(
                    0, dtype=tf.int64, trainable=False, name="global_step",
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        self.checkpoint = tf.train.Checkpoint(
                model=self.model, optimizer=self.optimizer, global_step=self.global_step)
        self.manager = tf.train.CheckpointManager(
                self.checkpoint, os.path.join(self.worker_dir, CHECKPOINT_SUBDIR),
                max_to_keep=MAX_CHECKPOINTS_TO_KEEP)

        self.train_dataset = self._distributed_dataset(
                config.train_file_pattern, config.use_augmentation, repeat=True)
        self.validation_dataset = None
        if config.eval_interval > 0 and config.num_eval_batches > 0:
            if _has_files(config.validation_file_pattern):
                self.validation_dataset = self._distributed_dataset(
                        config.validation_file_pattern, augmentation=False, repeat=True)
            else:
                progress(f"No files match --validation_file_pattern="
                         f"{config.validation_file_pattern!r}: validation is skipped")

        if self.is_chief:
            self.writer = tf.summary.create_file_writer(
                    os.path.join(config.logdir, SUMMARY_SUBDIR))
        else:
            self.writer = tf.summary.create_noop_writer()
        self.attention_stats = summaries.AttentionStats()
        self._train_step = tf.function(self._distributed_train_step)
        self._eval_step = tf.function(self._distributed_eval_step)
        self._backbone_endpoints = tf.function(
                lambda images: self.model.backbone(images, training=False)[1])

    def _distributed_dataset(self, pattern: str, augmentation: bool, repeat: bool,
                             skip_steps: int = 0):
        config = self.config

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each step takes one batch per replica; a pipeline feeds the replicas of its
            # worker.
            replicas_per_pipeline = (context.num_replicas_in_sync
                                     // max(context.num_input_pipelines, 1))
            return gld.CreateDataset(
                    pattern,
                    image_size=config.image_size,
                    batch_size=context.get_per_replica_batch_size(config.batch_size),
                    augmentation=augmentation,
                    seed=config.seed,
                    repeat=repeat,
                    deterministic=config.deterministic,
                    num_input_pipelines=context.num_input_pipelines,
                    input_pipeline_id=context.input_pipeline_id,
                    skip_batches=skip_steps * replicas_per_pipeline)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def _check_labels(self, labels: tf.Tensor) -> list[tf.Operation]:
        message = (f"{_LABEL_ERROR_TAG}: labels must be in [0, {self.num_classes}); set "
                   "--num_classes or --dataset_version to match the data (test records "
                   "carry no label and read as -1)")
        return [tf.debugging.assert_non_negative(labels, message=message),
                tf.debugging.assert_less(labels, self.num_classes, message=message)]

    def _losses_and_accuracy(self, outputs, labels) -> dict[str, tf.Tensor]:
        """Per-replica losses (already divided by the global batch) and correct counts."""
        losses = compute_losses(
                outputs, labels, global_batch_size=self.config.batch_size,
                attention_loss_weight=self.config.attention_loss_weight,
                reconstruction_loss_weight=self.config.reconstruction_loss_weight)
        result = dict(losses)
        for key in ("desc", "attn"):
            predictions = tf.argmax(outputs[f"{key}_logits"], axis=-1, output_type=tf.int32)
            result[f"{key}_correct"] = tf.reduce_sum(
                    tf.cast(tf.equal(predictions, labels), tf.float32))
        return result

    def _replica_train_step(self, images, labels):
        with tf.control_dependencies(self._check_labels(labels)):
            labels = tf.identity(labels)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.model.forward(images, labels, training=True)
            result = self._losses_and_accuracy(outputs, labels)
            loss = result["total"]
            if self.loss_scaling:
                loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = [g for g, _ in used]
        context = tf.distribute.get_replica_context()
        # Sum over replicas here so the clip acts on the global gradient (Keras clips each
        # replica's own gradient before its all-reduce).
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.loss_scaling:
            scale = tf.cast(self.optimizer.dynamic_scale, tf.float32)
            grads = [g / scale for g in grads]
        grads, global_norm = tf.clip_by_global_norm(grads, CLIP_NORM)
        if self.loss_scaling:
            grads = [g * scale for g in grads]
        # The optimizer sums the gradients over replicas once more; every replica holds the
        # same clipped global gradient, so each passes its share.
        replicas = tf.cast(context.num_replicas_in_sync, tf.float32)
        grads = [g / replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, [v for _, v in used]))
        self._sync_moving_statistics(context)
        result["grad_norm"] = global_norm
        return result, outputs["attention_prob"]

    def _sync_moving_statistics(self, context: tf.distribute.ReplicaContext) -> None:
        """Averages BatchNorm moving statistics over replicas.

        Keras creates them with aggregation 'none', so each replica (and each worker) would
        otherwise keep the statistics of its own batches and the copies would drift apart.
        """
        if context.num_replicas_in_sync == 1:
            return
        variables = [v for v in self.model.non_trainable_variables
                     if "float" in str(v.dtype)]
        averaged = context.all_reduce(tf.distribute.ReduceOp.MEAN,
                                      [tf.identity(v) for v in variables])
        for variable, value in zip(variables, averaged):
            variable.assign(value)

    def _distributed_train_step(self, images, labels):
        per_replica, attention = self.strategy.run(
                self._replica_train_step, args=(images, labels))
        result = {key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                  for key, value in per_replica.items() if key != "grad_norm"}
        # Identical on every replica (computed from the all-reduced gradient).
        result["grad_norm"] = self.strategy.reduce(
                tf.distribute.ReduceOp.MEAN, per_replica["grad_norm"], axis=None)
        self.global_step.assign_add(1)
        return result, attention

    def _replica_eval_step(self, images, labels):
        with tf.control_dependencies(self._check_labels(labels)):
            labels = tf.identity(labels)
        outputs = self.model.forward(images, labels, training=False)
        return self._losses_and_accuracy(outputs, labels)

    def _distributed_eval_step(self, images, labels):
        per_replica = self.strategy.run(self._replica_eval_step, args=(images, labels))
        return {key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

    def _checkpoint_candidates(self) -> list[str]:
        """Checkpoint prefixes, newest first: every complete `ckpt-N` (its .index file
        written) in the directory, including one written just before a kill that kept
        the `checkpoint` state file from naming it."""
        directory = self.manager.directory
        numbers = set()
        if tf.io.gfile.isdir(directory):
            for name in tf.io.gfile.listdir(directory):
                match = re.fullmatch(r"ckpt-(\d+)\.index", name)
                if match:
                    numbers.add(int(match.group(1)))
        candidates = [os.path.join(directory, f"ckpt-{n}") for n in sorted(numbers, reverse=True)]
        latest = self.manager.latest_checkpoint
        if latest and latest not in candidates:
            candidates.append(latest)
        return candidates

    def remove_stale_temporary_files(self) -> None:
        """Removes what a killed run left half-written in this worker's directory (the
        logdir for the chief, `worker_<id>/` for the others, so no worker touches another's
        writes in progress): `ckpt-N_temp/` directories of an interrupted checkpoint write
        and temporary files of atomic writes."""
        directory = self.manager.directory
        if tf.io.gfile.isdir(directory):
            for name in tf.io.gfile.listdir(directory):
                if re.fullmatch(r"ckpt-\d+_temp/?", name):
                    tf.io.gfile.rmtree(os.path.join(directory, name.rstrip("/")))
        directory = self.worker_dir
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            # `.<file>.<random>.tmp` of atomic writes; `.delf_weights.tmp.*` and
            # `.delf_weights.tmp_temp/` of the export weights' write.
            if name.startswith(".") and (name.endswith((".tmp", ".tmp_temp"))
                                         or ".tmp." in name):
                path = os.path.join(directory, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)

    def restore(self) -> int:
        """Restores the newest complete checkpoint if any (an unreadable one is skipped
        for the one before it); returns the step to continue from."""
        for prefix in self._checkpoint_candidates():
            try:
                tf.train.list_variables(prefix)  # the index and data files are readable
                self.checkpoint.restore(prefix).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as e:
                self.progress(f"Skipping checkpoint {prefix}, it cannot be restored: {e}")
                continue
            self.progress(f"Restored {prefix} at step {int(self.global_step.numpy())}")
            break
        return int(self.global_step.numpy())

    def save(self, step: int) -> None:
        self.manager.save(checkpoint_number=step)
        model_checkpoint.save_weights(self.model, os.path.join(self.worker_dir, WEIGHTS_NAME))

    def evaluate(self) -> dict[str, float]:
        """Losses and accuracies over `num_eval_batches` validation batches."""
        totals: dict[str, float] = {}
        iterator = iter(self.validation_dataset)
        for _ in range(self.config.num_eval_batches):
            images, labels = _next_batch(iterator, self.config.validation_file_pattern)
            for key, value in self._eval_step(images, labels).items():
                totals[key] = totals.get(key, 0.0) + float(value)
        num_batches = self.config.num_eval_batches
        return {
                "validation/loss/total": totals["total"] / num_batches,
                "validation/loss/desc/crossentropy": totals["desc"] / num_batches,
                "validation/loss/attn/crossentropy": totals["attn"] / num_batches,
                "validation/loss/recon/mse": totals["recon"] / num_batches,
                "validation_accuracy/desc":
                        totals["desc_correct"] / (num_batches * self.config.batch_size),
                "validation_accuracy/attn":
                        totals["attn_correct"] / (num_batches * self.config.batch_size),
        }

    def _report_scalars(self, pending: list[dict], images, seconds: float,
                        steps: int) -> dict[str, float]:
        mean = {key: float(np.mean([float(p[key]) for p in pending])) for key in pending[0]}
        scalars = {
                "loss/total": mean["total"],
                "loss/desc/crossentropy": mean["desc"],
                "loss/attn/crossentropy": mean["attn"],
                "loss/recon/mse": mean["recon"],
                "train_accuracy/desc": mean["desc_correct"] / self.config.batch_size,
                "train_accuracy/attn": mean["attn_correct"] / self.config.batch_size,
                "gradient_norm": mean["grad_norm"],
                "learning_rate": float(self.optimizer.learning_rate),
                "global_steps_per_sec": steps / max(seconds, 1e-9),
        }
        if self.loss_scaling:
            # Steps with non-finite gradients are skipped while this scale adapts.
            scalars["loss_scale"] = float(self.optimizer.dynamic_scale.numpy())
        if isinstance(self.model, Delg):
            scalars["scale_factor"] = float(keras.ops.convert_to_numpy(self.model.scale_factor))
        local_images = self.strategy.experimental_local_results(images)[0]
        # The original's image_range/* and sparsity/<block> (zero fraction of each block).
        scalars["image_range/min"] = float(tf.reduce_min(local_images))
        scalars["image_range/max"] = float(tf.reduce_max(local_images))
        for name, activations in self._backbone_endpoints(local_images).items():
            scalars[f"sparsity/{name}"] = summaries.ActivationSparsity(activations.numpy())
        return scalars

    def report(self, step: int, pending: list[dict], images, seconds: float,
               steps: int, attention=None) -> dict[str, float]:
        """Writes the scalars and images of the last `steps` steps. Tags as the original:
        loss/*, train_accuracy/*, learning_rate, global_steps_per_sec, image_range/min|max,
        sparsity/<block>, attention/min|max|mean|percent_<p>, the images batch_images and
        batch_attention; additions under their own names (loss/total, gradient_norm,
        scale_factor, loss_scale)."""
        scalars = self._report_scalars(pending, images, seconds, steps)
        stats = self.attention_stats.result()
        self.attention_stats.reset()
        if stats is not None:
            for key in ("min", "max", "mean"):
                scalars[f"attention/{key}"] = stats[key]
            for percentile, value in stats["percentiles"].items():
                scalars[f"attention/percent_{percentile}"] = value
            if self.is_chief:
                summaries.WriteAttentionStats(
                        os.path.join(self.config.logdir, summaries.ATTENTION_STATS_FILENAME),
                        step, stats)
        with self.writer.as_default(step=step):
            for name, value in scalars.items():
                summaries.WriteScalar(name, value, step)
            local_images = self.strategy.experimental_local_results(images)[0]
            # Back from (x - 128) / 128 to [0, 1] for display.
            summaries.WriteImages("batch_images", (local_images + 1.0) / 2.0, step,
                                  max_outputs=NUM_SUMMARY_IMAGES)
            if attention is not None:
                scores = self.strategy.experimental_local_results(attention)[0]
                scores = tf.cast(scores, tf.float32)
                summaries.WriteImages("batch_attention",
                                      scores / tf.reduce_max(scores + 1e-3), step,
                                      max_outputs=NUM_SUMMARY_IMAGES)
        self.writer.flush()
        return scalars

    def write_validation(self, step: int, scalars: dict[str, float]) -> None:
        with self.writer.as_default(step=step):
            for name, value in scalars.items():
                summaries.WriteScalar(name, value, step)
        self.writer.flush()
        self.progress(f"step {step}: validation accuracy desc "
                      f"{scalars['validation_accuracy/desc']:.4f}, attn "
                      f"{scalars['validation_accuracy/attn']:.4f}")

    def _check_finite_loss(self, step: int, pending: list[dict], history: list[dict]) -> None:
        """Refuses to checkpoint NaN/Inf weights: a non-finite loss since the last report
        stops training (the last checkpoint is kept). With float16 loss scaling such
        steps are skipped by the optimizer instead."""
        if self.loss_scaling:
            return
        losses = [float(p["total"]) for p in pending]
        if history and history[-1]["step"] == step:
            losses.append(history[-1]["loss/total"])
        if not all(np.isfinite(losses)):
            raise ValueError(
                    f"Training diverged: the loss is not finite at step {step} (lower "
                    f"--initial_lr={self.config.initial_lr:g}?); nothing was saved for this "
                    f"step, the last checkpoint in {self.manager.directory} is kept")

    def run(self) -> list[dict[str, float]]:
        config = self.config
        self.progress(f"Training {type(self.model).__name__} ({config.backbone}) with "
                      f"{self.strategy.num_replicas_in_sync} replica(s), global batch "
                      f"{config.batch_size}, {self.num_classes} classes")
        self.remove_stale_temporary_files()
        step = self.restore()
        if step and config.deterministic:
            # The same input order as an uninterrupted run: continue the stream after the
            # batches the restored steps consumed.
            self.train_dataset = self._distributed_dataset(
                    config.train_file_pattern, config.use_augmentation, repeat=True,
                    skip_steps=step)
        if step >= config.max_iters:
            self.progress(f"Already at step {step} >= max_iters={config.max_iters}; "
                          "nothing to do")
            return []
        history = []
        pending: list[dict] = []
        steps = Progress(config.max_iters, "step", log=self.progress, initial=step)
        iterator = iter(self.train_dataset)
        report_start, report_start_step = time.perf_counter(), step
        while step < config.max_iters:
            images, labels = _next_batch(iterator, config.train_file_pattern)
            try:
                result, attention = self._train_step(images, labels)
            except tf.errors.InvalidArgumentError as e:
                detail = [line for line in str(e).splitlines() if _LABEL_ERROR_TAG in line]
                if detail:
                    raise ValueError(detail[0].strip()) from None
                raise
            step += 1
            pending.append(result)
            steps_to_report = -step % config.report_interval
            if steps_to_report < ATTENTION_STATS_STEPS:
                for values in self.strategy.experimental_local_results(attention):
                    self.attention_stats.add(values.numpy())
            if step % config.report_interval == 0 or step == config.max_iters:
                scalars = self.report(step, pending, images,
                                      time.perf_counter() - report_start,
                                      step - report_start_step, attention)
                pending = []
                steps.step(step - steps.done, note=_loss_note(scalars))
                report_start, report_start_step = time.perf_counter(), step
                history.append({"step": step, **scalars})
            if (self.validation_dataset is not None and config.eval_interval > 0
                    and (step % config.eval_interval == 0 or step == config.max_iters)):
                validation = self.evaluate()
                self.write_validation(step, validation)
                if history and history[-1]["step"] == step:
                    history[-1].update(validation)
            if step % config.save_interval == 0 or step == config.max_iters:
                self._check_finite_loss(step, pending, history)
                self.save(step)
        self.progress(f"Finished at step {step}; weights in "
                      f"{os.path.join(self.worker_dir, WEIGHTS_NAME)}")
        return history


def _loss_note(scalars: dict[str, float]) -> str:
    """The losses, learning rate and step rate of a report, for its progress line."""
    return (f"loss {scalars['loss/total']:.4f} (desc {scalars['loss/desc/crossentropy']:.4f}, "
            f"attn {scalars['loss/attn/crossentropy']:.4f}, "
            f"recon {scalars['loss/recon/mse']:.4f}), lr {scalars['learning_rate']:.5f}, "
            f"{scalars['global_steps_per_sec']:.2f} steps/s")


def CheckTrainConfig(config: TrainConfig) -> None:
    """Raises ValueError naming the flag and value of an invalid setting (NaN or
    non-positive learning rate, negative loss weights, zero batch size, ...)."""
    for name in ("report_interval", "save_interval", "max_iters", "batch_size", "image_size",
                 "delg_embedding_layer_dim", "autoencoder_dimensions",
                 "local_feature_map_channels"):
        checks.positive(f"--{name}", getattr(config, name))
    for name in ("initial_lr", "delg_gem_power", "delg_scale_factor_init"):
        checks.positive(f"--{name}", getattr(config, name))
    for name in ("attention_loss_weight", "reconstruction_loss_weight", "delg_arcface_margin",
                 "eval_interval", "num_eval_batches"):
        checks.non_negative(f"--{name}", getattr(config, name))


def Train(config: TrainConfig, progress: Callable[[str], None] = logger.info
          ) -> list[dict[str, float]]:
    """Trains per `config`, resuming from `<logdir>/delf_tf2-ckpt` when it has a checkpoint.

    Returns:
      One dict per report: {'step', 'loss/total', 'loss/desc/crossentropy', ...,
      'validation_accuracy/desc' (on evaluation steps)}.
    """
    if config.debug:
        config = _debug_config(config)
        tf.config.run_functions_eagerly(True)
    CheckTrainConfig(config)
    if not _has_files(config.train_file_pattern):
        raise ValueError(f"No files match --train_file_pattern={config.train_file_pattern!r}")
    if config.deterministic:
        _use_single_threaded_kernels(progress)
    # Multi-worker and TPU strategies must be created before any other TensorFlow op.
    strategy = strategy_lib.GetStrategy(config.distribution_strategy, config.tpu)
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        policy = "mixed_bfloat16" if config.distribution_strategy == "tpu" else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)
    try:
        tf.random.set_seed(config.seed)
        if config.deterministic:
            # Seeds Python, NumPy, TF and Keras' initialisers; op determinism makes the
            # multi-threaded kernels' reductions reproducible (at some speed cost).
            keras.utils.set_random_seed(config.seed)
            tf.config.experimental.enable_op_determinism()
        os.makedirs(config.logdir, exist_ok=True)
        trainer = _Trainer(config, strategy, progress)
        return trainer.run()
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if config.debug:
            tf.config.run_functions_eagerly(False)
