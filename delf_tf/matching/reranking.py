"""Geometric verification of local-feature matches and re-ranking by inliers
(the original's `MatchFeatures` and `RerankByGeometricVerification`).

A query is verified against an index image by matching every query descriptor
to its nearest index descriptor (distance threshold or ratio test, see
`descriptor_matching`), then fitting an affine transform from index locations
to query locations with seeded RANSAC; the score is the inlier count. Fewer
than 4 putative matches score 0 inliers, as in the original.

Re-ranking verifies the top `num_to_rerank` (100) non-junk images of a global
ranking and orders all images by (inliers, global score), descending; images
that were not verified count 0 inliers, and ties keep their order in the input
ranking.
"""

import collections
import concurrent.futures
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from google.protobuf import message

from delf_tf import blas
from delf_tf.io import atomic, feature_io
from delf_tf.local_features import LocalFeatures
from delf_tf.matching import descriptor_matching, ransac, visualization
from delf_tf.matching.params import VerificationParams
from delf_tf.protos import feature_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "MatchFeatures",
    "RerankByGeometricVerification",
    # This package's.
    "rerank_query",
    "verify",
    "verify_all",
    "VerificationResult",
    "LocalFeatures",
    "LocalFeatureStore",
    "read_local_features",
    "check_local_features_file",
    "select_candidates",
    "candidates_per_key",
    "rerank_by_inliers",
    "verify_pair",
    "verify_candidates",
    "DEFAULT_NUM_TO_RERANK",
    "DEFAULT_VERIFICATION",
    "DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD",
    "DEFAULT_RANSAC_RESIDUAL_THRESHOLD",
    "MIN_PUTATIVE_MATCHES",
    "DELG_LOCAL_EXTENSION",
]

DEFAULT_NUM_TO_RERANK = 100
DEFAULT_VERIFICATION = VerificationParams()
DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD = DEFAULT_VERIFICATION.descriptor_matching_threshold
DEFAULT_RANSAC_RESIDUAL_THRESHOLD = DEFAULT_VERIFICATION.ransac_residual_threshold
# Fewer putative matches than this never count as a verified match.
MIN_PUTATIVE_MATCHES = ransac.MIN_SAMPLES + 1
DELG_LOCAL_EXTENSION = ".delg_local"


def read_local_features(path: str) -> LocalFeatures:
    """Reads a DelfFeatures file (.delf / .delg_local) and prepares it for
    matching (descriptors converted once, locations as float64)."""
    return feature_io.read_features(path).prepared()


def check_local_features_file(path: str) -> tuple[int, int, bool]:
    """Cheaply validates a DelfFeatures file without converting it to arrays.

    Returns (num_features, descriptor_size, binary) where descriptor_size is the
    number of stored values (bytes for bit-packed descriptors).

    Raises:
      FileNotFoundError / ValueError naming the file.
    """
    features = feature_pb2.DelfFeatures()
    data = atomic.read_bytes(path)
    try:
        features.ParseFromString(data)
    except message.DecodeError as e:
        raise ValueError(f"{path} is not a valid DelfFeatures file: {e}") from e
    if not features.feature:
        return 0, 0, False
    first = features.feature[0].descriptor
    kind = first.WhichOneof("kind_oneof")
    if kind is None:
        raise ValueError(f"{path}: feature 0 has no descriptor values")
    size = len(getattr(first, kind).value)
    for i, feature in enumerate(features.feature):
        if feature.descriptor.WhichOneof("kind_oneof") != kind or \
                len(getattr(feature.descriptor, kind).value) != size:
            raise ValueError(f"{path}: feature {i} has a different descriptor type or size")
    return len(features.feature), size, kind == "uint32_list"


