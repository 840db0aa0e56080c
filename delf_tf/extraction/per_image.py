"""Per-image extraction jobs: one image in, the same files as the batch tools out.

A job turns an `ImageTask` into its feature files (`outputs`), loading its model
once (`setup`) and writing every file atomically, local features before the
global descriptor (the global file doubles as the "done" marker). The batch
tools and the Apache Beam pipelines (delf_tf.beam) run the same jobs, so a
distributed run writes byte-identical files. Jobs are picklable until `setup`
(they hold paths only), as distributed runners need.

Jobs by method name (`JOBS`): delf (`<name>.delf`), delg and delg_star
(`<name>.delg_global` / `<name>.delg_local`, DELG* with binarized local
descriptors), as the DelfConfig enables them; how (`<name>.delg_local` from a
HOW SavedModel with a local-only DelfConfig such as configs/how_r18_config.pbtxt,
as tools/extract_delg_features.py writes them); elfm (`<name>.elfm` and
optionally `<name>.elfm_float` from a DELG checkpoint or ELFM SavedModel, as
tools/extract_elfm_features.py writes them).
"""

import abc
import dataclasses
import json
import os

import numpy as np

from delf_tf import config as config_lib
from delf_tf import utils
from delf_tf.extraction import batch, extractor
from delf_tf.io import datum_io, feature_io

__all__ = [
    # The original's names (the compatibility surface).
    "MakeJob", "TasksFromImageList", "TasksFromRevisited", "TasksFromGldv2Csv",
    # delf_tf's own API.
    "ImageTask", "UnreadableImage", "TaskResult", "ExtractionJob", "DelfJob", "DelgJob",
    "HowJob", "ElfmJob", "JOBS", "ExtractionParams",
]


@dataclasses.dataclass(frozen=True)
class ImageTask:
    """One image to extract: its output base name, its path, and for Revisited
    query images the box [x1, y1, x2, y2] it is cropped to."""
    name: str
    image_path: str
    bbx: tuple[float, ...] | None = None


class UnreadableImage(Exception):
    """The image is missing, corrupt, or its query box is invalid (the task
    fails; other images go on)."""


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """status: 'done', 'skipped' (all outputs existed) or 'failed' (with error)."""
    status: str
    name: str
    error: str = ""


class ExtractionJob(abc.ABC):
    """Extracts one image into files under `output_dir`."""

    def __init__(self, delf_config_path: str, output_dir: str):
        self.delf_config_path = delf_config_path
        self.output_dir = output_dir
        self._extract = None
        self._config = None

    def __getstate__(self):
        # The loaded model stays on the machine that loaded it.
        return {**self.__dict__, "_extract": None, "_config": None}

    @property
    def config(self):
        if self._config is None:
            self._config = config_lib.ReadDelfConfig(self.delf_config_path)
        return self._config

    @abc.abstractmethod
    def outputs(self, task: ImageTask) -> list[str]:
        """The files `process` writes for `task`."""

    def record_source(self) -> None:
        """Records the model and config in `output_dir` (run once, before the workers); warns
        if earlier outputs there came from others (delf_tf.extraction.provenance)."""
        os.makedirs(self.output_dir, exist_ok=True)
        batch.record_source(self.output_dir, self.delf_config_path, self.config, False,
                            **self._source_options())

    def _source_options(self) -> dict:
        """Options besides model and config that change the outputs."""
        return {}

    @abc.abstractmethod
    def _make_extractor(self):
        """The loaded model: a callable (image uint8 [H, W, 3], resize_factor) -> features."""

    @abc.abstractmethod
    def _write(self, task: ImageTask, features: dict) -> None:
        """Writes the extracted features of `task` (atomically)."""

    def setup(self) -> None:
        """Loads the model (once per worker)."""
        if self._extract is None:
            os.makedirs(self.output_dir, exist_ok=True)
            self._extract = self._make_extractor()

    def process(self, task: ImageTask) -> None:
        """Extracts `task` and writes its files. Raises UnreadableImage for a bad image."""
        self.setup()
        try:
            image = utils.RgbLoader(task.image_path)
        except (FileNotFoundError, ValueError) as e:
            raise UnreadableImage(str(e)) from e
        resize_factor = 1.0
        if task.bbx is not None:
            try:
                image, resize_factor = batch.crop_query_image(image, task.bbx)
            except ValueError as e:
                raise UnreadableImage(f"{task.name}: {e}") from e
        self._write(task, self._extract(np.asarray(image), resize_factor=resize_factor))

    def run(self, task: ImageTask) -> TaskResult:
        """Skips a task whose outputs all exist, else processes it; an unreadable
        image gives a 'failed' result (other errors raise: they are systematic)."""
        if all(os.path.exists(path) for path in self.outputs(task)):
            return TaskResult("skipped", task.name)
        try:
            self.process(task)
        except UnreadableImage as e:
            return TaskResult("failed", task.name, str(e))
        return TaskResult("done", task.name)


