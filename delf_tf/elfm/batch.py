"""ELFM over a Revisited Oxford/Paris-style dataset: extraction, index building, evaluation.

Files per image (see descriptor.py for their layout): `<name>.elfm` (packed codes) and, with
save_float, `<name>.elfm_float` (the float representatives, for the cosine ablation).
"""

import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from delf_tf.elfm import descriptor
from delf_tf.elfm import functional as F
from delf_tf.elfm import index as elfm_index
from delf_tf.io import datum_io
from delf_tf.progress import Progress

__all__ = [
    # The original's names (the compatibility surface).
    "ExtractElfmFeatures", "BuildElfmIndex", "EvaluateElfm",
    # delf_tf's own API.
    "PROTOCOLS",
]

logger = logging.getLogger(__name__)

PROTOCOLS = ("medium", "hard")


def ExtractElfmFeatures(model_path: str, dataset_file_path: str, images_dir: str,
                        image_set: str, output_features_dir: str, *, save_float: bool = False,
                        num_shards: int = 1, shard_index: int = 0, overwrite: bool = False,
                        image_extension: str = ".jpg", **extractor_options) -> list[str]:
    """ELFM files of a Revisited dataset's query (cropped to their box) or index images.

    model_path: DELG checkpoint prefix or ELFM SavedModel; extractor_options go to
    ElfmExtractor (scales, num_features, num_clusters, gem_power, max_image_size). Existing
    outputs are skipped unless `overwrite` (then replaced atomically). The model and options
    are recorded in the output directory (extraction_source.json); a rerun with others
    warns. Each image is extracted by the Beam job's ElfmJob, so both write the same files.
    Returns the names of images that could not be read.
    """
    from delf_tf.extraction import batch, per_image

    tasks = per_image.TasksFromRevisited(dataset_file_path, images_dir, image_set,
                                         image_extension)
    job = per_image.ElfmJob(model_path, output_features_dir, save_float, **extractor_options)
    job.record_source(overwrite)
    selected = batch.shard(tasks, num_shards, shard_index)
    progress = Progress(len(selected), "ELFM extraction:", unit="images", every=50)
    failures = []
    for _, task in selected:
        if overwrite or not all(os.path.exists(p) for p in job.outputs(task)):
            try:
                job.process(task)
            except per_image.UnreadableImage as e:
                logger.error("Skipping %s: %s", task.image_path, e)
                failures.append(task.name)
        progress.step()
    return failures


def _read_codes(features_dir: str, names: Sequence[str]):
    paths = [os.path.join(features_dir, n + descriptor.CODES_EXTENSION) for n in names]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} ELFM file(s) missing, e.g. {missing[0]}")
    codes, dims = zip(*(descriptor.ReadCodesFromFile(p) for p in paths)) if paths else ((), ())
    if len(set(dims)) > 1:
        raise ValueError(f"ELFM files in {features_dir} mix code widths {sorted(set(dims))}")
    return list(codes), (dims[0] if dims else 0)


def BuildElfmIndex(features_dir: str, names: Sequence[str], output_path: str,
                   num_clusters: int | None = None) -> elfm_index.ElfmIndex:
    """`<features_dir>/<name>.elfm` for every name -> index file at `output_path`."""
    codes, dim = _read_codes(features_dir, names)
    index = elfm_index.ElfmIndex.from_codes(codes, dim, names, num_clusters)
    index.save(output_path)
    return index


def _float_rankings(query_dir, index_dir, query_list, index_list):
    """Full rankings int [Q, N] by the float (cosine) ELFM similarity."""
    def read(directory, names):
        return [datum_io.ReadFromFile(os.path.join(directory, n + descriptor.FLOAT_EXTENSION))
                for n in names]

    queries, images = read(query_dir, query_list), read(index_dir, index_list)
    scores = np.array([[F.float_similarity(q, c) if len(q) and len(c) else 0.0
                        for c in images] for q in queries])
    return np.lexsort((np.broadcast_to(np.arange(len(images)), scores.shape), -scores), axis=1)


