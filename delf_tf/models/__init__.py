"""Keras 3 DELF/DELG models: backbone, heads, losses, preprocessing and weight handling."""

from delf_tf.models.checkpoint import load_model, restore_weights, save_weights
from delf_tf.models.delf import Delf
from delf_tf.models.delg import Delg
from delf_tf.models.layers import arcface_logits, cosine_logits
from delf_tf.models.losses import compute_losses
from delf_tf.models.normalization import L2Normalization
from delf_tf.models.pooling import MAC, GeM, SPoC, gem, mac, spoc
from delf_tf.models.preprocessing import normalize_images
from delf_tf.models.ranking_losses import (
    ContrastiveLoss,
    TripletLoss,
    contrastive_loss,
    triplet_loss,
)
from delf_tf.models.resnet import BACKBONE_SPECS, BACKBONES, ResNet
from delf_tf.models.weights import load_imagenet_weights, save_classic_h5

__all__ = [
        "BACKBONES", "BACKBONE_SPECS", "ContrastiveLoss", "Delf", "Delg", "GeM",
        "L2Normalization", "MAC", "ResNet", "SPoC", "TripletLoss", "arcface_logits",
        "compute_losses", "contrastive_loss", "cosine_logits", "gem", "load_imagenet_weights",
        "load_model", "mac", "normalize_images", "restore_weights", "save_classic_h5",
        "save_weights", "spoc", "triplet_loss",
]
