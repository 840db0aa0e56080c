"""Flag groups shared by the retrieval, aggregation, ASMK*, ELFM, global-index and metric tools.

Each `define_*` function defines one group of flags when a tool module calls it at its own
import and returns a frozen object of the group's FlagHolders; the object's methods turn the
parsed values into what the library takes (names of images, a VerificationParams, ...).
Importing this module defines no flag. The flags belong to the calling tool module: its
key flags, listed by its `--help` (this module disclaims them, see absl's
`flags.disclaim_key_flags`).
"""

import dataclasses
import glob
import os

from absl import flags

from delf_tf import checks
from delf_tf.matching import ransac
from delf_tf.matching.params import VerificationParams
from delf_tf.tools import config_flags

__all__ = [
    "ElfmModelFlags", "EvaluationFlags", "ImageFlags", "ImagePairFlags",
    "MetricFileFlags", "VerificationFlags", "define_elfm_model_flags", "define_evaluation_flags",
    "define_image_flags", "define_image_pair_flags", "define_metric_file_flags",
    "define_search_flags", "define_verification_flags",
]

# The flags defined below are attributed to (and are key flags of) the tool module that
# calls a define_* function, so that tool's --help lists them as its own.
flags.disclaim_key_flags()

# (what, format) of the feature files of each default extension, for the help texts.
_FEATURE_FILES = {
    ".delf": ("local feature files", "DelfFeatures: .delf for DELF, .delg_local for DELG"),
    ".delg_local": ("local feature files", "DelfFeatures: .delg_local for DELG, .delf for DELF"),
    ".delg_global": ("global descriptor files", "DatumProto, one [D] descriptor each"),
    ".elfm": ("ELFM files", "binary cluster codes"),
}


@dataclasses.dataclass(frozen=True)
class ImageFlags:
    """Which images a tool reads (a dataset file's list or a list file) and where their
    feature files <features_dir>/<name><extension> are."""
    dataset_file_path: flags.FlagHolder
    image_set: flags.FlagHolder | None
    list_images_path: flags.FlagHolder | None
    features_dir: flags.FlagHolder
    feature_extension: flags.FlagHolder | None
    every_file_by_default: bool

    def names(self) -> list[str]:
        """Names from --dataset_file_path (its --image_set list, else its index list) or from
        the list file; with neither and `every_file_by_default`, every feature file in the
        features directory (sorted). ValueError when there are none, or both are given."""
        from delf_tf.aggregation import asmk_search

        has_list = self.list_images_path is not None
        list_path = self.list_images_path.value if has_list else ""
        if self.every_file_by_default and not (self.dataset_file_path.value or list_path):
            return self._every_feature_file()
        if has_list and bool(self.dataset_file_path.value) == bool(list_path):
            raise ValueError(f"give exactly one of --{self.dataset_file_path.name} and "
                             f"--{self.list_images_path.name}")
        image_set = self.image_set.value if self.image_set is not None else "index"
        return asmk_search.ReadImageNames(self.dataset_file_path.value, image_set, list_path)

    def paths(self, names: list[str]) -> list[str]:
        """The feature file of each name: <features_dir>/<name><extension>."""
        extension = self.feature_extension.value
        return [os.path.join(self.features_dir.value, name + extension) for name in names]

    def files(self, mapping_path: str = ""):
        """The feature files as the aggregation library's FeatureFiles (with an optional
        region mapping CSV)."""
        from delf_tf.aggregation.aggregation_extraction import FeatureFiles

        return FeatureFiles(self.features_dir.value, self.feature_extension.value, mapping_path)

    def _every_feature_file(self) -> list[str]:
        extension = self.feature_extension.value
        pattern = os.path.join(glob.escape(self.features_dir.value), "*" + extension)
        names = sorted(os.path.basename(p)[:-len(extension)] for p in glob.glob(pattern))
        if not names:
            raise ValueError(f"no *{extension} files in {self.features_dir.value}")
        return names


def define_image_flags(
    *,
    dataset_file_path: str = "",
    image_set: str | None = "index",
    list_file: bool = True,
    features_dir_name: str = "features_dir",
    features_dir: str | None = "",
    feature_extension: str = ".delf",
    extension_flag: bool = True,
    every_file_by_default: bool = False,
) -> ImageFlags:
    """Defines --dataset_file_path, --image_set (default `image_set`; None: no flag, the
    index list), --list_images_path (if `list_file`), the features directory flag
    `features_dir_name` and --feature_extension (if `extension_flag`)."""
    from delf_tf.aggregation import asmk_search

    files = _FEATURE_FILES[feature_extension]
    file_name = "<name>" + ("<feature_extension>" if extension_flag else feature_extension)
    alternatives = "; or give --list_images_path" if list_file else ""
    if every_file_by_default:
        alternatives += f". Without either, every feature file in --{features_dir_name} is used"
    return ImageFlags(
        flags.DEFINE_string(
            "dataset_file_path", dataset_file_path,
            "Revisited-format dataset file (.mat) naming the images"
            + (" (with --image_set)" if image_set else "") + alternatives + "."),
        None if image_set is None else flags.DEFINE_enum(
            "image_set", image_set, list(asmk_search.IMAGE_SETS),
            "Which list of --dataset_file_path names the images: 'query' or 'index'."),
        None if not list_file else flags.DEFINE_string(
            "list_images_path", "",
            "Text file with one image name per line (instead of --dataset_file_path)."),
        flags.DEFINE_string(
            features_dir_name, features_dir,
            f"Directory of the {files[0]} {file_name}."),
        None if not extension_flag else flags.DEFINE_string(
            "feature_extension", feature_extension,
            f"Extension of the {files[0]} ({files[1]})."),
        every_file_by_default)


