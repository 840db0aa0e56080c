"""Feature extraction over many images: DELF over a list of image paths, DELG
over a Revisited Oxford/Paris dataset (query images cropped to their box).

Both skip outputs that already exist, log progress, split the work with
num_shards / shard_index, write atomically, and keep going past an image that
fails (unreadable, or any error while extracting it): the failures are logged
with their error and returned.
"""

import collections
import concurrent.futures
import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
from PIL import Image

from delf_tf import checks, utils
from delf_tf import config as config_lib
from delf_tf.extraction import extractor as extractor_lib
from delf_tf.extraction import provenance
from delf_tf.io import atomic, datum_io, feature_io
from delf_tf.progress import Progress

__all__ = [
    # The original's names (the compatibility surface).
    "ExtractDelfFeatures", "ExtractDelgFeatures",
    # delf_tf's own API.
    "DELF_EXTENSION", "DELG_GLOBAL_EXTENSION", "DELG_LOCAL_EXTENSION", "IMAGE_SETS", "shard",
    "crop_query_image", "SYSTEMATIC_FAILURES", "check_distinct_outputs", "PREFETCH_IMAGES",
    "DECODE_THREADS", "record_source",
]

logger = logging.getLogger(__name__)

DELF_EXTENSION = ".delf"
DELG_GLOBAL_EXTENSION = ".delg_global"
DELG_LOCAL_EXTENSION = ".delg_local"
IMAGE_SETS = ("query", "index")

T = TypeVar("T")