class LocalFeatureStore:
    """Reads local feature files on demand (prepared for matching) and keeps
    up to `capacity` images in memory, so an image verified for many queries
    is read once.

    Without a plan the least recently used image goes first. With
    `planned(uses, capacity)`, the run's reads are known in advance (uses[i]:
    the paths query i will ask for, in query order): an image is dropped after
    its last use, and when more than `capacity` are still needed later, the one
    needed furthest ahead goes first (the fewest re-reads possible), so each
    file is read once per run whenever at most `capacity` images are needed
    across one query boundary.
    """

    def __init__(self, capacity: int = 256):
        self._capacity = max(0, int(capacity))
        self._cache: collections.OrderedDict[str, LocalFeatures] = collections.OrderedDict()
        # path -> the queries that will still ask for it, ascending (planned stores only).
        self._next_uses: dict[str, collections.deque[int]] | None = None

    @classmethod
    def planned(cls, uses: Sequence[Iterable[str]], capacity: int) -> "LocalFeatureStore":
        store = cls(capacity)
        store._next_uses = collections.defaultdict(collections.deque)
        for i, paths in enumerate(uses):
            for path in dict.fromkeys(os.fspath(p) for p in paths):
                store._next_uses[path].append(i)
        return store

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, path: str) -> LocalFeatures:
        path = os.fspath(path)
        if self._next_uses is not None:
            return self._get_planned(path)
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        features = read_local_features(path)
        if self._capacity:
            self._cache[path] = features
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return features

    def _get_planned(self, path: str) -> LocalFeatures:
        uses = self._next_uses.get(path)
        if uses:
            uses.popleft()
        features = self._cache.pop(path, None)
        if features is None:
            features = read_local_features(path)
        if uses and self._capacity:
            self._cache[path] = features
            if len(self._cache) > self._capacity:
                furthest = max(self._cache, key=lambda p: self._next_uses[p][0])
                del self._cache[furthest]
        return features


class VerificationResult(NamedTuple):
    """Putative matches (query_ids, index_ids: int64 [M]), RANSAC inliers
    (bool [M]) and the affine model (float64 [2, 3], index (y, x) -> query
    (y, x), or None)."""
    query_ids: np.ndarray
    index_ids: np.ndarray
    inliers: np.ndarray
    model: np.ndarray | None

    @property
    def num_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))


def verify(
    query: LocalFeatures, index: LocalFeatures, params: VerificationParams = DEFAULT_VERIFICATION,
) -> VerificationResult:
    """Matches query descriptors into the index image and verifies with RANSAC.

    Empty features on either side or fewer than 4 putative matches give 0
    inliers; descriptors of different dimensions raise ValueError.
    """
    empty = np.zeros([0], dtype=np.int64)
    if not len(query) or not len(index):
        return VerificationResult(empty, empty, np.zeros([0], bool), None)
    query_ids, index_ids = descriptor_matching.putative_matches(
        query.matching_descriptors, index.matching_descriptors,
        params.descriptor_matching_threshold, params.use_ratio_test)
    if len(query_ids) < MIN_PUTATIVE_MATCHES:
        return VerificationResult(query_ids, index_ids, np.zeros(len(query_ids), bool), None)
    result = ransac.estimate_affine(
        index.matching_locations[index_ids], query.matching_locations[query_ids],
        residual_threshold=params.ransac_residual_threshold, max_trials=params.max_trials,
        seed=params.ransac_seed, backend=params.ransac_backend)
    return VerificationResult(query_ids, index_ids, result.inliers, result.model)


def _loose_params(descriptor_matching_threshold: float = DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD,
                  ransac_residual_threshold: float = DEFAULT_RANSAC_RESIDUAL_THRESHOLD,
                  use_ratio_test: bool = False, ransac_seed: int | None = None,
                  max_trials: int = ransac.DEFAULT_MAX_TRIALS,
                  backend: str = ransac.DEFAULT_BACKEND) -> VerificationParams:
    """The VerificationParams of the loose-argument wrappers (the original's signatures)."""
    return VerificationParams(
        descriptor_matching_threshold=descriptor_matching_threshold,
        ransac_residual_threshold=ransac_residual_threshold, use_ratio_test=use_ratio_test,
        ransac_seed=ransac_seed, max_trials=max_trials, ransac_backend=backend)


def verify_pair(query: LocalFeatures, index: LocalFeatures, *args, **kwargs
                ) -> VerificationResult:
    """`verify` with the parameters as loose arguments: those of `_loose_params`
    (descriptor_matching_threshold, ransac_residual_threshold, use_ratio_test,
    ransac_seed, max_trials, backend)."""
    return verify(query, index, _loose_params(*args, **kwargs))


