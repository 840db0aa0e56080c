"""Revisited Oxford/Paris retrieval with DELG features (the original's
`perform_retrieval`): global search, optional re-ranking by geometric
verification, metrics per protocol.

Features are read from `<query_features_dir>/<query>.delg_global` (DatumProto,
[D]) and `.delg_local` (DelfFeatures; uint8 descriptors are binarized DELG* and
match by Hamming distance), and likewise for index images. Every file the run
needs is checked before any work starts (global files in full, local files by
their first feature), so a missing file or one of another descriptor type or
size stops the run at once with its name instead of after hours of re-ranking;
a local file broken further in raises, naming it, when re-ranking reads it.

Outputs in `output_dir`: `metrics.txt` (SaveMetricsFile format; keys medium,
hard and, with verification, medium_after_gv, hard_after_gv), the rankings as
int32 .npy arrays [Q, N] of index ids, best first: `ranks_before_gv.npy` and,
with verification, `ranks_after_gv_medium.npy`, `ranks_after_gv_hard.npy`
(the junk images skipped by re-ranking differ per protocol).
"""

import io
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from delf_tf import checks
from delf_tf.io import atomic, datum_io, wire_format
from delf_tf.io.files import require_files
from delf_tf.matching import reranking
from delf_tf.matching.params import VerificationParams
from delf_tf.progress import Progress
from delf_tf.retrieval import dataset, search

__all__ = [
    "evaluate_revisited",
    "rerank_all",
    "save_metrics",
    "format_metrics_table",
    "read_global_descriptors",
    "check_local_feature_files",
    "save_npy",
    "DEFAULT_VERIFICATION",
    "GLOBAL_EXTENSION",
    "LOCAL_EXTENSION",
    "PROTOCOLS",
    "METRICS_FILENAME",
]

GLOBAL_EXTENSION = ".delg_global"
LOCAL_EXTENSION = reranking.DELG_LOCAL_EXTENSION
PROTOCOLS = ("medium", "hard")
METRICS_FILENAME = "metrics.txt"
# The original's perform_retrieval defaults for DELG re-ranking.
DEFAULT_VERIFICATION = VerificationParams(
    descriptor_matching_threshold=1.0, ransac_residual_threshold=20.0, ransac_seed=0)


def _paths(directory: str, names: Sequence[str], extension: str) -> list[str]:
    return [os.path.join(directory, name + extension) for name in names]


def read_global_descriptors(paths: Sequence[str]) -> np.ndarray:
    """Reads DatumProto global descriptors (each [D]) into float32 [len(paths), D].

    A file whose size differs from the most common one raises ValueError
    naming it."""
    descriptors = [datum_io.ReadFromFile(path).ravel() for path in paths]
    if not descriptors:
        return np.zeros([0, 0], dtype=np.float32)
    sizes = np.array([d.size for d in descriptors])
    values, counts = np.unique(sizes, return_counts=True)
    common = int(values[np.argmax(counts)])
    for path, size in zip(paths, sizes):
        if size != common or size == 0:
            raise ValueError(
                f"{path}: global descriptor has {size} values, the others {common}")
    return np.stack(descriptors).astype(np.float32)


# Enough bytes for the tags and lengths of a file's first feature up to its values.
_HEAD_BYTES = 256


def _first_feature_layout(path: str) -> tuple[int, int, bool]:
    """(has features, descriptor size, binary) from the head of a local feature
    file; files the head cannot vouch for are parsed in full."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_HEAD_BYTES)
    if size == 0:
        return 0, 0, False
    layout = wire_format.PeekFirstFeature(head, size)
    if layout is None:
        return reranking.check_local_features_file(path)
    return 1, layout[0], layout[1]


def check_local_feature_files(paths: Sequence[str],
                              log: Callable[[str], None] = print) -> None:
    """Checks up front that local feature files start with a valid feature and
    share one descriptor type and size (files with features). Raises
    ValueError naming the file.

    Only the first feature's tags and lengths are read (tens of microseconds a
    file); the rest of a file is decoded, and checked, when re-ranking reads it,
    and a broken one then raises naming it. Most index files are never read.
    """
    reference = None
    for i, path in enumerate(paths):
        num_features, size, binary = _first_feature_layout(path)
        if num_features:
            if reference is None:
                reference = (size, binary, path)
            elif (size, binary) != reference[:2]:
                kind = {True: "bit-packed uint8", False: "float"}
                raise ValueError(
                    f"{path}: {size}-value {kind[bool(binary)]} descriptors, but {reference[2]} "
                    f"has {reference[0]}-value {kind[bool(reference[1])]} descriptors")
        if (i + 1) % 100_000 == 0:
            log(f"Checked {i + 1}/{len(paths)} local feature files")


def save_npy(path: str, array: np.ndarray) -> None:
    """Writes `array` as a .npy file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic.write_bytes_atomic(path, buffer.getvalue())


