"""Trains a DELF or DELG model on Google Landmarks TFRecords (see delf_tf.training.trainer).

Example (DELG, ResNet-50, two GPUs):
  python tools/train.py --train_file_pattern=/data/tfrecord/train* \
      --validation_file_pattern=/data/tfrecord/validation* --dataset_version=gld_v2_clean \
      --delg_global_features --imagenet_checkpoint=/data/resnet50_imagenet.h5 \
      --distribution_strategy=mirrored --logdir=/tmp/delg
"""

import dataclasses

from absl import app, flags

from delf_tf.tools import common
from delf_tf.training import strategy, trainer

_DEFAULTS = trainer.TrainConfig()

flags.DEFINE_boolean("debug", _DEFAULTS.debug,
                     "Debug mode: eager execution, batch of at most 4, 10 steps.")
flags.DEFINE_string("logdir", _DEFAULTS.logdir,
                    "Directory for checkpoints, export weights, summaries and statistics.")
flags.DEFINE_string("train_file_pattern", _DEFAULTS.train_file_pattern,
                    "Glob of the training TFRecord shards.")
flags.DEFINE_string("validation_file_pattern", _DEFAULTS.validation_file_pattern,
                    "Glob of the validation TFRecord shards (validation is skipped if none).")
flags.DEFINE_enum("dataset_version", _DEFAULTS.dataset_version,
                  ["gld_v1", "gld_v2", "gld_v2_clean"],
                  "Google Landmarks version; sets the number of classes.")
flags.DEFINE_integer("num_classes", None,
                     "Number of classes of a custom dataset; overrides --dataset_version.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of the input pipeline and TensorFlow.")
flags.DEFINE_float("initial_lr", _DEFAULTS.initial_lr,
                   "Initial learning rate; decays linearly to 0 at max_iters.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size,
                     "Global batch size (over all replicas).")
flags.DEFINE_integer("max_iters", _DEFAULTS.max_iters, "Number of training steps.")
flags.DEFINE_boolean("block3_strides", _DEFAULTS.block3_strides,
                     "Stride 32 at block3 (a 1x1 max-pool after stage 4), as the original.")
flags.DEFINE_boolean("use_augmentation", _DEFAULTS.use_augmentation,
                     "Random crops for training (the original's) instead of a plain resize.")
flags.DEFINE_string("imagenet_checkpoint", None,
                    "Keras HDF5 file of ImageNet backbone weights, loaded before the first "
                    "step.")
flags.DEFINE_float("attention_loss_weight", _DEFAULTS.attention_loss_weight,
                   "Weight of the attention classification loss.")
flags.DEFINE_boolean("delg_global_features", _DEFAULTS.delg_global_features,
                     "Train DELG (GeM + embedding + ArcFace) instead of DELF.")
flags.DEFINE_float("delg_gem_power", _DEFAULTS.delg_gem_power, "DELG GeM pooling power.")
flags.DEFINE_integer("delg_embedding_layer_dim", _DEFAULTS.delg_embedding_layer_dim,
                     "DELG global descriptor dimension.")
flags.DEFINE_float("delg_scale_factor_init", _DEFAULTS.delg_scale_factor_init,
                   "DELG cosine classifier scale s.")
flags.DEFINE_float("delg_arcface_margin", _DEFAULTS.delg_arcface_margin,
                   "DELG ArcFace margin m.")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size,
                     "Side of the training images (the ELFM baseline uses 512).")
flags.DEFINE_boolean("delg_learnable_scale", _DEFAULTS.delg_learnable_scale,
                     "Train the ArcFace scale (temperature), starting from "
                     "--delg_scale_factor_init (the ELFM baseline: learnable, sqrt(D) = 45.25 "
                     "for D = 2048, margin 0.15).")
flags.DEFINE_enum("lr_schedule", _DEFAULTS.lr_schedule, ["linear", "cosine"],
                  "Learning-rate decay from --initial_lr to 0 at --max_iters: linear (the "
                  "original DELF/DELG) or cosine (the ELFM baseline).")
flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay,
                   "SGD weight decay (Keras' decoupled form: each step subtracts "
                   "lr * weight_decay * variable); 0 = none, the ELFM baseline uses 1e-4.")
flags.DEFINE_boolean("use_autoencoder", _DEFAULTS.use_autoencoder,
                     "Train the local-feature autoencoder (dimension reduction).")
flags.DEFINE_float("reconstruction_loss_weight", _DEFAULTS.reconstruction_loss_weight,
                   "Weight of the autoencoder reconstruction loss.")
flags.DEFINE_integer("autoencoder_dimensions", _DEFAULTS.autoencoder_dimensions,
                     "Local descriptor dimension after the autoencoder.")
flags.DEFINE_integer("local_feature_map_channels", _DEFAULTS.local_feature_map_channels,
                     "Channels of the autoencoder's reconstruction (block3's depth).")
flags.DEFINE_enum("backbone", _DEFAULTS.backbone, ["resnet50", "resnet101", "resnet_tiny"],
                  "Backbone network (resnet_tiny: one block per stage, for tests).")
flags.DEFINE_enum("distribution_strategy", _DEFAULTS.distribution_strategy,
                  list(strategy.STRATEGIES),
                  "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.")
flags.DEFINE_string("tpu", None, "TPU name or address for --distribution_strategy=tpu.")
flags.DEFINE_boolean("mixed_precision", _DEFAULTS.mixed_precision,
                     "Mixed precision (float16 on GPU, bfloat16 on TPU) with loss scaling.")
flags.DEFINE_integer("report_interval", _DEFAULTS.report_interval,
                     "Steps between summaries, log lines and attention statistics.")
flags.DEFINE_integer("eval_interval", _DEFAULTS.eval_interval,
                     "Steps between validation runs (0: never).")
flags.DEFINE_integer("save_interval", _DEFAULTS.save_interval,
                     "Steps between checkpoints and weight exports.")
flags.DEFINE_integer("num_eval_batches", _DEFAULTS.num_eval_batches,
                     "Validation batches per evaluation.")

flags.DEFINE_boolean("deterministic", _DEFAULTS.deterministic,
                     "Reproducible training: the same --seed gives the same weights (fixed "
                     "input order, deterministic and single-threaded TensorFlow kernels; "
                     "slower).")

FLAGS = flags.FLAGS


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors(OSError):
        config = trainer.TrainConfig(
                **{field.name: FLAGS[field.name].value
                   for field in dataclasses.fields(trainer.TrainConfig)})
        trainer.Train(config)


if __name__ == "__main__":
    app.run(main)