@dataclasses.dataclass(frozen=True)
class VerificationFlags:
    """Geometric verification: descriptor matching, then an affine RANSAC."""
    descriptor_matching_threshold: flags.FlagHolder
    ransac_residual_threshold: flags.FlagHolder
    use_ratio_test: flags.FlagHolder
    ransac_seed: flags.FlagHolder
    ransac_max_trials: flags.FlagHolder
    ransac_backend: flags.FlagHolder

    def params(self) -> VerificationParams:
        """The flags' values as the library's VerificationParams (checked there; the
        thresholds first here, so an error names the tool's own flag)."""
        for holder in (self.descriptor_matching_threshold, self.ransac_residual_threshold,
                       self.ransac_max_trials):
            checks.positive(f"--{holder.name}", holder.value)
        return VerificationParams(
            descriptor_matching_threshold=self.descriptor_matching_threshold.value,
            ransac_residual_threshold=self.ransac_residual_threshold.value,
            use_ratio_test=self.use_ratio_test.value, ransac_seed=self.ransac_seed.value,
            max_trials=self.ransac_max_trials.value, ransac_backend=self.ransac_backend.value)


def define_verification_flags(
    *,
    descriptor_matching_threshold: float,
    ransac_residual_threshold: float,
    threshold_name: str = "descriptor_matching_threshold",
) -> VerificationFlags:
    """Defines the matching threshold flag (named `threshold_name`), --ransac_residual_threshold,
    --use_ratio_test, --ransac_seed, --ransac_max_trials and --ransac_backend."""
    return VerificationFlags(
        flags.DEFINE_float(
            threshold_name, descriptor_matching_threshold,
            "Largest descriptor distance of a putative local match (binarized descriptors: "
            "2 * sqrt(hamming / bits), so the float thresholds apply)."),
        flags.DEFINE_float(
            "ransac_residual_threshold", ransac_residual_threshold,
            "Largest transfer error in pixels of a RANSAC inlier."),
        flags.DEFINE_boolean(
            "use_ratio_test", False,
            "Keep a match if d1 < threshold * d2 instead of d1 < threshold."),
        flags.DEFINE_integer(
            "ransac_seed", 0,
            "Seed of RANSAC (the same seed gives the same inliers)."),
        flags.DEFINE_integer(
            "ransac_max_trials", ransac.DEFAULT_MAX_TRIALS,
            "Number of random 3-point RANSAC samples per verified pair."),
        flags.DEFINE_enum(
            "ransac_backend", ransac.DEFAULT_BACKEND, list(ransac.BACKENDS),
            "RANSAC implementation (addition to the original): numpy (the original's "
            "scikit-image algorithm and random samples, vectorized: same inliers, a few ms per "
            "pair), opencv (fastest; same statistics, different samples) or skimage (the "
            "original's code, ~0.3 s per pair)."))


@dataclasses.dataclass(frozen=True)
class EvaluationFlags:
    """A Revisited Oxford/Paris evaluation: ground truth, both sides' files, outputs."""
    dataset_file_path: flags.FlagHolder
    query_features_dir: flags.FlagHolder
    index_features_dir: flags.FlagHolder
    output_dir: flags.FlagHolder


def define_evaluation_flags(
    *, files: str, query_features_dir: str, index_features_dir: str, output_dir: str,
    index_note: str = "",
) -> EvaluationFlags:
    """Defines --dataset_file_path (ground truth), --query_features_dir and
    --index_features_dir (directories of `files`; `index_note` ends the latter's help) and
    --output_dir."""
    return EvaluationFlags(
        flags.DEFINE_string(
            "dataset_file_path", "/tmp/gnd_roxford5k.mat",
            "Ground-truth .mat file of the Revisited dataset (gnd_roxford5k.mat, "
            "gnd_rparis6k.mat)."),
        flags.DEFINE_string(
            "query_features_dir", query_features_dir,
            f"Directory of the queries' {files}."),
        flags.DEFINE_string(
            "index_features_dir", index_features_dir,
            f"Directory of the index images' {files}{index_note}."),
        flags.DEFINE_string(
            "output_dir", output_dir,
            "Directory where metrics.txt and the rankings (.npy) are written."))


def define_search_flags() -> config_flags.ConfigFlags:
    """Defines --nprobe and --ef_search of a global index being queried: GlobalIndexParams'
    fields, default None (the values stored in the index); `.values()` is what QueryFromFiles
    takes."""
    from delf_tf.retrieval import global_index

    return config_flags.define_config_flags(
        global_index.GlobalIndexParams, only=("nprobe", "ef_search"),
        defaults={"nprobe": None, "ef_search": None},
        help_suffix=" Default: the value the index was built with.")


