"""Flag groups shared by the extraction, Beam, training and export tools.

Each `define_*` function is called when a tool module is imported (never when this module is
imported: a process that imports several tools deletes one tool's flags before the next): it
defines the group's flags as key flags of that tool, so its `--help` lists them, and returns a
frozen object of FlagHolders whose methods build what the library call takes.
"""

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import app, flags

__all__ = [
    "ArchitectureFlags", "BeamFlags", "BeamImageFlags", "DelfExportFlags",
    "ExportFlags", "RevisitedSetFlags", "ShardFlags", "TupleTrainingFlags",
    "define_architecture_flags", "define_beam_flags", "define_beam_image_flags",
    "define_delf_export_flags", "define_export_flags",
    "define_revisited_set_flags", "define_shard_flags", "define_tuple_training_flags",
    "require", "values",
]

# The DEFINE calls below are made for the tool that calls a define_* function: absl attributes
# them (and their key-flag status) to that tool's module instead of this one.
flags.disclaim_key_flags()

_BACKBONES = ["resnet50", "resnet101", "resnet_tiny"]


def values(*holders: flags.FlagHolder) -> dict[str, Any]:
    """{flag name: value} of `holders`, for a library call whose arguments bear the flags' names."""
    return {holder.name: holder.value for holder in holders}


def require(*holders: flags.FlagHolder) -> None:
    """Usage error naming the first of `holders` that is unset or empty."""
    for holder in holders:
        if not holder.value:
            raise app.UsageError(f"--{holder.name} is required")


@dataclasses.dataclass(frozen=True)
class ExportFlags:
    """Which checkpoint is exported where: --ckpt_path, --export_path, --overwrite."""
    ckpt_path: flags.FlagHolder
    export_path: flags.FlagHolder
    overwrite: flags.FlagHolder

    def export_with(self, export_function: Callable[..., Any], what: str = "", **options) -> Any:
        """export_function(ckpt_path, export_path, overwrite=..., **options), input errors
        reported as `Error: ...` (exit status 1); says that `what` (default: --ckpt_path) was
        exported where and returns what export_function returns."""
        from delf_tf.tools import common

        with common.reported_errors():
            result = export_function(self.ckpt_path.value, self.export_path.value,
                                     overwrite=self.overwrite.value, **options)
        print(f"Exported {what or self.ckpt_path.value} to {self.export_path.value}")
        return result


def define_export_flags(checkpoint: str, ckpt_path: str | None = None,
                        export_path: str | None = None) -> ExportFlags:
    """The export tools' destination flags; `checkpoint` says what --ckpt_path names (a
    sentence's end). A flag without a default is required."""
    group = ExportFlags(
        flags.DEFINE_string(
            "ckpt_path", ckpt_path,
            "Checkpoint prefix to export: " + checkpoint),
        flags.DEFINE_string(
            "export_path", export_path,
            "Directory the SavedModel is written to; it must not exist or be empty unless "
            "--overwrite is given."),
        flags.DEFINE_boolean(
            "overwrite", False,
            "Replace an earlier export at --export_path (an addition to the original, which "
            "always refuses an existing path). Only a directory holding nothing but a SavedModel "
            "is replaced; the new export is swapped in whole, so the old one survives an "
            "interrupted export."))
    flags.mark_flags_as_required(
        [holder.name for holder in (group.ckpt_path, group.export_path) if holder.default is None])
    return group


@dataclasses.dataclass(frozen=True)
class ArchitectureFlags:
    """The DELF/DELG network's shape: backbone, block3 stride, autoencoder sizes."""
    holders: tuple[flags.FlagHolder, ...]

    def values(self) -> dict[str, Any]:
        """{flag name: value}: TrainConfig fields, or the `architecture` of the export calls."""
        return values(*self.holders)

    def explicit(self) -> list[str]:
        """Names of the flags given on the command line (they override a checkpoint's sidecar)."""
        return [holder.name for holder in self.holders if holder.present]


