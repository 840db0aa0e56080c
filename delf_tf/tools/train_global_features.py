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

from absl import app, flags

from delf_tf.global_features import training
from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_D = training.TrainGlobalConfig()

_TUPLES = extraction_flags.define_tuple_training_flags(_D)
_MULTISCALE = flags.DEFINE_string(
    "multiscale", _D.multiscale,
    "Test-time scales, e.g. '[1, 1/2**(1/2), 1/2]'; per-scale descriptors are combined by their "
    "generalized mean (power = the GeM p without whitening).")
_POOL = flags.DEFINE_enum(
    "pool", _D.pool, ["mac", "spoc", "gem"],
    "Global pooling.")
_WHITENING = flags.DEFINE_bool(
    "whitening", _D.whitening,
    "Train a fully connected whitening layer after pooling.")
_LOSS = flags.DEFINE_enum(
    "loss", _D.loss, ["contrastive", "triplet"],
    "Ranking loss.")
_UPDATE_EVERY = flags.DEFINE_integer(
    "update_every", _D.update_every,
    "Sum the gradients of this many batches before each optimizer step (effective batch = "
    "batch_size x update_every).")
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", _D.optimizer, ["adam", "sgd"],
    "adam (AdamW) or sgd (with --momentum); both with decoupled weight decay.")
_MOMENTUM = flags.DEFINE_float(
    "momentum", _D.momentum,
    "SGD momentum.")
_GEM_POWER = flags.DEFINE_float(
    "gem_power", _D.gem_power,
    "Addition: initial GeM power p.")
_TRAINABLE_GEM_POWER = flags.DEFINE_bool(
    "trainable_gem_power", _D.trainable_gem_power,
    "Addition: learn the GeM power p (cnnimageretrieval-pytorch does).")
_TEST_IMAGE_SIZE = flags.DEFINE_integer(
    "test_image_size", None,
    "Addition: image size for the test data sets (default --image_size).")


def _config() -> training.TrainGlobalConfig:
    return _TUPLES.config(training.TrainGlobalConfig, _MULTISCALE, _POOL, _WHITENING, _LOSS,
                          _UPDATE_EVERY, _OPTIMIZER, _MOMENTUM, _GEM_POWER,
                          _TRAINABLE_GEM_POWER, _TEST_IMAGE_SIZE)


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    config = _config()
    try:
        training.validate(config)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    result = training.TrainGlobalFeatures(config)
    print(f"Final weights: {result['model_weights']}")


if __name__ == "__main__":
    app.run(main)