class DelfJob(ExtractionJob):
    """DELF local features -> `<output_dir>/<name>.delf`."""

    def outputs(self, task):
        return [os.path.join(self.output_dir, task.name + batch.DELF_EXTENSION)]

    def _make_extractor(self):
        return extractor.MakeExtractor(self.config)

    def _write(self, task, features):
        feature_io.write_features(self.outputs(task)[0], features["local_features"])


class DelgJob(ExtractionJob):
    """DELG features -> `<name>.delg_local` and `<name>.delg_global`, as the
    DelfConfig enables them; binarized (DELG*) local descriptors with `binarize`."""

    def __init__(self, delf_config_path: str, output_dir: str, binarize: bool = False):
        super().__init__(delf_config_path, output_dir)
        self.binarize = binarize

    def _source_options(self):
        return {"binarize_local_descriptors": self.binarize}

    def outputs(self, task):
        paths = []
        if self.config.use_global_features:
            paths.append(os.path.join(self.output_dir, task.name + batch.DELG_GLOBAL_EXTENSION))
        if self.config.use_local_features:
            paths.append(os.path.join(self.output_dir, task.name + batch.DELG_LOCAL_EXTENSION))
        return paths

    def _make_extractor(self):
        return extractor.MakeExtractor(self.config, binarize_local_descriptors=self.binarize)

    def _write(self, task, features):
        if self.config.use_local_features:
            feature_io.write_features(
                os.path.join(self.output_dir, task.name + batch.DELG_LOCAL_EXTENSION),
                features["local_features"])
        if self.config.use_global_features:
            datum_io.WriteToFile(
                features["global_descriptor"],
                os.path.join(self.output_dir, task.name + batch.DELG_GLOBAL_EXTENSION))


class HowJob(DelgJob):
    """HOW local features -> `<name>.delg_local`: a HOW SavedModel (DELF's
    signature, tools/export_how_model.py) run by a local-only DelfConfig, the
    files tools/extract_delg_features.py writes with that config."""

    def outputs(self, task):
        config = self.config
        if config.use_global_features or not config.use_local_features:
            raise ValueError(f"{self.delf_config_path}: a HOW config extracts local features "
                             "only (use_local_features: true, use_global_features: false), "
                             "e.g. configs/how_r18_config.pbtxt")
        return super().outputs(task)


class ElfmJob(ExtractionJob):
    """ELFM binary codes -> `<name>.elfm` (and, with save_float, the float
    representatives -> `<name>.elfm_float`, written first: the codes mark the
    image done), as tools/extract_elfm_features.py writes them.

    model_path: DELG checkpoint prefix or ELFM SavedModel directory;
    extractor_options go to ElfmExtractor (scales, num_features, num_clusters,
    gem_power, max_image_size).
    """

    def __init__(self, model_path: str, output_dir: str, save_float: bool = False,
                 **extractor_options):
        super().__init__("", output_dir)
        self.model_path = model_path
        self.save_float = save_float
        self.extractor_options = extractor_options

    def record_source(self, overwrite: bool = False):
        from delf_tf.extraction import provenance

        os.makedirs(self.output_dir, exist_ok=True)
        options = json.dumps(self.extractor_options, sort_keys=True, default=str)
        provenance.record_source(
                self.output_dir, provenance.describe_source(self.model_path, "", options),
                overwrite=overwrite)

    def _paths(self, task):
        from delf_tf.elfm import descriptor

        return (os.path.join(self.output_dir, task.name + descriptor.CODES_EXTENSION),
                os.path.join(self.output_dir, task.name + descriptor.FLOAT_EXTENSION))

    def outputs(self, task):
        codes_path, float_path = self._paths(task)
        return [codes_path, float_path] if self.save_float else [codes_path]

    def _make_extractor(self):
        from delf_tf.elfm import extraction as elfm_extraction

        elfm = elfm_extraction.ElfmExtractor(self.model_path, **self.extractor_options)
        return lambda image, resize_factor: elfm(image, resize_factor)[0]

    def _write(self, task, features):
        from delf_tf.elfm import descriptor

        codes_path, float_path = self._paths(task)
        if self.save_float:
            datum_io.WriteToFile(features.representatives, float_path)
        descriptor.WriteCodesToFile(features.codes, features.dim, codes_path)


JOBS = {
    "delf": DelfJob,
    "delg": DelgJob,
    "delg_star": lambda config, output_dir: DelgJob(config, output_dir, binarize=True),
    "how": HowJob,
    "elfm": ElfmJob,
}


def MakeJob(method: str, model_source: str, output_dir: str, **options) -> ExtractionJob:
    """The job of `method` (a key of JOBS).

    model_source: the DelfConfig pbtxt for delf, delg, delg_star and how; the
    model path (DELG checkpoint prefix or ELFM SavedModel) for elfm. options:
    elfm only (save_float and ElfmExtractor's options).
    """
    if method not in JOBS:
        raise ValueError(f"method must be one of {sorted(JOBS)}, got {method!r}")
    if options and method != "elfm":
        raise ValueError(f"options {sorted(options)} apply to method 'elfm' only, "
                         f"not {method!r}")
    return JOBS[method](model_source, output_dir, **options)


