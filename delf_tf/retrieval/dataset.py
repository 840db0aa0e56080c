"""Revisited Oxford / Paris ground truth and evaluation (the original's `dataset`).

Ground-truth files are the MATLAB `.mat` files of the Revisited benchmark
(`gnd_roxford5k.mat`, `gnd_rparis6k.mat`): cell arrays `imlist` (index image
names) and `qimlist` (query image names), names without extension, and a struct
array `gnd` with one record per query: `bbx` [x1, y1, x2, y2] (query crop, in
pixels) and 1-based index-image ids in `easy`, `hard` and `junk`.

Ranks everywhere are 0-based positions in a ranked list of index images, and
index ids are 0-based positions in `imlist`.
"""

import re
from collections.abc import Mapping, Sequence

import numpy as np

from delf_tf.io import atomic

# The ground-truth file format lives in delf_tf.io.revisited; its names stay importable here
# (the original's `dataset.ReadDatasetFile`).
from delf_tf.io.revisited import (
    CheckGroundTruth,
    GroundTruth,
    ReadDatasetFile,
    WriteDatasetFile,
)

# The original's names first (the compatibility surface), then this package's additions.
__all__ = [
    "ReadDatasetFile",
    "WriteDatasetFile",
    "CheckGroundTruth",
    "ParseEasyMediumHardGroundTruth",
    "AdjustPositiveRanks",
    "ComputeAveragePrecision",
    "ComputePRAtRanks",
    "ComputeMetrics",
    "SaveMetricsFile",
    "ReadMetricsFile",
    "GroundTruth",
    "DEFAULT_PR_RANKS",
]

DEFAULT_PR_RANKS = (1, 5, 10)


def ParseEasyMediumHardGroundTruth(
    ground_truth: GroundTruth,
) -> tuple[GroundTruth, GroundTruth, GroundTruth]:
    """Splits ground truth into the easy, medium and hard protocols.

    Returns three lists of dicts with 'ok' and 'junk' 0-based index ids:
    easy: ok = easy, junk = junk + hard; medium: ok = easy + hard, junk = junk;
    hard: ok = hard, junk = junk + easy.
    """
    easy_ground_truth, medium_ground_truth, hard_ground_truth = [], [], []
    for query_ground_truth in ground_truth:
        easy = np.asarray(query_ground_truth["easy"], dtype=np.int64)
        hard = np.asarray(query_ground_truth["hard"], dtype=np.int64)
        junk = np.asarray(query_ground_truth["junk"], dtype=np.int64)
        easy_ground_truth.append({"ok": easy, "junk": np.concatenate([junk, hard])})
        medium_ground_truth.append({"ok": np.concatenate([easy, hard]), "junk": junk})
        hard_ground_truth.append({"ok": hard, "junk": np.concatenate([junk, easy])})
    return easy_ground_truth, medium_ground_truth, hard_ground_truth


def AdjustPositiveRanks(positive_ranks: np.ndarray, junk_ranks: np.ndarray) -> np.ndarray:
    """Removes junk images from a ranking: each positive rank is reduced by the
    number of junk ranks before it. Example: [0,2,6,10,20] with junk
    [1,8,9,30] -> [0,1,5,7,17]."""
    positive_ranks = np.asarray(positive_ranks, dtype=np.int64)
    junk_ranks = np.sort(np.asarray(junk_ranks, dtype=np.int64))
    return positive_ranks - np.searchsorted(junk_ranks, positive_ranks, side="left")


def ComputeAveragePrecision(positive_ranks: np.ndarray) -> float:
    """Average precision with trapezoidal interpolation of the PR curve.

    Args:
      positive_ranks: sorted 0-based ranks of the positives (junk removed).

    For the i-th positive (0-based) at rank r: precision before it is
    1 if r == 0 else i / r, after it (i + 1) / (r + 1); AP is the mean of
    their averages. Example: [0, 2, 5] -> 0.677778. No positives -> 0.0.
    """
    positive_ranks = np.asarray(positive_ranks, dtype=np.float64)
    num_positives = len(positive_ranks)
    if not num_positives:
        return 0.0
    i = np.arange(num_positives, dtype=np.float64)
    safe_ranks = np.where(positive_ranks == 0, 1.0, positive_ranks)
    left = np.where(positive_ranks == 0, 1.0, i / safe_ranks)
    right = (i + 1.0) / (positive_ranks + 1.0)
    return float(np.sum((left + right) / 2.0) / num_positives)