def format_metrics_table(
    mean_average_precision: dict[str, float],
    mean_precisions: dict[str, np.ndarray],
    pr_ranks: Sequence[int],
) -> str:
    """A readable table of mAP and mP@k (percent) per protocol."""
    header = f"{'protocol':<18}{'mAP':>8}" + "".join(f"{f'mP@{k}':>8}" for k in pr_ranks)
    rows = [header, "-" * len(header)]
    for key in mean_average_precision:
        rows.append(f"{key:<18}{100 * mean_average_precision[key]:>8.2f}" +
                    "".join(f"{100 * p:>8.2f}" for p in mean_precisions[key]))
    return "\n".join(rows)


def _read_checked_inputs(query_features_dir, index_features_dir, query_list, index_list,
                         local_paths, log) -> tuple[np.ndarray, np.ndarray]:
    """Checks every input file before the work starts (the global descriptor files
    and `local_paths`); returns the query and index global descriptors [Q, D], [N, D]."""
    query_global = _paths(query_features_dir, query_list, GLOBAL_EXTENSION)
    index_global = _paths(index_features_dir, index_list, GLOBAL_EXTENSION)
    require_files(query_global + index_global + list(local_paths))
    query_descriptors = read_global_descriptors(query_global)
    index_descriptors = read_global_descriptors(index_global)
    if query_descriptors.shape[1:] != index_descriptors.shape[1:]:
        raise ValueError(
            f"query global descriptors are {query_descriptors.shape[1]}-D "
            f"({query_global[0]}), index ones {index_descriptors.shape[1]}-D "
            f"({index_global[0]})")
    if local_paths:
        check_local_feature_files(local_paths, log)
    return query_descriptors, index_descriptors