def MatchFeatures(
    query_locations: np.ndarray,
    query_descriptors: np.ndarray,
    index_image_locations: np.ndarray,
    index_image_descriptors: np.ndarray,
    ransac_seed: int | None = None,
    descriptor_matching_threshold: float = DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD,
    ransac_residual_threshold: float = DEFAULT_RANSAC_RESIDUAL_THRESHOLD,
    query_im_array: np.ndarray | None = None,
    index_im_array: np.ndarray | None = None,
    query_im_scale_factors: Sequence[float] | None = None,
    index_im_scale_factors: Sequence[float] | None = None,
    use_ratio_test: bool = False,
    backend: str = ransac.DEFAULT_BACKEND,
) -> tuple[int, bytes]:
    """Number of RANSAC inliers between a query and an index image.

    Args:
      query_locations, index_image_locations: [N, 2] (y, x).
      query_descriptors, index_image_descriptors: float [N, D] or bit-packed
        uint8 [N, D/8] (Hamming, see descriptor_matching).
      query_im_array, index_im_array: optional uint8 [H, W, 3] images; when both
        are given, a side-by-side picture of the inlier matches is returned.
      query_im_scale_factors, index_im_scale_factors: [2] (y, x) factors mapping
        feature locations onto those image arrays (default 1).
      backend: 'numpy' (default), 'opencv' or 'skimage'.

    Returns:
      (num_inliers, match_viz_bytes): PNG bytes of the picture, or b''.
    """
    query = LocalFeatures.from_arrays(query_locations, query_descriptors)
    index = LocalFeatures.from_arrays(index_image_locations, index_image_descriptors)
    result = verify(query, index, _loose_params(
        descriptor_matching_threshold, ransac_residual_threshold, use_ratio_test, ransac_seed,
        backend=backend))
    viz_bytes = b""
    if query_im_array is not None and index_im_array is not None:
        inlier_query = query.matching_locations[result.query_ids[result.inliers]]
        inlier_index = index.matching_locations[result.index_ids[result.inliers]]
        picture = visualization.draw_matches(
            query_im_array, index_im_array,
            inlier_query * _scale(query_im_scale_factors),
            inlier_index * _scale(index_im_scale_factors))
        viz_bytes = visualization.encode_image(picture, "PNG")
    return result.num_inliers, viz_bytes


def _scale(scale_factors: Sequence[float] | None) -> np.ndarray:
    if scale_factors is None:
        return np.ones([2])
    return np.asarray(scale_factors, dtype=np.float64).reshape(2)


def select_candidates(
    input_ranks: Sequence[int], junk_ids: Collection[int], num_to_rerank: int,
) -> np.ndarray:
    """The first `num_to_rerank` index ids of `input_ranks` that are not junk."""
    input_ranks = np.asarray(input_ranks, dtype=np.int64)
    junk = np.asarray(sorted(junk_ids), dtype=np.int64)
    candidates = input_ranks[~np.isin(input_ranks, junk)]
    return candidates[:max(0, num_to_rerank)]


def rerank_by_inliers(
    input_ranks: Sequence[int], initial_scores: np.ndarray, inliers: np.ndarray,
) -> np.ndarray:
    """Orders the ids of `input_ranks` by (inliers, initial score) descending.

    Args:
      input_ranks: int [N] index ids, best first.
      initial_scores: float [num_index] global similarity per index id.
      inliers: int [num_index] inlier count per index id (0 if not verified).

    Returns int64 [N]; ties keep their input order (stable).
    """
    input_ranks = np.asarray(input_ranks, dtype=np.int64)
    scores = np.asarray(initial_scores, dtype=np.float64)[input_ranks]
    counts = np.asarray(inliers, dtype=np.float64)[input_ranks]
    # lexsort is stable and sorts by the last key first.
    order = np.lexsort((np.arange(len(input_ranks)), -scores, -counts))
    return input_ranks[order]


def verify_candidates(query: LocalFeatures, candidates: Iterable[LocalFeatures], *args,
                      num_workers: int | None = None, **kwargs) -> np.ndarray:
    """`verify_all` with the parameters as loose arguments: those of `_loose_params`
    (descriptor_matching_threshold, ransac_residual_threshold, use_ratio_test,
    ransac_seed, max_trials, backend)."""
    return verify_all(query, candidates, _loose_params(*args, **kwargs), num_workers)


def verify_all(
    query: LocalFeatures,
    candidates: Iterable[LocalFeatures],
    params: VerificationParams = DEFAULT_VERIFICATION,
    num_workers: int | None = None,
) -> np.ndarray:
    """Inlier counts (int64 [C]) of a query against each candidate image.

    Pairs are verified by `num_workers` threads (default: one per CPU), each
    with a single-threaded BLAS: a 1000 x 1000 product is too small for BLAS
    threads to pay off, and on a shared machine their spinning makes it several
    times slower. Every pair has its own seeded RANSAC, so the counts do
    not depend on the number of workers.
    """
    def count(candidate: LocalFeatures) -> int:
        return verify(query, candidate, params).num_inliers

    candidates = list(candidates)
    query.prepared()  # once, before the threads share it
    workers = min(num_workers or os.cpu_count() or 1, len(candidates))
    if params.ransac_backend == "skimage":
        # Pure-Python RANSAC gains nothing from threads, and its warning
        # filters (warnings.catch_warnings) are not thread-safe.
        workers = 1
    if workers <= 1:
        with blas.single_threaded():
            return np.array([count(c) for c in candidates], dtype=np.int64)
    with blas.single_threaded(), concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return np.array(list(pool.map(count, candidates)), dtype=np.int64)


