"""Aggregated representations of whole datasets, read from and written to files
(the original's `aggregation_extraction`).

Input: DelfFeatures files `<features_dir>/<name><feature_extension>`. For
regional aggregation, an optional mapping CSV names the region (box) feature
files of each image:

    name,index_image_id,box_id
    <box feature file basename>,<0-based position in the image list>,<box id>

and an image's regions are its boxes in box_id order. Without a mapping, the
image's own feature file is its single region.

Output: `<output_dir>/<name><ext>` DatumPairProto files (data, visual words as
uint32) with ext `.vlad`, `.asmk`, `.asmk_star`, or `.rvlad`, `.rasmk`,
`.rasmk_star` for regional aggregation.
"""

import csv
import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np

from delf_tf import checks
from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.aggregation.params import AggregationParams, AggregationTypeName
from delf_tf.io import atomic, datum_io, feature_io, revisited
from delf_tf.io.files import require_files
from delf_tf.progress import Progress
from delf_tf.protos import aggregation_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "OutputExtension", "ReadMappingBasenameToBoxNames", "ReadImageFeatures",
    "ComputeAggregatedRepresentations", "ExtractAggregatedRepresentationsToFiles",
    "FileVisualWords", "AggregationFiles", "ReadAggregatedRepresentations",
    # delf_tf's own API.
    "AggregationSettings", "FeatureFiles", "check_feature_files", "aggregate_images",
    "DatasetAggregationParams", "ExtractDatasetAggregation",
]

logger = logging.getLogger(__name__)

# An AggregationConfig or its typed AggregationParams.
AggregationSettings = aggregation_config_pb2.AggregationConfig | AggregationParams
_EXTENSIONS = {"VLAD": ".vlad", "ASMK": ".asmk", "ASMK_STAR": ".asmk_star"}


def OutputExtension(aggregation_config: AggregationSettings) -> str:
    """File extension of an aggregated representation, e.g. '.rasmk_star'."""
    extension = _EXTENSIONS[AggregationTypeName(aggregation_config)]
    if aggregation_config.use_regional_aggregation:
        extension = ".r" + extension[1:]
    return extension