def shard(items: Sequence[T], num_shards: int, shard_index: int) -> list[tuple[int, T]]:
    """(position, item) pairs of shard `shard_index`: items whose position is
    shard_index modulo num_shards."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    return [(i, item) for i, item in enumerate(items) if i % num_shards == shard_index]


def crop_query_image(image: Image.Image, bbx: Sequence[float]) -> tuple[Image.Image, float]:
    """Crops a Revisited query to its box [x1, y1, x2, y2] (rounded to pixels, then
    clipped to the image: a box partly outside is cut to the part inside, never padded).

    Returns (cropped image, resize_factor = max(cropped size) / max(original
    size)), the factor the size limits are scaled by so the crop is resized as it
    would be inside the full image.

    Raises:
      ValueError: the box is not 4 finite numbers with x1 < x2 and y1 < y2, or lies
        wholly outside the image (nothing left after clipping), naming box and size.
    """
    values = [float(v) for v in np.asarray(bbx, dtype=np.float64).ravel()]
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"invalid query box {values} (expected [x1, y1, x2, y2])")
    box = [int(round(v)) for v in values]
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"invalid query box {values} (expected [x1, y1, x2, y2])")
    width, height = image.size
    clipped = (max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ValueError(f"query box {values} lies outside the {width}x{height} image "
                         "(nothing is left after clipping it to the image)")
    if clipped != tuple(box):
        logger.info("Query box %s clipped to the %dx%d image: %s", values, width, height,
                    list(clipped))
    cropped = image.crop(clipped)
    return cropped, max(cropped.size) / max(image.size)


class _UnreadableImage(Exception):
    """An input image is missing, corrupt or has an invalid query box."""


def _load_image(path: str) -> Image.Image:
    try:
        return utils.RgbLoader(path)
    except (FileNotFoundError, ValueError) as e:
        raise _UnreadableImage(str(e)) from e


# When this many images in a row fail with an error other than an unreadable
# image before any succeeded, the cause is the model or config, not the images:
# the job stops instead of logging the same error for every image.
SYSTEMATIC_FAILURES = 5


def check_distinct_outputs(output_of: dict[str, str]) -> None:
    """Raises ValueError naming two inputs that would write the same output file
    (`a/x.jpg` and `b/x.jpg` both give `x.delf`); nothing has been written then.

    `output_of` maps each input (image path or name) to its output path; an input
    listed twice is the same image and is not a collision.
    """
    first_input: dict[str, str] = {}
    for name, output in output_of.items():
        other = first_input.setdefault(os.path.normcase(os.path.abspath(output)), name)
        if other != name:
            raise ValueError(f"{other} and {name} would both be written to {output}; rename "
                             "one of them or extract them into different directories")


# Images decoded ahead of the model, in threads (JPEG decoding releases the GIL), so
# the model never waits on decoding.
PREFETCH_IMAGES = 4
DECODE_THREADS = 2


def _prefetched(items: Sequence[tuple], load_one, depth: int | None = None):
    """Yields (item, future of load_one(item[2])), loading up to `depth` (default
    PREFETCH_IMAGES) items ahead; depth 0 loads each item when it is yielded."""
    depth = PREFETCH_IMAGES if depth is None else depth
    if depth <= 0:
        for item in items:
            future: concurrent.futures.Future = concurrent.futures.Future()
            try:
                future.set_result(load_one(item[2]))
            except Exception as e:  # raised by future.result(), where failures are handled
                future.set_exception(e)
            yield item, future
        return
    with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
        pending: collections.deque = collections.deque()
        upcoming = iter(items)
        for item in itertools.islice(upcoming, depth):
            pending.append((item, pool.submit(load_one, item[2])))
        while pending:
            item, future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, pool.submit(load_one, following[2])))
            yield item, future


def _run(jobs: Iterable[tuple[str, Sequence[str], object]], total: int, what: str,
         load_one, extract_one, overwrite: bool = False) -> list[str]:
    """Runs extract_one(job, load_one(job)) for each (name, outputs, job); returns
    failed names. load_one (reading and decoding the image) runs ahead in threads.

    Images whose outputs all exist are skipped unless `overwrite` (outputs are
    replaced atomically then). A failing image is logged with its error and the
    job goes on; the failures are returned (the tools list them and exit non-zero).
    """
    jobs = list(jobs)
    if atomic.remove_stale_temporaries([path for _, outputs, _ in jobs for path in outputs]):
        logger.info("Removed temporary files left by an interrupted run")
    failures = []
    progress = Progress(total, f"{what}:", unit="images", every=50)
    succeeded = skipped = 0
    todo = []
    for name, outputs, job in jobs:
        if not overwrite and all(os.path.exists(path) for path in outputs):
            skipped += 1
            progress.step()
        else:
            todo.append((name, outputs, job))
    for (name, _, job), loaded in _prefetched(todo, load_one):
        try:
            extract_one(job, loaded.result())
            succeeded += 1
        except _UnreadableImage as e:
            logger.error("Skipping %s: %s", name, e)
            failures.append(name)
        except Exception as e:  # one bad image must not stop the job
            logger.error("Skipping %s: %s: %s", name, type(e).__name__, e)
            failures.append(name)
            if not succeeded and len(failures) >= SYSTEMATIC_FAILURES:
                raise RuntimeError(
                        f"{what}: the first {len(failures)} images all failed, the last "
                        f"({name}) with {type(e).__name__}: {e}") from e
        progress.step()
    if skipped:
        # A rerun with another model or config would otherwise keep old features unnoticed.
        logger.warning("%s: %d image(s) skipped because their outputs already exist (pass "
                       "--overwrite to replace them)", what, skipped)
    return failures


def record_source(output_dir: str, config_path: str, config, overwrite: bool,
                   **options) -> None:
    """Records the model and config in the output directory; warns if earlier outputs
    there came from others (see delf_tf.extraction.provenance)."""
    provenance.record_source(
            output_dir,
            provenance.describe_source(config.model_path, config_path, str(config), **options),
            overwrite)


def ExtractDelfFeatures(config_path: str, list_images_path: str, output_dir: str, *,
                        num_shards: int = 1, shard_index: int = 0,
                        overwrite: bool = False) -> list[str]:
    """DELF features of every image listed (one path per line) in
    `list_images_path` -> `<output_dir>/<basename>.delf`.

    Two listed images with the same basename raise ValueError before anything is
    written. Existing outputs are skipped unless `overwrite`.

    Returns:
      paths of the images that failed (unreadable, or any error while extracting
      them; their features are not written).
      Other errors (model, config) raise.
    """
    config = config_lib.ReadDelfConfig(config_path)
    if not os.path.isfile(list_images_path):
        raise FileNotFoundError(f"No such image list (--list_images_path): {list_images_path}")
    with open(list_images_path, encoding="utf-8") as f:
        image_paths = [line.strip() for line in f if line.strip()]
    check_distinct_outputs({path: _delf_output(output_dir, path) for path in image_paths})
    selected = shard(image_paths, num_shards, shard_index)
    os.makedirs(output_dir, exist_ok=True)
    record_source(output_dir, config_path, config, overwrite)
    extract = extractor_lib.MakeExtractor(config)

    def load_one(image_path):
        return np.asarray(_load_image(image_path))

    def extract_one(image_path, image):
        local = extract(image)["local_features"]
        feature_io.write_features(_delf_output(output_dir, image_path), local)

    jobs = ((path, [_delf_output(output_dir, path)], path) for _, path in selected)
    return _run(jobs, len(selected), "DELF extraction", load_one, extract_one, overwrite)


def _delf_output(output_dir: str, image_path: str) -> str:
    base = os.path.splitext(os.path.basename(image_path))[0]
    return os.path.join(output_dir, base + DELF_EXTENSION)


def ExtractDelgFeatures(delf_config_path: str, dataset_file_path: str, images_dir: str,
                        image_set: str, output_features_dir: str, *,
                        binarize_local_descriptors: bool = False, num_shards: int = 1,
                        shard_index: int = 0, image_extension: str = ".jpg",
                        overwrite: bool = False) -> list[str]:
    """DELG features of a Revisited dataset's query or index images.

    Writes `<name>.delg_global` (DatumProto) and/or `<name>.delg_local`
    (DelfFeatures) per image, as the config enables. Query images are cropped to
    their ground-truth box first. Images whose outputs exist are skipped unless
    `overwrite` (then replaced atomically).

    Returns:
      names of the images that failed (unreadable, invalid query box, or any error
      while extracting them).
      Other errors (model, config) raise.
    """
    from delf_tf.io import revisited as dataset

    if image_set not in IMAGE_SETS:
        raise ValueError(f"--image_set must be one of {IMAGE_SETS}, got {image_set!r}")
    config = config_lib.ReadDelfConfig(delf_config_path)
    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    names = checks.relative_names(query_list if image_set == "query" else index_list,
                                  "image name")
    selected = shard(names, num_shards, shard_index)
    os.makedirs(output_features_dir, exist_ok=True)
    record_source(output_features_dir, delf_config_path, config, overwrite,
                   binarize_local_descriptors=binarize_local_descriptors)
    extract = extractor_lib.MakeExtractor(
            config, binarize_local_descriptors=binarize_local_descriptors)

    def load_one(job):
        position, name = job
        image = _load_image(os.path.join(images_dir, name + image_extension))
        resize_factor = 1.0
        if image_set == "query":
            try:
                image, resize_factor = crop_query_image(image, ground_truth[position]["bbx"])
            except ValueError as e:
                raise _UnreadableImage(f"{name}: {e}") from e
        return np.asarray(image), resize_factor

    def extract_one(job, loaded):
        _, name = job
        image, resize_factor = loaded
        _write_delg(config, output_features_dir, name,
                    extract(image, resize_factor=resize_factor))

    jobs = ((name, _delg_outputs(config, output_features_dir, name), (position, name))
            for position, name in selected)
    return _run(jobs, len(selected), f"DELG {image_set} extraction", load_one, extract_one,
                overwrite)


def _delg_outputs(config, output_features_dir: str, name: str) -> list[str]:
    """The files extraction writes for image `name`, as the config enables."""
    paths = []
    if config.use_global_features:
        paths.append(os.path.join(output_features_dir, name + DELG_GLOBAL_EXTENSION))
    if config.use_local_features:
        paths.append(os.path.join(output_features_dir, name + DELG_LOCAL_EXTENSION))
    return paths


def _write_delg(config, output_features_dir: str, name: str, features) -> None:
    # Local first: the global file doubles as the "done" marker for readers
    # that only check one file.
    if config.use_local_features:
        feature_io.write_features(os.path.join(output_features_dir, name + DELG_LOCAL_EXTENSION),
                                  features["local_features"])
    if config.use_global_features:
        datum_io.WriteToFile(
                features["global_descriptor"],
                os.path.join(output_features_dir, name + DELG_GLOBAL_EXTENSION))
