"""Trains a DELF or DELG model on Google Landmarks TFRecords (see delf_tf.training.trainer).

Example (DELG, ResNet-50, two GPUs):
  python tools/train.py --train_file_pattern=/data/tfrecord/train* \
      --validation_file_pattern=/data/tfrecord/validation* --dataset_version=gld_v2_clean \
      --delg_global_features --imagenet_checkpoint=/data/resnet50_imagenet.h5 \
      --distribution_strategy=mirrored --logdir=/tmp/delg
"""

from absl import app

from delf_tf.tools import common, config_flags
from delf_tf.training import strategy, trainer

__all__ = ["main"]

# One flag per TrainConfig field: its name, type, default and help (the class's docstring).
_CONFIG = config_flags.define_config_flags(
    trainer.TrainConfig, choices={"distribution_strategy": strategy.STRATEGIES})


@common.tool_main
def main():
    trainer.Train(_CONFIG.config())


if __name__ == "__main__":
    app.run(main)