def ReadMappingBasenameToBoxNames(
    mapping_path: str, image_names: Sequence[str]
) -> dict[str, list[str]]:
    """Reads a region mapping CSV (see module doc) into image name -> box
    feature basenames ordered by box_id."""
    if not os.path.isfile(mapping_path):
        raise FileNotFoundError(f"No such mapping file: {mapping_path}")
    boxes: dict[str, list[tuple[int, str]]] = {name: [] for name in image_names}
    with open(mapping_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        required = {"name", "index_image_id", "box_id"}
        if not required.issubset(reader.fieldnames or []):
            raise ValueError(
                f"Mapping file {mapping_path} needs columns {sorted(required)}, "
                f"has {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                image_id, box_id = int(row["index_image_id"]), int(row["box_id"])
            except ValueError:
                raise ValueError(f"{mapping_path}:{line}: ids must be integers: {row}") from None
            if not 0 <= image_id < len(image_names):
                raise ValueError(
                    f"{mapping_path}:{line}: index_image_id {image_id} is outside "
                    f"[0, {len(image_names)})")
            boxes[image_names[image_id]].append((box_id, row["name"]))
    return {name: [box for _, box in sorted(entries)] for name, entries in boxes.items()}


def _read_descriptors(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such feature file: {path}")
    descriptors = feature_io.read_features(path).descriptors
    if len(descriptors) and descriptors.dtype == np.uint8:
        raise ValueError(
            f"{path} holds binarized (uint8) descriptors; aggregation needs float ones")
    return descriptors


def ReadImageFeatures(
    name: str,
    features_dir: str,
    feature_extension: str,
    regional: bool,
    box_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Descriptors [N, D] of one image and, if `regional`, its per-region counts.

    With `box_names`, the regions are those box feature files; otherwise the
    image's own feature file is one region.
    """
    if box_names is None:
        descriptors = _read_descriptors(os.path.join(features_dir, name + feature_extension))
        return descriptors, (np.array([len(descriptors)]) if regional else None)
    per_box = [_read_descriptors(os.path.join(features_dir, box + feature_extension))
               for box in box_names]
    counts = np.array([len(d) for d in per_box], dtype=np.int64)
    non_empty = [d for d in per_box if len(d)]
    descriptors = np.concatenate(non_empty) if non_empty else np.zeros([0, 0])
    return descriptors, counts


@dataclasses.dataclass(frozen=True)
class FeatureFiles:
    """Where an image set's local features are: `<features_dir>/<name><extension>`
    (DelfFeatures), and for regional aggregation an optional region mapping CSV
    (see module doc) naming each image's box feature files."""

    features_dir: str
    extension: str = ".delf"
    mapping_path: str = ""

    def box_names(self, image_names: Sequence[str], params: AggregationSettings
                  ) -> dict[str, list[str]] | None:
        """Image name -> box feature basenames (regional with a mapping), else None."""
        if params.use_regional_aggregation and self.mapping_path:
            return ReadMappingBasenameToBoxNames(self.mapping_path, image_names)
        return None


def check_feature_files(image_names: Sequence[str], files: FeatureFiles,
                        params: AggregationSettings) -> None:
    """Raises FileNotFoundError naming the missing feature files (image files,
    or box files of the mapping for regional aggregation), if any."""
    box_names = files.box_names(image_names, params)
    paths = [os.path.join(files.features_dir, f + files.extension) for name in image_names
             for f in (box_names[name] if box_names is not None else [name])]
    require_files(paths, "feature files are", max_named=3)


def aggregate_images(
    image_names: Sequence[str],
    files: FeatureFiles,
    params: AggregationSettings,
    codebook: np.ndarray | None = None,
    description: str = "images",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(data, visual_words) of every image, as ExtractAggregatedRepresentation
    gives them; all feature files are checked to exist before any work. The
    codebook is read from `params.codebook_path` unless given."""
    check_feature_files(image_names, files, params)
    box_names = files.box_names(image_names, params)
    if codebook is None:
        codebook = codebook_lib.ReadCodebook(params.codebook_path)
    extractor = ExtractAggregatedRepresentation(params, codebook=codebook)

    results = []
    progress = Progress(len(image_names), "Aggregated", unit=description, every=100)
    for name in image_names:
        descriptors, counts = ReadImageFeatures(
            name, files.features_dir, files.extension, params.use_regional_aggregation,
            box_names[name] if box_names is not None else None)
        try:
            results.append(extractor.Extract(descriptors, counts))
        except ValueError as e:
            raise ValueError(f"Image {name}: {e}") from e
        progress.step()
    return results


def ComputeAggregatedRepresentations(
    image_names: Sequence[str],
    features_dir: str,
    aggregation_config: AggregationSettings,
    feature_extension: str = ".delf",
    mapping_path: str = "",
    codebook: np.ndarray | None = None,
    description: str = "images",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`aggregate_images` with loose arguments."""
    return aggregate_images(image_names, FeatureFiles(features_dir, feature_extension,
                                                      mapping_path),
                            aggregation_config, codebook, description)


def ExtractAggregatedRepresentationsToFiles(
    image_names: Sequence[str],
    features_dir: str,
    aggregation_config_path: str,
    mapping_path: str,
    output_aggregation_dir: str,
    feature_extension: str = ".delf",
) -> None:
    """Aggregates every image's features and writes one DatumPairProto file per
    image to `output_aggregation_dir` (see module doc)."""
    checks.relative_names(image_names, "image name")  # output files stay in the directory
    aggregation_config = AggregationParams.read(aggregation_config_path)
    extension = OutputExtension(aggregation_config)
    representations = aggregate_images(
        image_names, FeatureFiles(features_dir, feature_extension, mapping_path),
        aggregation_config)
    os.makedirs(output_aggregation_dir, exist_ok=True)
    atomic.remove_stale_temporaries(  # left by a killed run
            [os.path.join(output_aggregation_dir, name + extension) for name in image_names])
    for name, (data, words) in zip(image_names, representations):
        datum_io.WritePairToFile(
            data, FileVisualWords(words), os.path.join(output_aggregation_dir, name + extension))
    logger.info("Wrote %d %s files to %s", len(image_names), extension, output_aggregation_dir)


@dataclasses.dataclass(frozen=True)
class DatasetAggregationParams:
    """Which images of a Revisited dataset ExtractDatasetAggregation aggregates, how and into
    which directory (the flags of tools/extract_aggregation.py besides the feature files').

    Attributes:
      use_query_images: If True, processes the query images of the dataset; otherwise the
        index images.
      aggregation_config_path: Path to the AggregationConfig pbtxt to use.
      output_aggregation_dir: Directory where the aggregated representations are written.
      index_mapping_path: Optional CSV (columns name,index_image_id,box_id) naming the region
        feature files of each image, for regional aggregation; without it an image is one
        region. Ignored without use_regional_aggregation in the config.
    """
    use_query_images: bool = False
    aggregation_config_path: str = "/tmp/aggregation_config.pbtxt"
    output_aggregation_dir: str = "/tmp/aggregation"
    index_mapping_path: str = ""


def ExtractDatasetAggregation(dataset_file_path: str, features_dir: str,
                              params: DatasetAggregationParams,
                              feature_extension: str = ".delf") -> None:
    """ExtractAggregatedRepresentationsToFiles for the query or index images of the
    Revisited dataset file `dataset_file_path` (as the original's extract_aggregation)."""
    query_list, index_list, _ = revisited.ReadDatasetFile(dataset_file_path)
    ExtractAggregatedRepresentationsToFiles(
        query_list if params.use_query_images else index_list, features_dir,
        params.aggregation_config_path, params.index_mapping_path,
        params.output_aggregation_dir, feature_extension)


def FileVisualWords(words) -> np.ndarray:
    """Visual words as stored in a DatumPair file, uint32 [W]; VLAD's -1 (no visual words)
    is stored as an empty list."""
    if np.ndim(words) == 0:
        return np.zeros([0], dtype=np.uint32)
    return np.asarray(words).astype(np.uint32)


def AggregationFiles(
    image_names: Sequence[str],
    aggregation_dir: str,
    aggregation_config: AggregationSettings,
) -> list[str]:
    """Paths of the images' aggregated representation files."""
    extension = OutputExtension(aggregation_config)
    return [os.path.join(aggregation_dir, name + extension) for name in image_names]


def ReadAggregatedRepresentations(
    image_names: Sequence[str],
    aggregation_dir: str,
    aggregation_config: AggregationSettings,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reads the files written by ExtractAggregatedRepresentationsToFiles
    (ASMK* data comes back as uint8)."""
    paths = AggregationFiles(image_names, aggregation_dir, aggregation_config)
    require_files(paths, "aggregation files are", max_named=1)
    results = []
    for path in paths:
        data, words = datum_io.ReadPairFromFile(path)
        if path.endswith("asmk_star"):
            data = data.astype(np.uint8)
        results.append((data, words.astype(np.int32)))
    return results