def candidates_per_key(
    input_ranks: Sequence[int], junk_ids: Mapping[str, Collection[int]], num_to_rerank: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({key: the ids `select_candidates` verifies under that key's junk},
    int64 [C] every id verified under some key, ascending)."""
    candidates = {key: select_candidates(input_ranks, junk, num_to_rerank)
                  for key, junk in junk_ids.items()}
    return candidates, np.unique(np.concatenate([np.zeros([0], np.int64), *candidates.values()]))


def rerank_query(
    query: LocalFeatures,
    input_ranks: Sequence[int],
    initial_scores: np.ndarray,
    junk_ids: Mapping[str, Collection[int]],
    index_features: Callable[[int], LocalFeatures],
    params: VerificationParams = DEFAULT_VERIFICATION,
    num_to_rerank: int = DEFAULT_NUM_TO_RERANK,
) -> dict[str, np.ndarray]:
    """The re-ranking engine: one query's global ranking re-ranked by inliers,
    once per junk set (e.g. per Revisited protocol).

    Args:
      query: the query's local features.
      input_ranks: int [N] index ids sorted by global similarity, best first.
      initial_scores: float [num_index] global similarity per index id.
      junk_ids: {key: index ids never verified (they keep 0 inliers)}.
      index_features: index id -> its local features.

    Returns:
      {key: int64 [N] ids ordered by (inliers, initial score), descending}. An
      image that is a candidate under several keys is verified once (same pair,
      same seed, same result). All candidate features are read before any
      verification, so a missing or broken file raises before work is spent.
    """
    candidates, to_verify = candidates_per_key(input_ranks, junk_ids, num_to_rerank)
    features = [index_features(int(j)) for j in to_verify]
    counts = verify_all(query, features, params)
    inliers_by_id = dict(zip(to_verify.tolist(), counts.tolist()))
    num_index = len(initial_scores)
    reranked = {}
    for key, ids in candidates.items():
        inliers = np.zeros([num_index], dtype=np.int64)
        inliers[ids] = [inliers_by_id[j] for j in ids.tolist()]
        reranked[key] = rerank_by_inliers(input_ranks, initial_scores, inliers)
    return reranked


def RerankByGeometricVerification(
    input_ranks: Sequence[int],
    initial_scores: np.ndarray,
    query_name: str,
    index_names: Sequence[str],
    query_features_dir: str,
    index_features_dir: str,
    junk_ids: Collection[int],
    local_feature_extension: str = DELG_LOCAL_EXTENSION,
    ransac_seed: int | None = None,
    descriptor_matching_threshold: float = DEFAULT_DESCRIPTOR_MATCHING_THRESHOLD,
    ransac_residual_threshold: float = DEFAULT_RANSAC_RESIDUAL_THRESHOLD,
    use_ratio_test: bool = False,
    num_to_rerank: int = DEFAULT_NUM_TO_RERANK,
    backend: str = ransac.DEFAULT_BACKEND,
    feature_store: LocalFeatureStore | None = None,
) -> np.ndarray:
    """Re-ranks a global ranking of one query by geometric verification.

    Args:
      input_ranks: int [N] index ids sorted by global similarity, best first.
      initial_scores: float [N] global similarity per index id.
      query_name, index_names: image names; features are read from
        `<dir>/<name><local_feature_extension>`.
      junk_ids: index ids that are never verified (they keep 0 inliers).
      ransac_seed: seed of every pair's RANSAC (None: unseeded).
      num_to_rerank: how many non-junk images to verify (100).
      backend: RANSAC backend, 'numpy' (default), 'opencv' or 'skimage'.
      feature_store: optional cache of index features shared across queries.

    Returns:
      int64 [N] index ids ordered by (inliers, initial score), descending.

    All feature files are read before any verification, so a missing or broken
    file raises (naming it) before work is spent on the query.
    """
    params = _loose_params(descriptor_matching_threshold, ransac_residual_threshold,
                           use_ratio_test, ransac_seed, backend=backend)
    query = read_local_features(
        os.path.join(query_features_dir, query_name + local_feature_extension))
    store = feature_store if feature_store is not None else LocalFeatureStore(0)

    def index_features(i: int) -> LocalFeatures:
        return store.get(os.path.join(index_features_dir, index_names[i] + local_feature_extension))

    return rerank_query(query, input_ranks, initial_scores, {"": junk_ids}, index_features,
                        params, num_to_rerank)[""]
