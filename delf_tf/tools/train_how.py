r"""Trains HOW (Tolias, Jenicek, Chum, ECCV 2020): local descriptors learned
through Z_how = L2(sum_u ||u|| o(ū)) with the contrastive loss on SfM tuples
(1 anchor, 1 positive, 5 hard negatives mined every epoch). The whitening
o(u) = P (u - m) is learned by PCA on training images first and kept fixed.

Data layout (SfM-120k's): <data_root>/train/<training_dataset>/<training_dataset>.pkl
and .../ims/; optional Revisited test sets <data_root>/test/<name>/gnd_<name>.(pkl|mat)
and .../jpg/ (mAP of the global Z_how every --test_freq epochs). Writes
<directory>/ckpt (resumable with --resume), <directory>/train_logs (TensorBoard),
<directory>/history.json and the final network <directory>/model_weights, which
tools/export_how_model.py exports. The optimizer is Adam with decoupled weight decay; the
paper's learning rates: 5e-6 for R18, 1e-5 for ¬R50 (--lr).

Example:
  python tools/train_how.py --data_root=data --directory=/tmp/how_r18 \
    --imagenet_checkpoint=resnet18_imagenet.h5
"""

import json

from absl import app

from delf_tf.how import training
from delf_tf.tools import common, config_flags

__all__ = ["main"]

# The tuple-training job's flags and HOW's own, one per TrainHowConfig field (name, type, default,
# help from the class docstrings), but the global descriptor's settings that HOW fixes; no Revisited
# test set is evaluated unless --test_datasets names one.
_CONFIG = config_flags.define_config_flags(
    training.TrainHowConfig,
    exclude=("multiscale", "pool", "whitening", "loss", "update_every", "optimizer", "momentum",
             "gem_power", "trainable_gem_power", "test_image_size"),
    defaults={"test_datasets": ""})


@common.tool_main
def main():
    result = training.TrainHow(_CONFIG.config())
    print(json.dumps({"model_weights": result["model_weights"],
                      "last_epoch": result["epochs"][-1] if result["epochs"] else None},
                     indent=1))


if __name__ == "__main__":
    app.run(main)
