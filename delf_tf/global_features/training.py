"""Training a GlobalFeatureNet on SfM tuples (the original's global-features training job).

Per epoch: learning rate = lr · exp(−0.01 · epoch); negatives of `query_size` training pairs are
mined from a random pool with the current network; the tuples are streamed; every tuple's
images go through the network one at a time (they differ in size) with BatchNorm frozen (one
image per batch gives no usable batch statistics), the ranking loss of the tuple is computed,
and the gradients of `batch_size · update_every` tuples are summed before one optimizer step
(Adam or SGD with momentum, decoupled weight decay). Validation loss on the "val" split, a
checkpoint, and TensorBoard summaries every epoch; Revisited Oxford/Paris mAP every
`test_freq` epochs.

Data layout (the original's): <data_root>/train/<training_dataset>/<training_dataset>.pkl and
.../ims/ (cid2filename layout); <data_root>/test/<name>/gnd_<name>.pkl (or .mat) and
.../jpg/<image>.jpg. Outputs in <directory>: ckpt/ (model + optimizer + epoch, resumable),
train_logs/ (TensorBoard), model_weights(.index/.data/.json) (the final network).
"""

import dataclasses
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from delf_tf.global_features import extraction, sfm
from delf_tf.global_features import tuples as tuples_lib
from delf_tf.io import atomic
from delf_tf.models import global_model, ranking_losses
from delf_tf.models.preprocessing import normalize_images
from delf_tf.progress import Progress
from delf_tf.training import summaries

__all__ = [
    # The original's names (the compatibility surface).
    "TrainGlobalFeatures",
    # delf_tf's own API.
    "LR_DECAY_PER_EPOCH", "TrainGlobalConfig", "parse_scales", "validate", "make_optimizer",
    "build_model", "init_backbone", "TupleStep", "tuples_loss", "train_epoch",
    "evaluate_revisited",
]

logger = logging.getLogger(__name__)

LR_DECAY_PER_EPOCH = 0.01  # lr_epoch = lr * exp(-0.01 * epoch)


@dataclasses.dataclass
class TrainGlobalConfig:
    """Every flag of tools/train_global_features.py (the original's names and defaults; the
    fields from imagenet_checkpoint on are additions: weights to start from, offline, and the
    network's extras).

    Attributes:
      data_root: Folder holding train/<training_dataset>/ and test/<name>/ (layout in the tool's
        description).
      directory: Output folder: checkpoints, TensorBoard logs, history and final weights.
      training_dataset: Training database name: reads train/<name>/<name>.pkl under --data_root.
      test_datasets: Comma-separated Revisited data sets under --data_root/test evaluated every
        --test_freq epochs ('' for none).
      multiscale: Test-time scales, e.g. '[1, 1/2**(1/2), 1/2]'; per-scale descriptors are combined
        by their generalized mean (power = the GeM p without whitening).
      arch: Backbone: ResNet18, ResNet34, ResNet50, ResNet101 (any case), resnet_tiny.
      pool: Global pooling.
      whitening: Train a fully connected whitening layer after pooling.
      loss: Ranking loss.
      loss_margin: Margin of the ranking loss.
      image_size: Training images are shrunk so their longer side is at most this (pixels).
      neg_num: Hard negatives per training tuple.
      query_size: Query/positive pairs drawn per epoch.
      pool_size: Images in the hard-negative pool of each epoch.
      batch_size: Tuples per optimizer step.
      update_every: Sum the gradients of this many batches before each optimizer step (effective
        batch = batch_size x update_every).
      optimizer: adam (AdamW) or sgd (with --momentum); both with decoupled weight decay.
      lr: Initial learning rate; multiplied by exp(-0.01) every epoch.
      momentum: SGD momentum.
      weight_decay: Decoupled weight decay.
      epochs: Number of epochs.
      test_freq: Evaluate --test_datasets every this many epochs (and after the last; 0: never).
      resume: Resume from the latest checkpoint in --directory.
      seed: Random seed (initialisation, pairs, pools, order).
      imagenet_checkpoint: Keras HDF5 ImageNet weights for the backbone (the original downloaded
        them). Default: random initialisation.
      initial_weights: Start the backbone from a DELF/DELG or GlobalFeatureNet checkpoint prefix
        (e.g. <logdir>/delf_weights of tools/train.py).
      drop_last_stage: Leave out the backbone's last stage (HOW's ¬R50).
      gem_power: Addition: initial GeM power p.
      trainable_gem_power: Addition: learn the GeM power p (cnnimageretrieval-pytorch does).
      test_image_size: Addition: image size for the test data sets (default --image_size).
    """

    data_root: str = ""
    directory: str = "/tmp/global_features"
    training_dataset: str = "retrieval-SfM-120k"
    test_datasets: str = "roxford5k,rparis6k"
    multiscale: str = "[1]"
    arch: str = "ResNet101"
    pool: Literal["mac", "spoc", "gem"] = "gem"
    whitening: bool = False
    loss: Literal["contrastive", "triplet"] = "contrastive"
    loss_margin: float = 0.7
    image_size: int = 1024
    neg_num: int = 5
    query_size: int = 2000
    pool_size: int = 20000
    batch_size: int = 5
    update_every: int = 1
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-6
    momentum: float = 0.9
    weight_decay: float = 1e-6
    epochs: int = 100
    test_freq: int = 5
    resume: bool = False
    seed: int = 0
    imagenet_checkpoint: str | None = None
    initial_weights: str | None = None
    drop_last_stage: bool = False
    gem_power: float = 3.0
    trainable_gem_power: bool = False
    test_image_size: int | None = None

    def scales(self) -> list[float]:
        """--multiscale '[1, 1/2**(1/2), 1/2]' -> [1.0, 0.707..., 0.5] (numbers and a/b**c)."""
        return parse_scales(self.multiscale)