def ComputePRAtRanks(
    positive_ranks: np.ndarray, desired_pr_ranks: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at the given 1-based ranks.

    Precision at k is capped at the last positive's rank: with positives at
    0-based ranks [0, 2, 5], ranks (1, 5, 10) give precisions [1, 0.4, 0.5]
    and recalls [1/3, 2/3, 1]. No positives -> zeros for every rank.
    """
    positive_ranks = np.asarray(positive_ranks, dtype=np.int64)
    num_positives = len(positive_ranks)
    if not num_positives:
        return np.zeros([len(desired_pr_ranks)]), np.zeros([len(desired_pr_ranks)])
    one_based = np.sort(positive_ranks) + 1
    ks = np.asarray(desired_pr_ranks, dtype=np.int64)
    recalls = np.searchsorted(one_based, ks, side="right") / num_positives
    precision_ranks = np.minimum(one_based[-1], ks)
    precisions = np.searchsorted(one_based, precision_ranks, side="right") / precision_ranks
    return precisions.astype(np.float64), recalls.astype(np.float64)


def ComputeMetrics(
    sorted_index_ids: np.ndarray,
    ground_truth: GroundTruth,
    desired_pr_ranks: Sequence[int] = DEFAULT_PR_RANKS,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Retrieval metrics of a ranking for one protocol.

    Args:
      sorted_index_ids: int [Q, N], per query the index ids best first.
      ground_truth: Q dicts with 'ok' and 'junk' 0-based index ids (one protocol
        of ParseEasyMediumHardGroundTruth).
      desired_pr_ranks: 1-based ranks k for P@k / R@k.

    Returns:
      (mean_average_precision, mean_precisions [K], mean_recalls [K],
      average_precisions [Q], precisions [Q, K], recalls [Q, K]). Queries
      without positives get NaN per-query values and are left out of the means
      (the means are NaN if no query has positives). A ranking may leave out
      index images (a top-k ranking): AP and P/R are computed over the positives
      it contains, and a query none of whose positives it contains gets 0.
    """
    sorted_index_ids = np.asarray(sorted_index_ids)
    if sorted_index_ids.ndim != 2:
        raise ValueError(f"sorted_index_ids must be [Q, N], got shape {sorted_index_ids.shape}")
    num_queries, num_index_images = sorted_index_ids.shape
    if len(ground_truth) != num_queries:
        raise ValueError(
            f"ground truth has {len(ground_truth)} queries but the ranking has {num_queries}")
    num_ranks = len(desired_pr_ranks)
    average_precisions = np.full([num_queries], np.nan)
    precisions = np.full([num_queries, num_ranks], np.nan)
    recalls = np.full([num_queries, num_ranks], np.nan)
    all_ranks = np.arange(num_index_images)
    for i in range(num_queries):
        ok_ids = np.asarray(ground_truth[i]["ok"])
        if not ok_ids.size:
            continue
        both = np.intersect1d(ok_ids, np.asarray(ground_truth[i]["junk"]))
        if both.size:
            raise ValueError(f"ground truth of query {i + 1}: index ids {both.tolist()} are "
                             "both positive and junk")
        if len(np.unique(sorted_index_ids[i])) != num_index_images:
            raise ValueError(f"the ranking of query {i + 1} lists an index image twice")
        positive_ranks = all_ranks[np.isin(sorted_index_ids[i], ok_ids)]
        junk_ranks = all_ranks[np.isin(sorted_index_ids[i], np.asarray(ground_truth[i]["junk"]))]
        adjusted_ranks = AdjustPositiveRanks(positive_ranks, junk_ranks)
        average_precisions[i] = ComputeAveragePrecision(adjusted_ranks)
        precisions[i], recalls[i] = ComputePRAtRanks(adjusted_ranks, desired_pr_ranks)

    valid = ~np.isnan(average_precisions)
    if valid.any():
        mean_average_precision = float(np.mean(average_precisions[valid]))
        mean_precisions = np.mean(precisions[valid], axis=0)
        mean_recalls = np.mean(recalls[valid], axis=0)
    else:
        mean_average_precision = float("nan")
        mean_precisions = np.full([num_ranks], np.nan)
        mean_recalls = np.full([num_ranks], np.nan)
    return (mean_average_precision, mean_precisions, mean_recalls,
            average_precisions, precisions, recalls)


def _format_array(values: np.ndarray) -> str:
    # NumPy's own formatting (as the original wrote it), never wrapped.
    return np.array2string(np.asarray(values), max_line_width=1 << 30)


def SaveMetricsFile(
    mean_average_precision: Mapping[str, float],
    mean_precisions: Mapping[str, np.ndarray],
    mean_recalls: Mapping[str, np.ndarray],
    pr_ranks: Sequence[int],
    output_path: str,
) -> None:
    """Writes metrics per protocol (sorted keys), values in percent, 2 decimals:

        medium
          mAP=69.71
          mP@k[ 1  5 10] [85.71 79.43 75.14]
          mR@k[ 1  5 10] [ 3.54 11.27 18.16]
    """
    ranks = _format_array(np.asarray(pr_ranks))
    lines = []
    for key in sorted(mean_average_precision):
        lines.append(key)
        lines.append(f"  mAP={np.around(mean_average_precision[key] * 100, decimals=2)}")
        lines.append(
            f"  mP@k{ranks} {_format_array(np.around(np.asarray(mean_precisions[key]) * 100, 2))}")
        lines.append(
            f"  mR@k{ranks} {_format_array(np.around(np.asarray(mean_recalls[key]) * 100, 2))}")
    atomic.write_bytes_atomic(output_path, ("\n".join(lines) + "\n").encode())


_BRACKETS = re.compile(r"\[([^\]]*)\]")


def _parse_bracketed(line: str, prefix: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    groups = _BRACKETS.findall(line)
    if not line.strip().startswith(prefix) or len(groups) != 2:
        raise ValueError(f"{path}: expected '{prefix}[ranks] [values]', got {line!r}")
    try:
        ranks = np.array([int(v) for v in groups[0].split()], dtype=np.int64)
        values = np.array([float(v) for v in groups[1].split()], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: bad numbers in {line!r}") from e
    return ranks, values


def ReadMetricsFile(
    metrics_path: str,
) -> tuple[dict[str, float], list[int], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Reads a file written by SaveMetricsFile.

    Returns:
      (mean_average_precision, pr_ranks, mean_precisions, mean_recalls): dicts
      keyed by protocol, values as fractions (the file holds percentages).
    """
    text = atomic.read_bytes(metrics_path).decode()
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if len(lines) % 4:
        raise ValueError(
            f"{metrics_path}: {len(lines)} lines, expected 4 per protocol")
    mean_average_precision, mean_precisions, mean_recalls = {}, {}, {}
    pr_ranks = None
    for start in range(0, len(lines), 4):
        name, map_line, precision_line, recall_line = lines[start:start + 4]
        name = name.strip()
        if name in mean_average_precision:
            raise ValueError(f"{metrics_path}: protocol {name} is found a second time")
        if not map_line.strip().startswith("mAP="):
            raise ValueError(f"{metrics_path}: expected 'mAP=<value>', got {map_line!r}")
        try:
            mean_average_precision[name] = float(map_line.split("=", 1)[1]) / 100.0
        except ValueError as e:
            raise ValueError(f"{metrics_path}: bad mAP in {map_line!r}") from e
        ranks, precisions = _parse_bracketed(precision_line, "mP@k", metrics_path)
        recall_ranks, recalls = _parse_bracketed(recall_line, "mR@k", metrics_path)
        if not np.array_equal(ranks, recall_ranks) or len(ranks) != len(precisions) \
                or len(ranks) != len(recalls):
            raise ValueError(f"{metrics_path}: inconsistent ranks for protocol {name}")
        if pr_ranks is not None and ranks.tolist() != pr_ranks:
            raise ValueError(f"{metrics_path}: protocols use different ranks")
        pr_ranks = ranks.tolist()
        mean_precisions[name] = precisions / 100.0
        mean_recalls[name] = recalls / 100.0
    return mean_average_precision, pr_ranks or [], mean_precisions, mean_recalls