def _shortlisted_ranks(index, queries, global_features_dir, query_list, index_list,
                       shortlist_size, backend):
    """Full rankings int [Q, N]: ELFM order inside each query's global top `shortlist_size`,
    then the remaining images in global order."""
    from delf_tf.retrieval import evaluation, search

    if not global_features_dir:
        raise ValueError("a shortlist needs global_features_dir (with query/ and index/ "
                         ".delg_global files)")

    def paths(image_set, names):
        return [os.path.join(global_features_dir, image_set, n + evaluation.GLOBAL_EXTENSION)
                for n in names]

    global_ranks, _ = search.global_search(
            evaluation.read_global_descriptors(paths("query", query_list)),
            evaluation.read_global_descriptors(paths("index", index_list)))
    size = min(int(shortlist_size), len(index_list))
    reranked = index.search(queries, shortlist=global_ranks[:, :size], backend=backend)
    return np.stack([np.concatenate([ids, rest]) for (ids, _), rest
                     in zip(reranked, global_ranks[:, size:])])


def EvaluateElfm(dataset_file_path: str, query_features_dir: str, output_dir: str, *,
                 index_path: str | None = None, index_features_dir: str | None = None,
                 use_float: bool = False, backend: str = "auto",
                 global_features_dir: str | None = None, shortlist_size: int = 0,
                 log: Callable[[str], None] = print) -> dict[str, float]:
    """ELFM retrieval on a Revisited dataset -> `<output_dir>/metrics.txt`; returns mAP per
    protocol. The index comes from `index_path` (an ElfmIndex file whose names must be the
    dataset's index list) or is built in memory from `index_features_dir`. use_float ranks
    by the cosine variant (needs the .elfm_float files of both sides).

    With shortlist_size > 0, the ELFM scores re-rank only the top `shortlist_size` images of a
    global-descriptor search (`<global_features_dir>/{query,index}/<name>.delg_global`); the
    rest keep their global order after them."""
    from delf_tf.retrieval import dataset, evaluation

    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    _, medium_gt, hard_gt = dataset.ParseEasyMediumHardGroundTruth(ground_truth)
    protocol_gt = {"medium": medium_gt, "hard": hard_gt}
    start = time.perf_counter()
    if use_float:
        if index_features_dir is None:
            raise ValueError("the float variant needs index_features_dir (.elfm_float files)")
        ranks = _float_rankings(query_features_dir, index_features_dir, query_list, index_list)
    else:
        if index_path is not None:
            index = elfm_index.ElfmIndex.load(index_path)
            if index.names != list(index_list):
                raise ValueError(f"{index_path} does not hold the index images of "
                                 f"{dataset_file_path} in its order")
        elif index_features_dir is not None:
            codes, dim = _read_codes(index_features_dir, index_list)
            index = elfm_index.ElfmIndex.from_codes(codes, dim, index_list)
        else:
            raise ValueError("give index_path or index_features_dir")
        queries, dim = _read_codes(query_features_dir, query_list)
        if queries and dim != index.dim:
            raise ValueError(f"query codes have {dim} bits, the index {index.dim}")
        if shortlist_size > 0:
            ranks = _shortlisted_ranks(index, queries, global_features_dir, query_list,
                                       index_list, shortlist_size, backend)
        else:
            ranks = np.stack([ids for ids, _ in index.search(queries, backend=backend)])
    log(f"ELFM search ({'float' if use_float else 'binary'}): {len(query_list)} queries, "
        f"{len(index_list)} images, {time.perf_counter() - start:.2f} s")
    os.makedirs(output_dir, exist_ok=True)
    evaluation.save_npy(os.path.join(output_dir, "ranks.npy"), ranks.astype(np.int32))
    rankings = dict.fromkeys(PROTOCOLS, ranks)
    mean_ap, mean_precisions, _ = evaluation.save_metrics(
            rankings, protocol_gt, dataset.DEFAULT_PR_RANKS, output_dir)
    log(evaluation.format_metrics_table(mean_ap, mean_precisions, dataset.DEFAULT_PR_RANKS))
    return mean_ap
