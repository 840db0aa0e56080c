"""Flags shared by build_global_index and query_global_index (image lists, search knobs)."""

import dataclasses
import glob
import os

from absl import flags

from delf_tf.aggregation import asmk_search


@dataclasses.dataclass(frozen=True)
class ImageFlags:
    """Which images a tool reads: a dataset file's list, a list file, or a whole folder."""
    dataset_file_path: flags.FlagHolder
    image_set: flags.FlagHolder
    list_images_path: flags.FlagHolder
    feature_extension: flags.FlagHolder

    def names(self, features_dir: str) -> list[str]:
        """Names from --dataset_file_path / --list_images_path, else every feature file in
        `features_dir` (sorted); ValueError when there are none."""
        if self.dataset_file_path.value or self.list_images_path.value:
            return asmk_search.ReadImageNames(
                self.dataset_file_path.value, self.image_set.value, self.list_images_path.value)
        extension = self.feature_extension.value
        pattern = os.path.join(glob.escape(features_dir), "*" + extension)
        names = sorted(os.path.basename(p)[:-len(extension)] for p in glob.glob(pattern))
        if not names:
            raise ValueError(f"no *{extension} files in {features_dir}")
        return names


def define_image_flags(image_set_default: str) -> ImageFlags:
    return ImageFlags(
        flags.DEFINE_string(
            "dataset_file_path", "", "Revisited-format dataset file (.mat) naming the images "
            "(with --image_set). Without it and --list_images_path, every feature file is used."),
        flags.DEFINE_enum("image_set", image_set_default, list(asmk_search.IMAGE_SETS),
                          "Which list of --dataset_file_path is used."),
        flags.DEFINE_string("list_images_path", "", "Text file with one image name per line."),
        flags.DEFINE_string("feature_extension", ".delg_global", "Extension of the global "
                            "descriptor files (DatumProto, one [D] descriptor each)."))


def define_search_flags(when_querying: bool) -> tuple[flags.FlagHolder, flags.FlagHolder]:
    """(--nprobe, --ef_search): stored in the index when building; when querying they
    default to the stored values."""
    stored = " Default: the value the index was built with." if when_querying else ""
    return (flags.DEFINE_integer(
                "nprobe", None if when_querying else 16,
                "IVF cells scanned per query (more: higher recall, slower)." + stored),
            flags.DEFINE_integer(
                "ef_search", None if when_querying else 128,
                "HNSW search beam width (more: higher recall, slower)." + stored))
