"""absl flags shared by the three export tools (checkpoint, destination, architecture)."""

from absl import flags

from delf_tf.extraction import export


def define_export_flags(with_iou_threshold: bool) -> None:
    """Defines --ckpt_path, --export_path, the architecture flags and (for local
    exports) --iou_threshold on the global FLAGS."""
    flags.DEFINE_string("ckpt_path", None,
                        "Checkpoint prefix to export: the <logdir>/delf_weights written by "
                        "training.")
    flags.DEFINE_string("export_path", None,
                        "Directory to write the SavedModel to. Must not exist or be empty "
                        "unless --overwrite.")
    flags.DEFINE_boolean("overwrite", False,
                         "Replace an earlier export at --export_path (addition to the "
                         "original, which always refuses an existing path). Only a directory "
                         "holding nothing but a SavedModel is replaced; the new export is "
                         "swapped in whole, so the old one survives an interrupted export.")
    flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "resnet101", "resnet_tiny"],
                      "Backbone of the checkpoint. Used only when the checkpoint has no "
                      "<ckpt_path>.json sidecar or when given explicitly.")
    flags.DEFINE_boolean("block3_strides", True,
                         "Whether block3 has stride 32 (True) or 16 (False). Used only when the "
                         "checkpoint has no <ckpt_path>.json sidecar or when given explicitly.")
    flags.DEFINE_boolean("use_autoencoder", True,
                         "Whether the model has the dimensionality-reducing autoencoder "
                         "(sidecar wins unless given explicitly).")
    flags.DEFINE_integer("autoencoder_dimensions", 128,
                         "Local descriptor depth after the autoencoder (sidecar wins unless "
                         "given explicitly).")
    flags.DEFINE_integer("local_feature_map_channels", 1024,
                         "Channels the autoencoder expands back to (sidecar wins unless given "
                         "explicitly).")
    if with_iou_threshold:
        flags.DEFINE_float("iou_threshold", 1.0,
                           "NMS IoU threshold baked into the graph; 1.0 suppresses nothing.")
    flags.mark_flags_as_required(["ckpt_path", "export_path"])


def architecture_from_flags() -> tuple[dict, list[str]]:
    """(architecture values, names of the architecture flags given explicitly)."""
    values = flags.FLAGS
    architecture = {name: values[name].value for name in export.ARCHITECTURE_FLAGS}
    explicit = [name for name in export.ARCHITECTURE_FLAGS if values[name].present]
    return architecture, explicit
