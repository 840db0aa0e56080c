"""Training HOW: Z_how optimised with the contrastive loss on SfM tuples.

The tuple job is the global-features one (`global_features.training`:
per-epoch hard-negative mining, tuples streamed one image at a time with
BatchNorm frozen, Adam with decoupled weight decay, resume, TensorBoard);
HOW brings its network and defaults: ResNet-18, margin 0.8, learning rate
5e-6, weight decay 1e-4, 1 anchor + 1 positive + 5 negatives, 5 tuples per
update, images of at most 1024 px, 2000 pairs per epoch from a pool of
20000, 20 epochs; before the first epoch the whitening o(u) = P (u - m) is
learned by PCA on the strongest smoothed descriptors of `whitening_images`
training images at a single scale, and then stays fixed.
"""

import dataclasses
import logging
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from delf_tf.global_features import images as image_lib
from delf_tf.global_features import sfm
from delf_tf.global_features import training as global_training
from delf_tf.how import whitening
from delf_tf.how.model import HowNet, save_how_model
from delf_tf.models import global_model

__all__ = [
    # The original's names (the compatibility surface).
    "TrainHow",
    # delf_tf's own API.
    "TrainHowConfig", "build_how_model",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainHowConfig(global_training.TrainGlobalConfig):
    """Every flag of tools/train_how.py: the tuple job's, with HOW's defaults (its loss is
    the contrastive one, the base class's default), and HOW's own.

    Attributes:
      output_dim: d, the local descriptor dimension after whitening.
      smoothing_size: M of the M x M average-pool smoothing (1: none).
      whitening_images: Training images whose single-scale descriptors learn the PCA whitening.
      whitening_features: Strongest descriptors per image used for the whitening.
    """

    directory: str = "/tmp/how"
    arch: str = "resnet18"
    loss_margin: float = 0.8
    lr: float = 5e-6
    weight_decay: float = 1e-4
    epochs: int = 20
    output_dim: int = 128
    smoothing_size: int = 3
    whitening_images: int = 5000
    whitening_features: int = 1000


def _training_images(config: TrainHowConfig) -> list[str]:
    train_root = os.path.join(config.data_root, "train", config.training_dataset)
    database = sfm.ReadSfmDatabase(os.path.join(train_root, f"{config.training_dataset}.pkl"))
    return database["train"].image_paths(os.path.join(train_root, "ims"))


def build_how_model(config: TrainHowConfig) -> HowNet:
    """The HowNet of `config`: backbone initialised from imagenet_checkpoint /
    initial_weights, whitening learned on training images (skipped when a
    checkpoint will be resumed: it restores the whitening)."""
    model = HowNet(global_model.backbone_name(config.arch),
                   drop_last_stage=config.drop_last_stage,
                   smoothing_size=config.smoothing_size, output_dim=config.output_dim)
    model.build_for_input()
    if config.imagenet_checkpoint:
        from delf_tf.models.weights import load_imagenet_weights
        load_imagenet_weights(model.backbone, config.imagenet_checkpoint)
    if config.initial_weights:
        global_training.init_backbone(model, config.initial_weights)
    if config.resume and tf.train.latest_checkpoint(os.path.join(config.directory, "ckpt")):
        return model
    paths = _training_images(config)
    rng = np.random.default_rng(config.seed)
    chosen = np.sort(rng.permutation(len(paths))[:config.whitening_images])
    images = image_lib.ImagesFromList([paths[i] for i in chosen], config.image_size)
    whitening.InitializeWhitening(model, (image.numpy() for image in images),
                                  config.whitening_features)
    return model


def TrainHow(config: TrainHowConfig, progress: Callable[[str], None] = logger.info) -> dict:
    """Runs HOW's training job; the final network is `<directory>/model_weights`
    (a HowNet checkpoint with its .json description). Returns the job's history."""
    if config.whitening_images < 1 or config.whitening_features < 1:
        raise ValueError("--whitening_images and --whitening_features must be positive")
    if config.smoothing_size < 1 or config.output_dim < 1:
        raise ValueError("--smoothing_size and --output_dim must be positive")
    return global_training.TrainGlobalFeatures(config, progress, build=build_how_model,
                                               save=save_how_model)