def define_architecture_flags(when_exporting: bool) -> ArchitectureFlags:
    """--backbone, --block3_strides, --use_autoencoder, --autoencoder_dimensions,
    --local_feature_map_channels with training's defaults. When exporting, a checkpoint's
    .json sidecar decides unless the flag is given."""
    from delf_tf.training import trainer

    d = trainer.TrainConfig()
    note = (" When exporting, the checkpoint's <ckpt_path>.json sidecar decides unless this flag "
            "is given." if when_exporting else "")
    return ArchitectureFlags((
        flags.DEFINE_enum(
            "backbone", d.backbone, _BACKBONES,
            "Backbone network (resnet_tiny: one block per stage, for tests)." + note),
        flags.DEFINE_boolean(
            "block3_strides", d.block3_strides,
            "Stride 32 at block3 (a 1x1 max-pool after stage 4), as the "
            "original; --noblock3_strides keeps stride 16." + note),
        flags.DEFINE_boolean(
            "use_autoencoder", d.use_autoencoder,
            "Whether the model has the local-feature autoencoder (dimension "
            "reduction)." + note),
        flags.DEFINE_integer(
            "autoencoder_dimensions", d.autoencoder_dimensions,
            "Local descriptor dimension after the autoencoder." + note),
        flags.DEFINE_integer(
            "local_feature_map_channels", d.local_feature_map_channels,
            "Channels of the autoencoder's reconstruction (block3's depth)." + note)))


@dataclasses.dataclass(frozen=True)
class DelfExportFlags:
    """The DELF/DELG export tools' flags: destination, architecture, NMS threshold."""
    export: ExportFlags
    architecture: ArchitectureFlags
    iou_threshold: flags.FlagHolder | None

    def export_with(self, export_function: Callable[..., None], what: str, **options) -> None:
        """Calls one of delf_tf.extraction.export's Export*Model functions with the flags'
        checkpoint, destination and architecture (input errors: `Error: ...`, status 1) and
        says that `what` was exported where."""
        if self.iou_threshold is not None:
            options["iou_threshold"] = self.iou_threshold.value
        self.export.export_with(export_function, what, architecture=self.architecture.values(),
                                explicit=self.architecture.explicit(), **options)


def define_delf_export_flags(with_iou_threshold: bool) -> DelfExportFlags:
    """Required --ckpt_path and --export_path, --overwrite, the architecture flags and (for
    local features) --iou_threshold."""
    iou_threshold = flags.DEFINE_float(
        "iou_threshold", 1.0,
        "NMS IoU threshold baked into the graph; 1.0 suppresses nothing.",
    ) if with_iou_threshold else None
    return DelfExportFlags(
        define_export_flags("the <logdir>/delf_weights written by training."),
        define_architecture_flags(when_exporting=True), iou_threshold)


@dataclasses.dataclass(frozen=True)
class ShardFlags:
    """Which part of an image list this process extracts, and whether outputs are redone."""
    num_shards: flags.FlagHolder
    shard_index: flags.FlagHolder
    overwrite: flags.FlagHolder

    def options(self) -> dict[str, Any]:
        """Keyword arguments of the batch extraction calls."""
        return values(self.num_shards, self.shard_index, self.overwrite)

    def extract_with(self, extract_function: Callable[..., Sequence[str]], *arguments,
                     failed: str = "failed (see the log for why)", **options) -> None:
        """Runs a batch extraction call on this process's shard inside the tools' error
        wrapper (a RuntimeError too: a model that does not load); exit status 1 listing the
        images it returns as failed (the others are written)."""
        from delf_tf.tools import common

        with common.reported_errors(RuntimeError):
            failures = extract_function(*arguments, **options, **self.options())
        if failures:
            sys.exit(f"{len(failures)} image(s) {failed}:\n" + "\n".join(failures))


def define_shard_flags() -> ShardFlags:
    """--num_shards, --shard_index and --overwrite."""
    return ShardFlags(
        flags.DEFINE_integer(
            "num_shards", 1,
            "Split the image list into this many shards (one per machine or process)."),
        flags.DEFINE_integer(
            "shard_index", 0,
            "Which shard this process extracts, in [0, num_shards)."),
        flags.DEFINE_boolean(
            "overwrite", False,
            "Extract every image again and replace existing outputs (atomically). Default: images "
            "whose outputs exist are skipped (resuming a run); a warning says how many."))