@dataclasses.dataclass(frozen=True)
class MetricFileFlags:
    """A Google Landmarks v2 solution CSV and the predictions CSV scored against it."""
    solution_path: flags.FlagHolder
    predictions_path: flags.FlagHolder


def define_metric_file_flags(*, solution_columns: str,
                             predictions_columns: str) -> MetricFileFlags:
    """Defines --solution_path and --predictions_path (CSV files with these columns)."""
    return MetricFileFlags(
        flags.DEFINE_string(
            "solution_path", "/tmp/solution.csv",
            f"Solution CSV: {solution_columns}."),
        flags.DEFINE_string(
            "predictions_path", "/tmp/predictions.csv",
            f"Predictions CSV: {predictions_columns}."))


@dataclasses.dataclass(frozen=True)
class ImagePairFlags:
    """Two images, their local feature files and the picture drawn of them."""
    image_1_path: flags.FlagHolder
    image_2_path: flags.FlagHolder
    features_1_path: flags.FlagHolder
    features_2_path: flags.FlagHolder
    output_image: flags.FlagHolder

    def paths(self) -> tuple[str, str, str, str]:
        """(image_1_path, image_2_path, features_1_path, features_2_path), the order the
        library's pair functions (matching.match_images) take them in."""
        return (self.image_1_path.value, self.image_2_path.value, self.features_1_path.value,
                self.features_2_path.value)


def define_image_pair_flags(*, images: tuple[str | None, str | None],
                            features: tuple[str | None, str | None], output_image: str,
                            output_optional: bool = False) -> ImagePairFlags:
    """Defines --image_{1,2}_path, --features_{1,2}_path (defaults `images`, `features`)
    and --output_image (may be empty, for no picture, if `output_optional`)."""
    holders = []
    for i, (image, feature) in enumerate(zip(images, features), 1):
        holders.append(flags.DEFINE_string(
            f"image_{i}_path", image,
            f"Path to the {('first', 'second')[i - 1]} image."))
        holders.append(flags.DEFINE_string(
            f"features_{i}_path", feature,
            f"DelfFeatures file (.delf / .delg_local) of image {i}, locations in its pixels."))
    return ImagePairFlags(holders[0], holders[2], holders[1], holders[3], flags.DEFINE_string(
        "output_image", output_image,
        "Where to save the picture (.png, .jpg, ...)"
        + ("; empty: none." if output_optional else ".")))


@dataclasses.dataclass(frozen=True)
class ElfmModelFlags:
    """An ELFM model and how it describes an image (pyramid, N, K, GeM power, size limit)."""
    model_path: flags.FlagHolder
    image_scales: flags.FlagHolder
    num_features: flags.FlagHolder
    num_clusters: flags.FlagHolder
    gem_power: flags.FlagHolder
    max_image_size: flags.FlagHolder

    def options(self) -> dict:
        """The ElfmExtractor options (scales, num_features, num_clusters, gem_power,
        max_image_size) of the flags."""
        return {"scales": [float(s) for s in self.image_scales.value],
                "num_features": self.num_features.value,
                "num_clusters": self.num_clusters.value, "gem_power": self.gem_power.value,
                "max_image_size": self.max_image_size.value}

    def extractor(self):
        """The ElfmExtractor of --model_path with these options (loads TensorFlow)."""
        from delf_tf.elfm import extraction

        return extraction.ElfmExtractor(self.model_path.value, **self.options())


def define_elfm_model_flags(model_path: str | None = "/tmp/delg/delf_weights") -> ElfmModelFlags:
    """Defines --model_path (default `model_path`), --image_scales, --num_features,
    --num_clusters, --gem_power and --max_image_size with the ELFM paper's defaults."""
    from delf_tf.elfm import extraction  # the defaults; the calling tools load TF anyway
    from delf_tf.elfm import functional as F

    return ElfmModelFlags(
        flags.DEFINE_string(
            "model_path", model_path,
            "DELG checkpoint prefix (with its .json sidecar) or an ELFM SavedModel directory "
            "written by export_elfm_model.py."),
        flags.DEFINE_list(
            "image_scales", [f"{s:.6f}" for s in extraction.DEFAULT_SCALES],
            "Pyramid scales whose local vectors are merged (the paper's five)."),
        flags.DEFINE_integer(
            "num_features", F.DEFAULT_NUM_FEATURES,
            "N: local vectors kept, by largest L2 norm over all scales."),
        flags.DEFINE_integer(
            "num_clusters", F.DEFAULT_NUM_CLUSTERS,
            "K: k-means clusters per image."),
        flags.DEFINE_float(
            "gem_power", F.DEFAULT_GEM_POWER,
            "GeM power p pooling each cluster."),
        flags.DEFINE_integer(
            "max_image_size", extraction.DEFAULT_MAX_IMAGE_SIZE,
            "Images are shrunk so their longer side is at most this (-1: never); a query "
            "crop gets this times crop size / image size."))
