"""Keras 3 DELF/DELG models: backbone, heads, losses, preprocessing and weight handling."""

from delf_tf.models.checkpoint import load_model, restore_weights, save_weights
from delf_tf.models.delf import Delf
from delf_tf.models.delg import Delg
from delf_tf.models.layers import GeM, arcface_logits, cosine_logits, gem
from delf_tf.models.losses import compute_losses
from delf_tf.models.preprocessing import normalize_images
from delf_tf.models.resnet import BACKBONES, ResNet
from delf_tf.models.weights import load_imagenet_weights, save_classic_h5

__all__ = [
        "BACKBONES", "Delf", "Delg", "GeM", "ResNet", "arcface_logits", "compute_losses",
        "cosine_logits", "gem", "load_imagenet_weights", "load_model", "normalize_images",
        "restore_weights", "save_classic_h5", "save_weights",
]