def TasksFromImageList(list_images_path: str) -> list[ImageTask]:
    """One task per line (an image path); named by the file name without
    extension, as tools/extract_features.py names its outputs."""
    if not os.path.isfile(list_images_path):
        raise FileNotFoundError(f"No such image list: {list_images_path}")
    with open(list_images_path, encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    return [ImageTask(os.path.splitext(os.path.basename(p))[0], p) for p in paths]


def TasksFromRevisited(dataset_file_path: str, images_dir: str, image_set: str,
                       image_extension: str = ".jpg") -> list[ImageTask]:
    """The query (cropped to their boxes) or index images of a Revisited .mat file."""
    from delf_tf.io import revisited as dataset

    if image_set not in batch.IMAGE_SETS:
        raise ValueError(f"image_set must be one of {batch.IMAGE_SETS}, got {image_set!r}")
    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    names = query_list if image_set == "query" else index_list
    return [ImageTask(name, os.path.join(images_dir, name + image_extension),
                      tuple(float(v) for v in ground_truth[i]["bbx"])
                      if image_set == "query" else None)
            for i, name in enumerate(names)]


def TasksFromGldv2Csv(csv_path: str, images_dir: str) -> list[ImageTask]:
    """The images of a Google Landmarks v2 CSV (column `id`), found as
    `<images_dir>/<id>.jpg` or in the nested `<images_dir>/a/b/c/<id>.jpg` layout."""
    import csv

    from delf_tf.data import builder

    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"No such CSV: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "id" not in (reader.fieldnames or []):
            raise ValueError(f"{csv_path}: no 'id' column (columns: {reader.fieldnames})")
        ids = [row["id"] for row in reader]
    return [ImageTask(image_id, builder.image_path(images_dir, image_id)) for image_id in ids]


@dataclasses.dataclass(frozen=True)
class ExtractionParams:
    """Which job extracts which images into which directory (the flags of
    tools/beam_extract_features.py besides the ELFM model's and the image list's): `job` and
    `tasks` build what extraction.RunExtraction runs.

    Attributes:
      method: delf: .delf local features; delg: .delg_global/.delg_local as the config
        enables; delg_star: as delg with binarized local descriptors; how: .delg_local from a
        HOW SavedModel with a local-only config (configs/how_r18_config.pbtxt); elfm: .elfm
        binary codes (and .elfm_float with --save_float_descriptors) from --model_path.
      delf_config_path: delf/delg/delg_star/how: DelfConfig pbtxt whose model_path is the
        exported SavedModel.
      save_float_descriptors: With --method=elfm: also write <name>.elfm_float (float
        representatives, ~8 KB per cluster).
      output_dir: Directory of the feature files.
      image_extension: With --dataset_file_path: image file extension.
      gldv2_csv_path: Google Landmarks v2 CSV with an id column.
      images_dir: With --dataset_file_path or --gldv2_csv_path: the images' directory.
    """
    method: str = "delg"  # a key of JOBS
    delf_config_path: str | None = None
    save_float_descriptors: bool = False
    output_dir: str | None = None
    image_extension: str = ".jpg"
    gldv2_csv_path: str = ""
    images_dir: str = ""

    def job(self, elfm_model_path: str | None = None, **elfm_options) -> ExtractionJob:
        """MakeJob of `method`: with delf_config_path, or for elfm with `elfm_model_path`
        and ElfmExtractor's `elfm_options`; ValueError naming the missing flag."""
        if self.method != "elfm":
            if not self.delf_config_path:
                raise ValueError(f"--method={self.method} needs --delf_config_path")
            return MakeJob(self.method, self.delf_config_path, self.output_dir)
        if not elfm_model_path:
            raise ValueError("--method=elfm needs --model_path")
        return MakeJob("elfm", elfm_model_path, self.output_dir,
                       save_float=self.save_float_descriptors, **elfm_options)

    def tasks(self, list_images_path: str = "", dataset_file_path: str = "",
              image_set: str = "index") -> list[ImageTask]:
        """The images of exactly one of `list_images_path`, `dataset_file_path` (its
        `image_set`) and gldv2_csv_path (both of the latter in images_dir); ValueError when
        not exactly one is given or images_dir is missing."""
        sources = (list_images_path, dataset_file_path, self.gldv2_csv_path)
        if sum(map(bool, sources)) != 1:
            raise ValueError(
                "give exactly one of --list_images_path, --dataset_file_path, --gldv2_csv_path")
        if list_images_path:
            return TasksFromImageList(list_images_path)
        if not self.images_dir:
            raise ValueError("--images_dir is required with --dataset_file_path/--gldv2_csv_path")
        if dataset_file_path:
            return TasksFromRevisited(dataset_file_path, self.images_dir, image_set,
                                      self.image_extension)
        return TasksFromGldv2Csv(self.gldv2_csv_path, self.images_dir)