@dataclasses.dataclass(frozen=True)
class RevisitedSetFlags:
    """One image set of a Revisited Oxford/Paris-format data set and where its features go."""
    dataset_file_path: flags.FlagHolder
    images_dir: flags.FlagHolder
    image_set: flags.FlagHolder
    output_features_dir: flags.FlagHolder

    def arguments(self) -> tuple[str, str, str, str]:
        """(dataset_file_path, images_dir, image_set, output_features_dir): the positional
        arguments the batch extraction calls take after the model."""
        return (self.dataset_file_path.value, self.images_dir.value, self.image_set.value,
                self.output_features_dir.value)


def define_revisited_set_flags(output_features_dir: str, outputs: str) -> RevisitedSetFlags:
    """--dataset_file_path, --images_dir, --image_set, --output_features_dir (where the
    files `outputs` names are written; a sentence's end)."""
    return RevisitedSetFlags(
        flags.DEFINE_string(
            "dataset_file_path", "/tmp/gnd_roxford5k.mat",
            "Revisited data set ground-truth file (gnd_roxford5k.mat or gnd_rparis6k.mat)."),
        flags.DEFINE_string(
            "images_dir", "/tmp/images",
            "Directory holding the <name>.jpg images."),
        flags.DEFINE_enum(
            "image_set", "query", ["query", "index"],
            "Which images to extract: query (cropped to their box) or index."),
        flags.DEFINE_string(
            "output_features_dir", output_features_dir,
            "Directory where the feature files are written: " + outputs))


@dataclasses.dataclass(frozen=True)
class BeamFlags:
    """How a Beam tool runs its pipeline and where its report goes."""
    runner: flags.FlagHolder
    report_path: flags.FlagHolder | None
    report_name: str

    def pipeline_args(self, argv: Sequence[str]) -> list[str]:
        """--runner plus every argument after a lone `--` (Beam pipeline options)."""
        return ([f"--runner={self.runner.value}"] if self.runner.value else []) + list(argv[1:])

    def report_file(self, output_dir: str) -> str:
        """--report_path, else <output_dir>/<report_name>."""
        return self.report_path.value or os.path.join(output_dir, self.report_name)

    @staticmethod
    def finish(report: Mapping[str, Any]) -> None:
        """Prints the done/skipped/failed counts; exit status 1 listing the failed images."""
        print(json.dumps({key: report[key] for key in ("done", "skipped", "failed")}))
        if report["failed"]:
            print("Failed images:\n" + "\n".join(f"  {r['name']}: {r['error']}"
                                                  for r in report["failed_images"]),
                  file=sys.stderr)
            sys.exit(1)


def define_beam_flags(report_name: str = "", output_flag: str = "") -> BeamFlags:
    """--runner and, when `report_name` is given, --report_path (default
    <--output_flag>/<report_name>)."""
    runner = flags.DEFINE_string(
        "runner", "",
        "Beam runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...); empty: the "
        "DirectRunner.")
    report_path = flags.DEFINE_string(
        "report_path", "",
        "JSON report of the done, skipped and failed images; default "
        + f"<{output_flag}>/{report_name}.") if report_name else None
    return BeamFlags(runner, report_path, report_name)


@dataclasses.dataclass(frozen=True)
class BeamImageFlags:
    """Which images a Beam tool processes and, for the aggregation tools, their feature files."""
    list_images_path: flags.FlagHolder
    dataset_file_path: flags.FlagHolder
    image_set: flags.FlagHolder
    features_dir: flags.FlagHolder | None
    feature_extension: flags.FlagHolder | None

    def names(self) -> list[str]:
        """The image names of --list_images_path or --dataset_file_path with --image_set."""
        from delf_tf.beam import aggregation  # needs the 'beam' extra

        return aggregation.ImageNames(self.list_images_path.value, self.dataset_file_path.value,
                                      self.image_set.value)


def define_beam_image_flags(with_features: bool) -> BeamImageFlags:
    """--list_images_path, --dataset_file_path, --image_set and (`with_features`)
    --features_dir, --feature_extension."""
    features = (None, None)
    if with_features:
        features = (
            flags.DEFINE_string(
                "features_dir", None,
                "Directory of the local feature files <name><feature_extension>."),
            flags.DEFINE_string(
                "feature_extension", ".delf",
                "Extension of the local feature files (.delf for DELF, .delg_local for DELG "
                "and HOW)."))
    return BeamImageFlags(
        flags.DEFINE_string(
            "list_images_path", "",
            "Text file with one image path per line (images are named by file name without "
            "extension)."),
        flags.DEFINE_string(
            "dataset_file_path", "",
            "Revisited-format data set file (.mat)."),
        flags.DEFINE_enum(
            "image_set", "index", ["query", "index"],
            "With --dataset_file_path: which images."),
        *features)


