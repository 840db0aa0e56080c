"""Aggregation (VLAD / ASMK / ASMK*) and codebook sampling as Apache Beam pipelines.

Aggregation writes the same `<name><ext>` DatumPairProto files as
tools/extract_aggregation.py (whole-image aggregation; regional aggregation
stays on one machine), skipping images whose file exists, atomically, with the
codebook read once per worker. Codebook sampling draws up to
`descriptors_per_image` local descriptors from every image, each image's draw
seeded by its name, so the sample is the same on every runner and in
`SampleDescriptors` on one machine.
"""

import io
import os
import zlib
from collections.abc import Sequence

import numpy as np

from delf_tf import config as config_lib
from delf_tf.aggregation import aggregation_extraction
from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.beam import extraction
from delf_tf.extraction import per_image
from delf_tf.io import atomic, datum_io
from delf_tf.optional import import_optional

__all__ = [
    # The original's names (the compatibility surface).
    "ImageNames", "RunAggregation", "SampleImageDescriptors", "SampleDescriptors",
    "RunCodebookSampling",
    # delf_tf's own API.
    "AggregationJob",
]

beam = import_optional("apache_beam", "beam")
pipeline_options = import_optional("apache_beam.options.pipeline_options", "beam")


class AggregationJob:
    """Aggregates one image's feature file into `<output_dir>/<name><ext>`
    (the ExtractionJob interface: outputs, setup, run)."""

    def __init__(self, aggregation_config_path: str, features_dir: str, output_dir: str,
                 feature_extension: str = ".delf"):
        self.aggregation_config_path = aggregation_config_path
        self.features_dir = features_dir
        self.output_dir = output_dir
        self.feature_extension = feature_extension
        self._config = config_lib.ReadAggregationConfig(aggregation_config_path)
        if self._config.use_regional_aggregation:
            raise ValueError("regional aggregation is not a Beam pipeline; use "
                             "tools/extract_aggregation.py")
        self._extension = aggregation_extraction.OutputExtension(self._config)
        self._extractor = None

    def __getstate__(self):
        return {**self.__dict__, "_extractor": None}

    def outputs(self, task: per_image.ImageTask) -> list[str]:
        return [os.path.join(self.output_dir, task.name + self._extension)]

    def record_source(self) -> None:
        """Nothing to record: aggregated files follow from the feature files (whose folder
        records their model) and the aggregation config named by the run."""

    def setup(self) -> None:
        if self._extractor is None:
            os.makedirs(self.output_dir, exist_ok=True)
            codebook = codebook_lib.ReadCodebook(self._config.codebook_path)
            self._extractor = ExtractAggregatedRepresentation(self._config, codebook=codebook)

    def run(self, task: per_image.ImageTask) -> per_image.TaskResult:
        output = self.outputs(task)[0]
        if os.path.exists(output):
            return per_image.TaskResult("skipped", task.name)
        self.setup()
        try:
            descriptors, _ = aggregation_extraction.ReadImageFeatures(
                task.name, self.features_dir, self.feature_extension, regional=False)
            data, words = self._extractor.Extract(descriptors)
        except (FileNotFoundError, ValueError) as e:
            return per_image.TaskResult("failed", task.name, str(e))
        datum_io.WritePairToFile(data, aggregation_extraction.FileVisualWords(words), output)
        return per_image.TaskResult("done", task.name)


def ImageNames(list_images_path: str = "", dataset_file_path: str = "",
               image_set: str = "index") -> list[str]:
    """The image names of exactly one source: an image list (one path per line,
    named by file name without extension, as the Beam extraction names its files)
    or a Revisited .mat file's `image_set` ('query' or 'index') images."""
    if bool(list_images_path) == bool(dataset_file_path):
        raise ValueError("give exactly one of an image list and a dataset file")
    if list_images_path:
        return [task.name for task in per_image.TasksFromImageList(list_images_path)]
    return [task.name for task in per_image.TasksFromRevisited(dataset_file_path, "", image_set)]


def RunAggregation(names: Sequence[str], job: AggregationJob, report_path: str,
                   pipeline_args: Sequence[str] = ()) -> dict:
    """Aggregates the named images on a Beam runner; returns the done/skipped/failed report."""
    tasks = [per_image.ImageTask(name, "") for name in names]
    return extraction.RunExtraction(tasks, job, report_path, pipeline_args)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def SampleImageDescriptors(name: str, features_dir: str, feature_extension: str,
                           descriptors_per_image: int) -> np.ndarray:
    """Up to `descriptors_per_image` rows of one image's float descriptors, float32
    [n, D], drawn without replacement by a generator seeded with the name."""
    descriptors, _ = aggregation_extraction.ReadImageFeatures(
        name, features_dir, feature_extension, regional=False)
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if len(descriptors) > descriptors_per_image:
        rows = np.random.default_rng(_seed(name)).choice(
            len(descriptors), descriptors_per_image, replace=False)
        descriptors = descriptors[np.sort(rows)]
    return descriptors


def _concatenate(named: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    arrays = [d for _, d in sorted(named, key=lambda item: item[0]) if len(d)]
    if not arrays:
        raise ValueError("no descriptors were sampled (all feature files empty)")
    return np.concatenate(arrays)


def SampleDescriptors(names: Sequence[str], features_dir: str, feature_extension: str,
                      descriptors_per_image: int) -> np.ndarray:
    """The codebook training sample on one machine: images in name order."""
    return _concatenate([(name, SampleImageDescriptors(
        name, features_dir, feature_extension, descriptors_per_image)) for name in names])


def _write_npy(named, output_path: str) -> int:
    sample = _concatenate(named)
    buffer = io.BytesIO()
    np.save(buffer, sample)
    atomic.write_bytes_atomic(output_path, buffer.getvalue())
    return len(sample)


def RunCodebookSampling(names: Sequence[str], features_dir: str, feature_extension: str,
                        descriptors_per_image: int, output_path: str,
                        pipeline_args: Sequence[str] = ()) -> np.ndarray:
    """Writes the sample (float32 [M, D], .npy, atomically) to `output_path` and returns it."""
    options = pipeline_options.PipelineOptions(list(pipeline_args))

    def sample(name):
        return name, SampleImageDescriptors(name, features_dir, feature_extension,
                                            descriptors_per_image)

    with beam.Pipeline(options=options) as root:
        _ = (root
             | "Names" >> beam.Create(sorted(set(names)))
             | "Spread" >> beam.Reshuffle()
             | "Sample" >> beam.Map(sample)
             | "Collect" >> beam.combiners.ToList()
             | "Write" >> beam.Map(_write_npy, output_path))
    return np.load(output_path)
