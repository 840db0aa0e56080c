r"""Trains HOW (Tolias, Jenicek, Chum, ECCV 2020): local descriptors learned
through Z_how = L2(sum_u ||u|| o(ū)) with the contrastive loss on SfM tuples
(1 anchor, 1 positive, 5 hard negatives mined every epoch). The whitening
o(u) = P (u - m) is learned by PCA on training images first and kept fixed.

Data layout (SfM-120k's): <data_root>/train/<training_dataset>/<training_dataset>.pkl
and .../ims/; optional Revisited test sets <data_root>/test/<name>/gnd_<name>.(pkl|mat)
and .../jpg/ (mAP of the global Z_how every --test_freq epochs). Writes
<directory>/ckpt (resumable with --resume), <directory>/train_logs (TensorBoard),
<directory>/history.json and the final network <directory>/model_weights, which
tools/export_how_model.py exports.

Example:
  python tools/train_how.py --data_root=data --directory=/tmp/how_r18 \
    --imagenet_checkpoint=resnet18_imagenet.h5
"""

import json

from absl import app, flags

from delf_tf.how import training
from delf_tf.tools import common

_DEFAULTS = training.TrainHowConfig()

_DATA_ROOT = flags.DEFINE_string("data_root", "", "Root of train/ and test/ (SfM layout).")
_DIRECTORY = flags.DEFINE_string("directory", _DEFAULTS.directory,
                                 "Output directory (checkpoints, logs, final weights).")
_TRAINING_DATASET = flags.DEFINE_string("training_dataset", _DEFAULTS.training_dataset,
                                        "Name of the SfM tuples database under train/.")
_TEST_DATASETS = flags.DEFINE_string(
    "test_datasets", "", "Comma-separated Revisited test sets under test/ ('' for none).")
_TEST_FREQ = flags.DEFINE_integer("test_freq", 5, "Evaluate the test sets every N epochs.")
_ARCH = flags.DEFINE_string("arch", _DEFAULTS.arch,
                            "Backbone: resnet18, resnet34, resnet50, resnet101.")
_DROP_LAST_STAGE = flags.DEFINE_bool("drop_last_stage", False,
                                     "Leave out the last ResNet stage (HOW's ¬R50).")
_OUTPUT_DIM = flags.DEFINE_integer("output_dim", _DEFAULTS.output_dim,
                                   "d, the local descriptor dimension after whitening.")
_SMOOTHING_SIZE = flags.DEFINE_integer("smoothing_size", _DEFAULTS.smoothing_size,
                                       "M of the M x M average-pool smoothing (1: none).")
_WHITENING_IMAGES = flags.DEFINE_integer(
    "whitening_images", _DEFAULTS.whitening_images,
    "Training images whose single-scale descriptors learn the PCA whitening.")
_WHITENING_FEATURES = flags.DEFINE_integer(
    "whitening_features", _DEFAULTS.whitening_features,
    "Strongest descriptors per image used for the whitening.")
_LOSS_MARGIN = flags.DEFINE_float("loss_margin", _DEFAULTS.loss_margin,
                                  "Margin of the contrastive loss.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", _DEFAULTS.image_size,
                                   "Training images are shrunk to this longer side.")
_NEG_NUM = flags.DEFINE_integer("neg_num", _DEFAULTS.neg_num, "Negatives per tuple.")
_QUERY_SIZE = flags.DEFINE_integer("query_size", _DEFAULTS.query_size,
                                   "Anchor-positive pairs drawn per epoch.")
_POOL_SIZE = flags.DEFINE_integer("pool_size", _DEFAULTS.pool_size,
                                  "Images in the hard-negative pool per epoch.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size,
                                   "Tuples per optimizer step.")
_LR = flags.DEFINE_float("lr", _DEFAULTS.lr, "Adam learning rate (HOW: 5e-6 for R18, "
                         "1e-5 for ¬R50); decays as lr * exp(-0.01 epoch).")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay,
                                   "Decoupled weight decay of Adam.")
_EPOCHS = flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training epochs.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue from <directory>/ckpt.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draws and the initialisation.")
_IMAGENET_CHECKPOINT = flags.DEFINE_string(
    "imagenet_checkpoint", None, "ImageNet weights (.h5) of the backbone to start from.")
_INITIAL_WEIGHTS = flags.DEFINE_string(
    "initial_weights", None, "A delf_tf checkpoint prefix whose backbone to start from.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    config = training.TrainHowConfig(
        data_root=_DATA_ROOT.value, directory=_DIRECTORY.value,
        training_dataset=_TRAINING_DATASET.value, test_datasets=_TEST_DATASETS.value,
        test_freq=_TEST_FREQ.value, arch=_ARCH.value, drop_last_stage=_DROP_LAST_STAGE.value,
        output_dim=_OUTPUT_DIM.value, smoothing_size=_SMOOTHING_SIZE.value,
        whitening_images=_WHITENING_IMAGES.value, whitening_features=_WHITENING_FEATURES.value,
        loss_margin=_LOSS_MARGIN.value, image_size=_IMAGE_SIZE.value, neg_num=_NEG_NUM.value,
        query_size=_QUERY_SIZE.value, pool_size=_POOL_SIZE.value, batch_size=_BATCH_SIZE.value,
        lr=_LR.value, weight_decay=_WEIGHT_DECAY.value, epochs=_EPOCHS.value,
        resume=_RESUME.value, seed=_SEED.value, imagenet_checkpoint=_IMAGENET_CHECKPOINT.value,
        initial_weights=_INITIAL_WEIGHTS.value)
    result = training.TrainHow(config)
    print(json.dumps({"model_weights": result["model_weights"],
                      "last_epoch": result["epochs"][-1] if result["epochs"] else None},
                     indent=1))


if __name__ == "__main__":
    app.run(main)