def parse_scales(text: str) -> list[float]:
    """'[1, 1/2**(1/2), 0.5]' -> floats; only numbers, + - * / ** and parentheses allowed."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"--multiscale must be a bracketed list such as '[1, 0.5]', got {text!r}")
    allowed = set("0123456789.+-*/() ,eE")
    if not set(body[1:-1]) <= allowed:
        raise ValueError(f"--multiscale {text!r}: only numbers and + - * / ** ( ) are allowed")
    scales = []
    for item in filter(None, (part.strip() for part in body[1:-1].split(","))):
        value = float(eval(item, {"__builtins__": {}}, {}))
        if not value > 0:
            raise ValueError(f"--multiscale {text!r}: scales must be positive, got {value}")
        scales.append(value)
    if not scales:
        raise ValueError(f"--multiscale {text!r} lists no scale")
    return scales


def validate(config: TrainGlobalConfig) -> None:
    """Raises ValueError naming the first bad flag."""
    checks = [("pool", config.pool in ("mac", "spoc", "gem")),
              ("loss", config.loss in ranking_losses.RANKING_LOSSES),
              ("optimizer", config.optimizer in ("adam", "sgd")),
              ("image_size", config.image_size >= 32), ("neg_num", config.neg_num >= 1),
              ("query_size", config.query_size >= 1), ("pool_size", config.pool_size >= 2),
              ("batch_size", config.batch_size >= 1), ("update_every", config.update_every >= 1),
              ("lr", config.lr > 0), ("weight_decay", config.weight_decay >= 0),
              ("epochs", config.epochs >= 1), ("test_freq", config.test_freq >= 0)]
    for name, ok in checks:
        if not ok:
            raise ValueError(f"--{name}={getattr(config, name)!r} is invalid")
    global_model.backbone_name(config.arch)
    config.scales()


def make_optimizer(config: TrainGlobalConfig) -> keras.optimizers.Optimizer:
    """Adam (AdamW: decoupled weight decay) or SGD with momentum and decoupled weight decay."""
    if config.optimizer == "adam":
        return keras.optimizers.AdamW(learning_rate=config.lr, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(learning_rate=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay or None)


def build_model(config: TrainGlobalConfig) -> global_model.GlobalFeatureNet:
    """The network of `config`, built, initialised from imagenet_checkpoint / initial_weights."""
    model = global_model.GlobalFeatureNet(
            config.arch, config.pool, config.whitening, gem_power=config.gem_power,
            trainable_gem_power=config.trainable_gem_power,
            drop_last_stage=config.drop_last_stage)
    model.build_for_input()
    if config.imagenet_checkpoint:
        from delf_tf.models.weights import load_imagenet_weights
        load_imagenet_weights(model.backbone, config.imagenet_checkpoint)
    if config.initial_weights:
        init_backbone(model, config.initial_weights)
    return model


def init_backbone(model: global_model.GlobalFeatureNet, prefix: str) -> None:
    """Copies the backbone of a DELF/DELG or GlobalFeatureNet checkpoint at `prefix` (both keep
    it under model.backbone) into `model`; every backbone variable must be found."""
    if not tf.io.gfile.exists(prefix + ".index"):
        raise FileNotFoundError(f"No checkpoint at --initial_weights={prefix} "
                                f"(missing {prefix}.index)")
    holder = tf.train.Checkpoint(backbone=model.backbone)
    status = tf.train.Checkpoint(model=holder).read(prefix)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(f"--initial_weights={prefix}: its backbone does not match --arch "
                         f"{model.meta['architecture']}: {error}") from None


class TupleStep:
    """Loss and gradients of tuples; gradients are summed in accumulators until `apply`.

    `accumulate(images)` takes a tuple of 2 + neg_num uint8 [H, W, 3] images (query, positive,
    negatives) and returns the tuple's loss (float32 scalar).
    """

    def __init__(self, model: global_model.GlobalFeatureNet, optimizer, loss: str,
                 margin: float, neg_num: int):
        self.model = model
        self.optimizer = optimizer
        self.loss_name = loss
        self.margin = margin
        self.neg_num = neg_num
        self.variables = model.trainable_variables
        self.accumulators = [tf.Variable(tf.zeros_like(v), trainable=False)
                             for v in self.variables]
        # Optimizer slots are created here, not on the first traced apply.
        optimizer.build(self.variables)
        # One traced forward pass, called per image: tracing the network once instead of
        # 2 + neg_num times inline keeps the step's trace short.
        self.forward = tf.function(
                lambda images: model(images, training=False),
                input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
        spec = [tf.TensorSpec([None, None, 3], tf.uint8)] * (2 + neg_num)
        self.accumulate = tf.function(self._accumulate, input_signature=spec)
        self.apply = tf.function(self._apply)

    def _descriptors(self, images):
        # BatchNorm frozen (training=False): one image per forward pass.
        return tf.concat([self.forward(normalize_images(image)[None]) for image in images],
                         axis=0)

    def _loss(self, descriptors):
        return ranking_losses.ranking_loss(
                self.loss_name, descriptors[:1], descriptors[1:2], descriptors[None, 2:],
                self.margin)

    def _accumulate(self, *images):
        with tf.GradientTape() as tape:
            loss = self._loss(self._descriptors(images))
        gradients = tape.gradient(loss, self.variables)
        for accumulator, gradient in zip(self.accumulators, gradients):
            if gradient is not None:
                accumulator.assign_add(tf.convert_to_tensor(gradient))
        return loss

    def _apply(self):
        self.optimizer.apply_gradients(
                [(tf.identity(a), v) for a, v in zip(self.accumulators, self.variables)])
        for accumulator in self.accumulators:
            accumulator.assign(tf.zeros_like(accumulator))


def tuples_loss(tuples: tuples_lib.TuplesDataset, describe, loss: str, margin: float) -> float:
    """Mean loss per tuple of the mined tuples, the images described by `describe(paths, bbxs)`
    (the mining describer: no separate graph to trace for validation)."""
    if tuples.tuples is None:
        raise RuntimeError("create_epoch_tuples must run before tuples_loss")
    images = np.unique(tuples.tuples)
    bbxs = None if tuples.split.bbxs is None else [tuples.split.bbxs[i] for i in images]
    vectors = describe([tuples.paths[i] for i in images], bbxs)
    descriptors = vectors[np.searchsorted(images, tuples.tuples)]   # [T, 2 + N, D]
    total = ranking_losses.ranking_loss(loss, descriptors[:, 0], descriptors[:, 1],
                                        descriptors[:, 2:], margin)
    return float(total) / len(tuples.tuples)


def train_epoch(step: TupleStep, dataset: tf.data.Dataset, tuples_per_update: int,
                log_every: int = 0, log: Callable[[str], None] = logger.info) -> float:
    """One pass over the tuples; an optimizer step every `tuples_per_update` tuples (and for
    the remainder). Returns the mean loss per tuple."""
    losses, pending = [], 0
    for images in dataset:
        losses.append(float(step.accumulate(*images)))
        pending += 1
        if pending == tuples_per_update:
            step.apply()
            pending = 0
        if log_every and len(losses) % log_every == 0:
            log(f"  tuple {len(losses)}: loss {np.mean(losses[-log_every:]):.4f}")
    if pending:
        step.apply()
    return float(np.mean(losses)) if losses else float("nan")


def evaluate_revisited(model: global_model.GlobalFeatureNet, dataset_dir: str, name: str,
                       image_size: int, scales: Sequence[float], msp: float) -> dict:
    """mAP (%) on a Revisited data set: {"medium": ..., "hard": ...}.

    Ground truth: <dataset_dir>/gnd_<name>.pkl if present, else gnd_<name>.mat; images are
    <dataset_dir>/jpg/<image>.jpg; queries are cropped to their bbx.
    """
    from delf_tf.retrieval import dataset as revisited

    pkl = os.path.join(dataset_dir, f"gnd_{name}.pkl")
    gnd_path = pkl if os.path.isfile(pkl) else os.path.join(dataset_dir, f"gnd_{name}.mat")
    queries, index, ground_truth = sfm.ReadGroundTruth(gnd_path)
    jpg = os.path.join(dataset_dir, "jpg")
    describe = functools.partial(extraction.extract_vectors, model, image_size=image_size,
                                 scales=scales, msp=msp)
    index_vectors = describe([os.path.join(jpg, n + ".jpg") for n in index])
    boxes = [g["bbx"] if len(g["bbx"]) == 4 else None for g in ground_truth]
    query_vectors = describe([os.path.join(jpg, n + ".jpg") for n in queries], bbxs=boxes)
    ranks = np.argsort(-(query_vectors @ index_vectors.T), axis=1, kind="stable")
    _, medium, hard = revisited.ParseEasyMediumHardGroundTruth(ground_truth)
    return {"medium": 100.0 * revisited.ComputeMetrics(ranks, medium)[0],
            "hard": 100.0 * revisited.ComputeMetrics(ranks, hard)[0]}


def _describer(model, image_size: int):
    def describe(paths, bbxs):
        return extraction.extract_vectors(model, paths, image_size, bbxs)
    return describe


def _tuple_datasets(config: TrainGlobalConfig):
    """(train TuplesDataset, val TuplesDataset or None) of the SfM training database."""
    train_root = os.path.join(config.data_root, "train", config.training_dataset)
    database = sfm.ReadSfmDatabase(os.path.join(train_root, f"{config.training_dataset}.pkl"))
    if "train" not in database:
        raise ValueError(f"{train_root}: the database has no 'train' split")
    ims_root = os.path.join(train_root, "ims")
    tuples_config = tuples_lib.TuplesConfig(config.neg_num, config.query_size, config.pool_size,
                                            config.image_size)
    train_tuples = tuples_lib.TuplesDataset(database["train"], ims_root, tuples_config,
                                            seed=config.seed)
    val_tuples = (tuples_lib.TuplesDataset(database["val"], ims_root, tuples_config,
                                           seed=config.seed + 1)
                  if "val" in database and len(database["val"].qidxs) else None)
    return train_tuples, val_tuples


def _train_one_epoch(config, epoch, model, optimizer, step, train_tuples, val_tuples) -> dict:
    """Mines the epoch's tuples and trains on them; the epoch's record (losses, timing)."""
    lr = config.lr * math.exp(-LR_DECAY_PER_EPOCH * epoch)
    optimizer.learning_rate = lr
    train_tuples.reseed([config.seed, epoch])
    describe = _describer(model, config.image_size)
    negative_distance = train_tuples.create_epoch_tuples(describe)
    mining_seconds = train_tuples.last_mining_seconds
    train_loss = train_epoch(step, train_tuples.dataset(),
                             config.batch_size * config.update_every)
    record = {"epoch": epoch, "lr": lr, "train_loss": train_loss,
              "negative_distance": negative_distance, "mining_seconds": mining_seconds}
    if val_tuples is not None:
        val_tuples.reseed([config.seed + 1, epoch])
        val_tuples.create_epoch_tuples(describe)
        record["val_loss"] = tuples_loss(val_tuples, describe, config.loss, config.loss_margin)
    return record


def _test_if_due(config, epoch, model, record: dict) -> None:
    """Adds the test data sets' mAPs to `record` every test_freq epochs and at the end."""
    test_names = [n for n in config.test_datasets.split(",") if n.strip()]
    if test_names and config.test_freq and ((epoch + 1) % config.test_freq == 0
                                            or epoch + 1 == config.epochs):
        for name in test_names:
            scores = evaluate_revisited(
                    model, os.path.join(config.data_root, "test", name), name,
                    config.test_image_size or config.image_size, config.scales(),
                    model.multi_scale_power())
            record.update({f"{name}_{k}_map": v for k, v in scores.items()})