@dataclasses.dataclass(frozen=True)
class TupleTrainingFlags:
    """The flags of training on SfM tuples (data, network, mining, schedule) that
    train_global_features and train_how share."""
    holders: tuple[flags.FlagHolder, ...]

    def config(self, config_class: type, *tool_flags: flags.FlagHolder) -> Any:
        """`config_class` (TrainGlobalConfig or a subclass) from these and `tool_flags`."""
        return config_class(**values(*self.holders, *tool_flags))


def define_tuple_training_flags(defaults, test_datasets: str | None = None) -> TupleTrainingFlags:
    """The shared tuple-training flags with the defaults of `defaults` (a TrainGlobalConfig);
    `test_datasets` overrides that one default."""
    return TupleTrainingFlags(_tuple_data_flags(defaults, test_datasets)
                              + _tuple_schedule_flags(defaults))


def _tuple_data_flags(d, test_datasets: str | None) -> tuple[flags.FlagHolder, ...]:
    return (
        flags.DEFINE_string(
            "data_root", d.data_root,
            "Folder holding train/<training_dataset>/ and test/<name>/ (layout in the tool's "
            "description)."),
        flags.DEFINE_string(
            "directory", d.directory,
            "Output folder: checkpoints, TensorBoard logs, history and final weights."),
        flags.DEFINE_string(
            "training_dataset", d.training_dataset,
            "Training database name: reads train/<name>/<name>.pkl under --data_root."),
        flags.DEFINE_string(
            "test_datasets", d.test_datasets if test_datasets is None
                            else test_datasets,
            "Comma-separated Revisited data sets under --data_root/test evaluated every "
            "--test_freq epochs ('' for none)."),
        flags.DEFINE_integer(
            "test_freq", d.test_freq,
            "Evaluate --test_datasets every this many epochs (and after the last; 0: never)."),
        flags.DEFINE_string(
            "arch", d.arch,
            "Backbone: ResNet18, ResNet34, ResNet50, ResNet101 (any case), resnet_tiny."),
        flags.DEFINE_bool(
            "drop_last_stage", d.drop_last_stage,
            "Leave out the backbone's last stage (HOW's ¬R50)."),
        flags.DEFINE_string(
            "imagenet_checkpoint", None,
            "Keras HDF5 ImageNet weights for the backbone (the original downloaded them). "
            "Default: random initialisation."),
        flags.DEFINE_string(
            "initial_weights", None,
            "Start the backbone from a DELF/DELG or GlobalFeatureNet checkpoint prefix (e.g. "
            "<logdir>/delf_weights of tools/train.py)."))


def _tuple_schedule_flags(d) -> tuple[flags.FlagHolder, ...]:
    return (
        flags.DEFINE_float(
            "loss_margin", d.loss_margin,
            "Margin of the ranking loss."),
        flags.DEFINE_integer(
            "image_size", d.image_size,
            "Training images are shrunk so their longer side is at most this (pixels)."),
        flags.DEFINE_integer(
            "neg_num", d.neg_num,
            "Hard negatives per training tuple."),
        flags.DEFINE_integer(
            "query_size", d.query_size,
            "Query/positive pairs drawn per epoch."),
        flags.DEFINE_integer(
            "pool_size", d.pool_size,
            "Images in the hard-negative pool of each epoch."),
        flags.DEFINE_integer(
            "batch_size", d.batch_size,
            "Tuples per optimizer step."),
        flags.DEFINE_float(
            "lr", d.lr,
            "Initial learning rate; multiplied by exp(-0.01) every epoch."),
        flags.DEFINE_float(
            "weight_decay", d.weight_decay,
            "Decoupled weight decay."),
        flags.DEFINE_integer(
            "epochs", d.epochs,
            "Number of epochs."),
        flags.DEFINE_bool(
            "resume", d.resume,
            "Resume from the latest checkpoint in --directory."),
        flags.DEFINE_integer(
            "seed", d.seed,
            "Random seed (initialisation, pairs, pools, order)."))