def evaluate_revisited(
    dataset_file_path: str,
    query_features_dir: str,
    index_features_dir: str,
    output_dir: str,
    use_geometric_verification: bool = False,
    verification: VerificationParams = DEFAULT_VERIFICATION,
    num_to_rerank: int = reranking.DEFAULT_NUM_TO_RERANK,
    pr_ranks: Sequence[int] = dataset.DEFAULT_PR_RANKS,
    feature_cache_size: int = 512,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Runs retrieval on a Revisited Oxford/Paris dataset and writes the outputs
    described in the module docstring. Returns mAP per protocol key.

    `verification` (matching threshold, RANSAC residual, seed, trials, backend)
    and `num_to_rerank` apply with `use_geometric_verification`."""
    checks.non_negative("num_to_rerank", num_to_rerank)
    checks.non_negative("feature_cache_size", feature_cache_size)
    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    _, medium_gt, hard_gt = dataset.ParseEasyMediumHardGroundTruth(ground_truth)
    protocol_gt = {"medium": medium_gt, "hard": hard_gt}
    log(f"{len(query_list)} queries, {len(index_list)} index images")

    query_local = _paths(query_features_dir, query_list, LOCAL_EXTENSION)
    index_local = _paths(index_features_dir, index_list, LOCAL_EXTENSION)
    query_descriptors, index_descriptors = _read_checked_inputs(
        query_features_dir, index_features_dir, query_list, index_list,
        query_local + index_local if use_geometric_verification else [], log)
    os.makedirs(output_dir, exist_ok=True)

    start = time.perf_counter()
    ranks_before_gv, sorted_scores = search.global_search(query_descriptors, index_descriptors)
    similarities = np.zeros(ranks_before_gv.shape, dtype=np.float64)
    np.put_along_axis(similarities, ranks_before_gv, sorted_scores, axis=1)
    save_npy(os.path.join(output_dir, "ranks_before_gv.npy"), ranks_before_gv.astype(np.int32))
    log(f"Global search: {time.perf_counter() - start:.2f} s")

    rankings = dict.fromkeys(PROTOCOLS, ranks_before_gv)
    if use_geometric_verification:
        after_gv = rerank_all(
            query_local, index_local, ranks_before_gv, similarities, protocol_gt,
            verification, num_to_rerank, feature_cache_size, log)
        for protocol in PROTOCOLS:
            rankings[f"{protocol}_after_gv"] = after_gv[protocol]
            save_npy(os.path.join(output_dir, f"ranks_after_gv_{protocol}.npy"),
                      after_gv[protocol].astype(np.int32))

    mean_ap, mean_precisions, _ = save_metrics(rankings, protocol_gt, pr_ranks, output_dir)
    log(format_metrics_table(mean_ap, mean_precisions, pr_ranks))
    return mean_ap


def save_metrics(
    rankings: dict[str, np.ndarray],
    protocol_gt: dict[str, list[dict]],
    pr_ranks: Sequence[int],
    output_dir: str,
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The one metric step of every Revisited retrieval: mAP, mP@k and mR@k of
    each ranking (int [Q, N]) against its protocol's ground truth (the key up
    to the first '_': 'hard_after_gv' uses 'hard'), written to
    `<output_dir>/metrics.txt`. Returns (mean_ap, mean_precisions, mean_recalls)."""
    mean_ap, mean_precisions, mean_recalls = {}, {}, {}
    for key, ranking in rankings.items():
        metrics = dataset.ComputeMetrics(ranking, protocol_gt[key.split("_")[0]], pr_ranks)
        mean_ap[key], mean_precisions[key], mean_recalls[key] = metrics[:3]
    os.makedirs(output_dir, exist_ok=True)
    dataset.SaveMetricsFile(mean_ap, mean_precisions, mean_recalls, pr_ranks,
                            os.path.join(output_dir, METRICS_FILENAME))
    return mean_ap, mean_precisions, mean_recalls


def rerank_all(
    query_local: Sequence[str],
    index_local: Sequence[str],
    ranks: np.ndarray,
    similarities: np.ndarray,
    protocol_gt: dict[str, list[dict]],
    verification: VerificationParams = DEFAULT_VERIFICATION,
    num_to_rerank: int = reranking.DEFAULT_NUM_TO_RERANK,
    cache_size: int = 512,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """Re-ranks every query (`reranking.rerank_query`) under each protocol's junk.

    ranks: int [Q, N] global rankings; similarities: float [Q, N] per index id;
    query_local / index_local: local feature files per query / index id.
    Returns {protocol: int64 [Q, N]}."""
    junk = [{protocol: set(protocol_gt[protocol][i]["junk"].tolist()) for protocol in PROTOCOLS}
            for i in range(len(query_local))]
    # Every query's candidates are known before the first is verified: the store
    # reads each index file once and drops it after the last query needing it.
    to_verify = [reranking.candidates_per_key(ranks[i], junk[i], num_to_rerank)[1]
                 for i in range(len(query_local))]
    store = reranking.LocalFeatureStore.planned(
        [[index_local[j] for j in ids] for ids in to_verify], cache_size)
    reranked = {protocol: np.zeros_like(ranks) for protocol in PROTOCOLS}
    progress = Progress(len(query_local), "Re-ranked query", log=log)
    for i, query_path in enumerate(query_local):
        after = reranking.rerank_query(
            reranking.read_local_features(query_path), ranks[i], similarities[i], junk[i],
            lambda j: store.get(index_local[j]), verification, num_to_rerank)
        for protocol in PROTOCOLS:
            reranked[protocol][i] = after[protocol]
        progress.step(note=f"{len(to_verify[i])} images verified")
    return reranked
