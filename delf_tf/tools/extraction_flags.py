"""Flag groups shared by the extraction, Beam and export tools.

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

from delf_tf.tools import config_flags

__all__ = [
    "BeamFlags", "BeamImageFlags", "DelfExportFlags",
    "ExportFlags", "RevisitedSetFlags", "ShardFlags",
    "define_architecture_flags", "define_beam_flags", "define_beam_image_flags",
    "define_delf_export_flags", "define_export_flags",
    "define_revisited_set_flags", "define_shard_flags",
    "require", "values",
]

# The DEFINE calls below are made for the tool that calls a define_* function: absl attributes
# them (and their key-flag status) to that tool's module instead of this one.
flags.disclaim_key_flags()

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


def define_architecture_flags(when_exporting: bool) -> config_flags.ConfigFlags:
    """--backbone, --block3_strides, --use_autoencoder, --autoencoder_dimensions,
    --local_feature_map_channels: TrainConfig's fields (defaults and help from there). When
    exporting, a checkpoint's .json sidecar decides unless the flag is given; the group's
    `values()` is the `architecture` of the export calls, `explicit()` the flags given."""
    from delf_tf.extraction import export
    from delf_tf.training import trainer

    note = (" When exporting, the checkpoint's <ckpt_path>.json sidecar decides unless this flag "
            "is given." if when_exporting else "")
    return config_flags.define_config_flags(trainer.TrainConfig,
                                            only=tuple(export.ARCHITECTURE_FLAGS),
                                            help_suffix=note)


@dataclasses.dataclass(frozen=True)
class DelfExportFlags:
    """The DELF/DELG export tools' flags: destination, architecture, NMS threshold."""
    export: ExportFlags
    architecture: config_flags.ConfigFlags
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
