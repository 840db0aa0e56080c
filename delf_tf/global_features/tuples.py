"""Training tuples (query, positive, neg_num hard negatives) with negatives mined every epoch.

Before each epoch (`TuplesDataset.create_epoch_tuples`): `query_size` query/positive pairs are
drawn from the split; a random pool of `pool_size` images is described by the current network
together with the queries; for each query the pool is walked from the nearest image on and an
image becomes a negative if its cluster differs from the query's and no earlier negative of
the query came from that cluster, until `neg_num` negatives are found. The epoch's tuples are
then a tf.data pipeline decoding images in parallel.
"""

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from delf_tf.global_features import images as image_lib
from delf_tf.global_features import sfm

__all__ = ["mine_hard_negatives", "TuplesConfig", "TuplesDataset"]

logger = logging.getLogger(__name__)


def mine_hard_negatives(query_vectors: np.ndarray, pool_vectors: np.ndarray,
                        query_clusters: np.ndarray, pool_clusters: np.ndarray,
                        neg_num: int) -> np.ndarray:
    """Nearest pool images from other clusters, at most one per cluster.

    query_vectors float [Q, D] and pool_vectors float [P, D] (L2-normalised: similarity is the
    dot product); clusters int [Q] / [P]. Returns int64 [Q, neg_num] positions in the pool,
    nearest first. Raises ValueError if some query cannot get neg_num negatives.
    """
    scores = np.asarray(query_vectors, np.float32) @ np.asarray(pool_vectors, np.float32).T
    # Only the nearest few images are walked: sorting a shortlist (falling back to the whole
    # pool for a query whose shortlist lacks neg_num other clusters) instead of every row.
    shortlist = min(scores.shape[1], max(64, 20 * neg_num))
    if shortlist < scores.shape[1]:
        nearest = np.argpartition(-scores, shortlist - 1, axis=1)[:, :shortlist]
    else:
        nearest = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    negatives = np.zeros([len(query_vectors), neg_num], np.int64)
    for q in range(len(query_vectors)):
        # Ties are broken by pool position, so mining is deterministic.
        candidates = nearest[q][np.lexsort((nearest[q], -scores[q, nearest[q]]))]
        found = _walk(candidates, int(query_clusters[q]), pool_clusters, negatives[q])
        if found < neg_num and len(candidates) < scores.shape[1]:
            candidates = np.argsort(-scores[q], kind="stable")
            found = _walk(candidates, int(query_clusters[q]), pool_clusters, negatives[q])
        if found < neg_num:
            raise ValueError(f"the negative pool offers only {found} clusters other than query "
                             f"{q}'s; need neg_num={neg_num} (raise pool_size or lower neg_num)")
    return negatives


def _walk(candidates: np.ndarray, query_cluster: int, pool_clusters: np.ndarray,
          out: np.ndarray) -> int:
    """Fills `out` with candidates (nearest first) of new clusters other than the query's;
    returns how many were found."""
    used = {query_cluster}
    found = 0
    for position in candidates:
        cluster = int(pool_clusters[position])
        if cluster in used:
            continue
        out[found] = position
        used.add(cluster)
        found += 1
        if found == len(out):
            break
    return found


@dataclasses.dataclass
class TuplesConfig:
    """The original's tuple-sampling settings (names as its flags)."""

    neg_num: int = 5
    query_size: int = 2000
    pool_size: int = 20000
    image_size: int = 1024


class TuplesDataset:
    """Tuples of one SfM split; `create_epoch_tuples(describe)` mines, `dataset()` streams.

    ims_root: directory holding the split's images (cid2filename layout).
    describe: callable(paths, bbxs) -> float32 [N, D] L2-normalised descriptors from the
      current network (e.g. a partial of extraction.extract_vectors).
    """

    def __init__(self, split: sfm.SfmSplit, ims_root: str, config: TuplesConfig,
                 seed: int = 0):
        if config.neg_num < 1:
            raise ValueError(f"neg_num must be >= 1, got {config.neg_num}")
        if len(split.qidxs) == 0:
            raise ValueError("the split has no query/positive pairs")
        self.split = split
        self.config = config
        self.paths = split.image_paths(ims_root)
        self._rng = np.random.default_rng(seed)
        self.tuples: np.ndarray | None = None  # int64 [T, 2 + neg_num] image indices
        self.last_mining_seconds = 0.0

    def reseed(self, seed) -> None:
        """Restarts the pair/pool/shuffle draws from `seed` (int or sequence, e.g. [seed, epoch])
        so each epoch's tuples depend on its number only (a resumed run mines the same)."""
        self._rng = np.random.default_rng(seed)

    @property
    def tuple_size(self) -> int:
        return 2 + self.config.neg_num

    def _bbxs(self, indices: np.ndarray) -> list | None:
        if self.split.bbxs is None:
            return None
        return [self.split.bbxs[i] for i in indices]

    def create_epoch_tuples(self, describe: Callable[[Sequence[str], list | None], np.ndarray]
                            ) -> float:
        """Draws query/positive pairs and a pool, mines negatives; returns the mean
        query-to-negative distance of the mined tuples (the original's avg_ndist)."""
        start = time.perf_counter()
        split, config = self.split, self.config
        chosen = self._rng.permutation(len(split.qidxs))[:config.query_size]
        qidxs, pidxs = split.qidxs[chosen], split.pidxs[chosen]
        pool = self._rng.permutation(len(split.cids))[:config.pool_size]
        query_vectors = describe([self.paths[i] for i in qidxs], self._bbxs(qidxs))
        pool_vectors = describe([self.paths[i] for i in pool], self._bbxs(pool))
        positions = mine_hard_negatives(query_vectors, pool_vectors, split.cluster[qidxs],
                                        split.cluster[pool], config.neg_num)
        self.tuples = np.concatenate([qidxs[:, None], pidxs[:, None], pool[positions]], axis=1)
        distances = np.linalg.norm(query_vectors[:, None, :] - pool_vectors[positions], axis=-1)
        self.last_mining_seconds = time.perf_counter() - start
        logger.info("mined %d tuples from a pool of %d in %.1f s (mean negative distance %.3f)",
                    len(self.tuples), len(pool), self.last_mining_seconds, distances.mean())
        return float(distances.mean())

    def dataset(self, shuffle: bool = True,
                num_parallel_calls: int = tf.data.AUTOTUNE) -> tf.data.Dataset:
        """The epoch's tuples: each element is a tuple of 2 + neg_num uint8 [H, W, 3] images
        (query, positive, negatives nearest first), decoded in parallel."""
        if self.tuples is None:
            raise RuntimeError("create_epoch_tuples must run before dataset()")
        tuples = self.tuples[self._rng.permutation(len(self.tuples))] if shuffle \
            else self.tuples
        paths = np.asarray(self.paths, dtype=object)[tuples].astype(str)
        boxes = image_lib.boxes_array(
                None if self.split.bbxs is None else
                [self.split.bbxs[i] for i in tuples.ravel()], tuples.size
        ).reshape(len(tuples), self.tuple_size, 4)
        size = self.config.image_size
        count = self.tuple_size

        def load(tuple_paths, tuple_boxes):
            return tuple(image_lib.load_image(tuple_paths[k], tuple_boxes[k], size)
                         for k in range(count))

        return (tf.data.Dataset.from_tensor_slices((paths, boxes))
                .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
                .prefetch(tf.data.AUTOTUNE))
