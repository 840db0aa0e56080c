"""Trains a DELF or DELG model on Google Landmarks TFRecords (see delf_tf.training.trainer).

Example (DELG, ResNet-50, two GPUs):
  python tools/train.py --train_file_pattern=/data/tfrecord/train* \
      --validation_file_pattern=/data/tfrecord/validation* --dataset_version=gld_v2_clean \
      --delg_global_features --imagenet_checkpoint=/data/resnet50_imagenet.h5 \
      --distribution_strategy=mirrored --logdir=/tmp/delg
"""

from absl import app, flags

from delf_tf.tools import common, extraction_flags
from delf_tf.training import strategy, trainer

__all__ = ["main"]

_D = trainer.TrainConfig()

_DEBUG = flags.DEFINE_boolean(
    "debug", _D.debug,
    "Debug mode: eager execution, batch of at most 4, 10 steps.")
_LOGDIR = flags.DEFINE_string(
    "logdir", _D.logdir,
    "Directory for checkpoints, export weights, summaries and statistics.")
_TRAIN_FILE_PATTERN = flags.DEFINE_string(
    "train_file_pattern", _D.train_file_pattern,
    "Glob of the training TFRecord shards.")
_VALIDATION_FILE_PATTERN = flags.DEFINE_string(
    "validation_file_pattern", _D.validation_file_pattern,
    "Glob of the validation TFRecord shards (validation is skipped if none).")
_DATASET_VERSION = flags.DEFINE_enum(
    "dataset_version", _D.dataset_version, ["gld_v1", "gld_v2", "gld_v2_clean"],
    "Google Landmarks version; sets the number of classes.")
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", None,
    "Number of classes of a custom dataset; overrides --dataset_version.")
_SEED = flags.DEFINE_integer(
    "seed", _D.seed,
    "Seed of the input pipeline and TensorFlow.")
_INITIAL_LR = flags.DEFINE_float(
    "initial_lr", _D.initial_lr,
    "Initial learning rate; decays to 0 at max_iters.")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", _D.batch_size,
    "Global batch size (over all replicas).")
_MAX_ITERS = flags.DEFINE_integer(
    "max_iters", _D.max_iters,
    "Number of training steps.")
_USE_AUGMENTATION = flags.DEFINE_boolean(
    "use_augmentation", _D.use_augmentation,
    "Random crops for training (the original's) instead of a plain resize.")
_IMAGENET_CHECKPOINT = flags.DEFINE_string(
    "imagenet_checkpoint", None,
    "Keras HDF5 file of ImageNet backbone weights, loaded before the first step.")
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", _D.image_size,
    "Side of the training images (the ELFM baseline uses 512).")
_ARCHITECTURE = extraction_flags.define_architecture_flags(when_exporting=False)
_LOSSES = (
    flags.DEFINE_float(
        "attention_loss_weight", _D.attention_loss_weight,
        "Weight of the attention classification loss."),
    flags.DEFINE_float(
        "reconstruction_loss_weight", _D.reconstruction_loss_weight,
        "Weight of the autoencoder reconstruction loss."))
_DELG = (
    flags.DEFINE_boolean(
        "delg_global_features", _D.delg_global_features,
        "Train DELG (GeM + embedding + ArcFace) instead of DELF."),
    flags.DEFINE_float(
        "delg_gem_power", _D.delg_gem_power,
        "DELG GeM pooling power."),
    flags.DEFINE_integer(
        "delg_embedding_layer_dim", _D.delg_embedding_layer_dim,
        "DELG global descriptor dimension."),
    flags.DEFINE_float(
        "delg_scale_factor_init", _D.delg_scale_factor_init,
        "DELG cosine classifier scale s."),
    flags.DEFINE_float(
        "delg_arcface_margin", _D.delg_arcface_margin,
        "DELG ArcFace margin m."),
    flags.DEFINE_boolean(
        "delg_learnable_scale", _D.delg_learnable_scale,
        "Train the ArcFace scale (temperature), starting from --delg_scale_factor_init (the ELFM "
        "baseline: learnable, sqrt(D) = 45.25 for D = 2048, margin 0.15)."))
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", _D.lr_schedule, ["linear", "cosine"],
    "Learning-rate decay from --initial_lr to 0 at --max_iters: linear (the original DELF/DELG) "
    "or cosine (the ELFM baseline).")
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", _D.weight_decay,
    "SGD weight decay (Keras' decoupled form: each step subtracts lr * weight_decay * variable); "
    "0 = none, the ELFM baseline uses 1e-4.")
_DISTRIBUTION_STRATEGY = flags.DEFINE_enum(
    "distribution_strategy", _D.distribution_strategy, list(strategy.STRATEGIES),
    "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.")
_TPU = flags.DEFINE_string(
    "tpu", None,
    "TPU name or address for --distribution_strategy=tpu.")
_MIXED_PRECISION = flags.DEFINE_boolean(
    "mixed_precision", _D.mixed_precision,
    "Mixed precision (float16 on GPU, bfloat16 on TPU) with loss scaling.")
_INTERVALS = (
    flags.DEFINE_integer(
        "report_interval", _D.report_interval,
        "Steps between summaries, log lines and attention statistics."),
    flags.DEFINE_integer(
        "eval_interval", _D.eval_interval,
        "Steps between validation runs (0: never)."),
    flags.DEFINE_integer(
        "save_interval", _D.save_interval,
        "Steps between checkpoints and weight exports."),
    flags.DEFINE_integer(
        "num_eval_batches", _D.num_eval_batches,
        "Validation batches per evaluation."))
_DETERMINISTIC = flags.DEFINE_boolean(
    "deterministic", _D.deterministic,
    "Reproducible training: the same --seed gives the same weights (fixed input order, "
    "deterministic and single-threaded TensorFlow kernels; slower).")


def _config() -> trainer.TrainConfig:
    return trainer.TrainConfig(**extraction_flags.values(
        _DEBUG, _LOGDIR, _TRAIN_FILE_PATTERN, _VALIDATION_FILE_PATTERN, _DATASET_VERSION,
        _NUM_CLASSES, _SEED, _INITIAL_LR, _BATCH_SIZE, _MAX_ITERS, _USE_AUGMENTATION,
        _IMAGENET_CHECKPOINT, _IMAGE_SIZE, *_ARCHITECTURE.holders, *_LOSSES, *_DELG,
        _LR_SCHEDULE, _WEIGHT_DECAY, _DISTRIBUTION_STRATEGY, _TPU, _MIXED_PRECISION,
        *_INTERVALS, _DETERMINISTIC))


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        trainer.Train(_config())


if __name__ == "__main__":
    app.run(main)
