r"""Trains a global descriptor (GlobalFeatureNet) on image tuples mined from SfM clusters.

The original's global-features training job (a port of cnnimageretrieval-pytorch): per epoch,
`query_size` query/positive pairs are drawn, `neg_num` hard negatives per query are mined from
a random pool of `pool_size` images with the current network (other clusters only, at most one
per cluster, nearest first), and the network is trained with a contrastive or triplet loss
over the tuples. Validation loss on the database's "val" split every epoch; mAP on Revisited
Oxford/Paris every --test_freq epochs.

Data layout under --data_root:
  train/<training_dataset>/<training_dataset>.pkl    SfM database (train/val splits)
  train/<training_dataset>/ims/                       images, ims/<c[-2:]>/<c[-4:-2]>/<c[-6:-4]>/<c>
  test/<name>/gnd_<name>.pkl (or .mat), test/<name>/jpg/<image>.jpg
Writes into --directory: ckpt/ (resumable with --resume), train_logs/ (TensorBoard),
history.json, model_weights (+ .json; input of export_global_features_model).

Example:
  python tools/train_global_features.py --data_root=/data --directory=/tmp/gem_r101 \
    --arch=ResNet101 --imagenet_checkpoint=resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5
"""

from absl import app

from delf_tf.global_features import training
from delf_tf.tools import common, config_flags

__all__ = ["main"]

# One flag per TrainGlobalConfig field: its name, type, default and help (the class's docstring).
_CONFIG = config_flags.define_config_flags(training.TrainGlobalConfig)


@common.tool_main
def main():
    config = _CONFIG.config()
    try:
        training.validate(config)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    result = training.TrainGlobalFeatures(config)
    print(f"Final weights: {result['model_weights']}")


if __name__ == "__main__":
    app.run(main)