def TrainGlobalFeatures(config: TrainGlobalConfig,
                        progress: Callable[[str], None] = logger.info, *,
                        build: Callable[[TrainGlobalConfig], keras.Model] = build_model,
                        save: Callable[[keras.Model, str], None] = global_model.save_global_model,
                        ) -> dict:
    """Runs the training job of `config`; returns {"epochs": [per-epoch records], "test": ...}.

    Each record: epoch, lr, train_loss, val_loss (NaN without a val split), mining_seconds,
    epoch_seconds, and test mAPs when evaluated. Resumes from <directory>/ckpt with --resume.
    `build(config)` makes the network (any model mapping normalised images [1,H,W,3] to
    L2-normalised descriptors, with `meta["outputdim"]`, `min_input_size` and
    `multi_scale_power()`, e.g. HOW's) and `save(model, prefix)` writes the final one.
    """
    validate(config)
    tf.keras.utils.set_random_seed(config.seed)
    train_tuples, val_tuples = _tuple_datasets(config)
    model = build(config)
    optimizer = make_optimizer(config)
    step = TupleStep(model, optimizer, config.loss, config.loss_margin, config.neg_num)
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    os.makedirs(config.directory, exist_ok=True)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(config.directory, "ckpt"),
                                         max_to_keep=3)
    if config.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        progress(f"resumed from {manager.latest_checkpoint} at epoch {int(epoch_var)}")
        # Each epoch draws from its own seed, so a resumed run mines as an uninterrupted one.
    writer = tf.summary.create_file_writer(os.path.join(config.directory, "train_logs"))
    history_path = os.path.join(config.directory, "history.json")
    history = (json.loads(atomic.read_bytes(history_path))
               if config.resume and os.path.isfile(history_path) else [])
    history = [h for h in history if h["epoch"] < int(epoch_var)]

    epochs = Progress(config.epochs, "epoch", log=progress, initial=int(epoch_var))
    for epoch in range(int(epoch_var), config.epochs):
        start = time.perf_counter()
        record = _train_one_epoch(config, epoch, model, optimizer, step, train_tuples,
                                  val_tuples)
        epoch_var.assign(epoch + 1)
        _test_if_due(config, epoch, model, record)
        record["epoch_seconds"] = time.perf_counter() - start
        with writer.as_default():
            for key, value in record.items():
                if key != "epoch":
                    summaries.WriteScalar(key, float(value), epoch + 1)
        writer.flush()
        manager.save(checkpoint_number=epoch + 1)
        history.append(record)
        atomic.write_bytes_atomic(history_path, json.dumps(history, indent=1).encode())
        epochs.step(note=", ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"))
    save(model, os.path.join(config.directory, "model_weights"))
    return {"epochs": history, "model_weights": os.path.join(config.directory, "model_weights")}
