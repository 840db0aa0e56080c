"""ELFM maths as pure functions: selection, deterministic k-means, binary codes, similarity.

Expressive local feature match (Hu & Bors, ICPR 2022): an image is described by K binary
codes, one per k-means cluster of its N largest-norm local vectors; two images compare by
the mean over query clusters of the best match among the candidate's clusters.

Everything here is NumPy except `cluster_gem`, which calls the GeM of delf_tf.models. The
clustering runs in float64 with NumPy's own (single-threaded) loops, never BLAS, so the same
features give the same clusters and bits whatever the thread count.
"""


import numpy as np

from delf_tf import binary_codes

__all__ = [
    "DEFAULT_NUM_FEATURES", "DEFAULT_NUM_CLUSTERS", "DEFAULT_GEM_POWER",
    "DEFAULT_MAX_ITERATIONS", "WORD_BITS", "select_by_norm", "init_centers", "kmeans",
    "cluster_gem", "l2_normalize", "binarize", "num_words", "pack_codes", "unpack_codes",
    "hamming_matrix", "match_matrix", "cosine_matrix", "aggregate_matches", "elfm_similarity",
    "float_similarity",
]

DEFAULT_NUM_FEATURES = 500
DEFAULT_NUM_CLUSTERS = 10
DEFAULT_GEM_POWER = 3.0
DEFAULT_MAX_ITERATIONS = 100
# Bit codes are padded to whole 64-bit words so searches can popcount uint64 views.
WORD_BITS = 64


def select_by_norm(features: np.ndarray, num_features: int = DEFAULT_NUM_FEATURES) -> np.ndarray:
    """Indices int64 [min(n, num_features)] of the rows of float [n, D] `features` with the
    largest L2 norms, largest first (ties: lower index first)."""
    features = np.asarray(features)
    norms = np.sqrt(np.einsum("nd,nd->n", features.astype(np.float64),
                              features.astype(np.float64)))
    order = np.lexsort((np.arange(len(norms)), -norms))
    return order[:max(0, int(num_features))]


def _squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """float64 [n, k] squared Euclidean distances (einsum without BLAS: thread-independent)."""
    cross = np.einsum("nd,kd->nk", points, centers)
    return np.maximum(np.einsum("nd,nd->n", points, points)[:, None] - 2.0 * cross
                      + np.einsum("kd,kd->k", centers, centers)[None, :], 0.0)


def init_centers(points: np.ndarray, num_clusters: int) -> np.ndarray:
    """Deterministic k-means++ seeding: indices int64 [min(k, n)] into float [n, D] `points`.

    The first centre is the point of largest L2 norm; each next one is the point whose
    distance to its nearest chosen centre is largest. Ties go to the lower index; a point
    already chosen is never chosen again (duplicates of it may be).
    """
    points = np.asarray(points, np.float64)
    count = min(int(num_clusters), len(points))
    if count <= 0:
        return np.zeros([0], np.int64)
    norms = np.einsum("nd,nd->n", points, points)
    chosen = [int(np.argmax(norms))]
    nearest = _squared_distances(points, points[chosen[0]][None])[:, 0]
    available = np.ones(len(points), bool)
    available[chosen[0]] = False
    while len(chosen) < count:
        candidate = int(np.argmax(np.where(available, nearest, -1.0)))
        chosen.append(candidate)
        available[candidate] = False
        nearest = np.minimum(nearest, _squared_distances(points, points[candidate][None])[:, 0])
    return np.asarray(chosen, np.int64)


def kmeans(points: np.ndarray, num_clusters: int = DEFAULT_NUM_CLUSTERS,
           max_iterations: int = DEFAULT_MAX_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from `init_centers`: float [n, D] -> (centres float64 [k, D],
    labels int64 [n]) with k = min(num_clusters, n).

    Cluster c starts at the c-th seed. Each point joins its nearest centre (ties: lower
    cluster index); a cluster left empty keeps its centre. Stops when no label changes.
    """
    points = np.asarray(points, np.float64)
    seeds = init_centers(points, num_clusters)
    centers = points[seeds].copy()
    labels = np.full(len(points), -1, np.int64)
    for _ in range(max(1, int(max_iterations))):
        new_labels = np.argmin(_squared_distances(points, centers), axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for cluster in range(len(centers)):
            members = points[labels == cluster]
            if len(members):
                centers[cluster] = members.mean(axis=0)
    return centers, labels


def cluster_gem(points: np.ndarray, labels: np.ndarray, num_clusters: int,
                power: float = DEFAULT_GEM_POWER) -> np.ndarray:
    """GeM (p = `power`) of each cluster's members: float [n, D], labels int [n] ->
    float32 [num_clusters, D] (a cluster without members gives zeros).

    Uses delf_tf.models.layers.gem (the pooling of the global branch) on the members as a
    [1, m, 1, D] map, in float64.
    """
    import tensorflow as tf

    from delf_tf.models import layers

    points = np.asarray(points, np.float64)
    pooled = np.zeros([num_clusters, points.shape[1]], np.float32)
    for cluster in range(num_clusters):
        members = points[np.asarray(labels) == cluster]
        if len(members):
            members_map = tf.constant(members[None, :, None, :])
            pooled[cluster] = layers.gem(members_map, power=power).numpy()[0]
    return pooled


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of float [k, D] scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norms = np.sqrt(np.einsum("kd,kd->k", x.astype(np.float64), x.astype(np.float64)))
    return (x / np.maximum(norms, eps)[:, None]).astype(np.float32)


def binarize(x: np.ndarray) -> np.ndarray:
    """b(x) = x > 0, elementwise: float [k, D] -> bool [k, D]."""
    return np.asarray(x) > 0


def num_words(dim: int) -> int:
    """64-bit words per packed code of `dim` bits."""
    return -(-int(dim) // WORD_BITS)


def pack_codes(bits: np.ndarray) -> np.ndarray:
    """bool [k, D] -> uint8 [k, 8 * num_words(D)]: bit d of a row is bit d % 8 of byte d // 8
    (little-endian bit order), zero-padded to whole 64-bit words."""
    bits = np.asarray(bits, bool)
    if bits.ndim != 2:
        raise ValueError(f"bits must be [k, D], got shape {bits.shape}")
    padded = np.zeros([bits.shape[0], num_words(bits.shape[1]) * WORD_BITS], bool)
    padded[:, :bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little")


def unpack_codes(packed: np.ndarray, dim: int) -> np.ndarray:
    """Inverse of `pack_codes`: uint8 [k, B] -> bool [k, dim]."""
    packed = np.asarray(packed, np.uint8)
    if packed.ndim != 2 or packed.shape[1] * 8 < dim:
        raise ValueError(f"packed codes {packed.shape} cannot hold {dim} bits per row")
    return np.unpackbits(packed, axis=1, count=int(dim), bitorder="little").astype(bool)


def hamming_matrix(query: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Hamming distances int64 [kq, kc] between packed uint8 codes [kq, B] and [kc, B]."""
    query = np.ascontiguousarray(query, np.uint8)
    candidate = np.ascontiguousarray(candidate, np.uint8)
    if query.shape[1:] != candidate.shape[1:]:
        raise ValueError(f"code widths differ: {query.shape} vs {candidate.shape}")
    return binary_codes.hamming_distance(query[:, None, :], candidate[None, :, :])


def match_matrix(query: np.ndarray, candidate: np.ndarray, dim: int) -> np.ndarray:
    """M[i, j] = 1 - hamming(q_i, c_j) / dim: float64 [kq, kc] for packed codes."""
    return 1.0 - hamming_matrix(query, candidate) / float(dim)


def cosine_matrix(query: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """M[i, j] = cosine(q_i, c_j): float64 [kq, kc] for float [kq, D] and [kc, D] (the float
    ablation of the binary codes)."""
    query = l2_normalize(query).astype(np.float64)
    candidate = l2_normalize(candidate).astype(np.float64)
    return np.einsum("id,jd->ij", query, candidate)


def aggregate_matches(matches: np.ndarray) -> float:
    """S = mean over rows i of max_j M[i, j]; 0 when either image has no clusters."""
    matches = np.asarray(matches)
    if matches.size == 0:
        return 0.0
    return float(matches.max(axis=1).mean())


def elfm_similarity(query: np.ndarray, candidate: np.ndarray, dim: int | None = None) -> float:
    """S(q, c) of two images' packed codes (uint8 [kq, B], [kc, B]); `dim` defaults to 8*B."""
    query = np.asarray(query, np.uint8)
    if dim is None:
        dim = query.shape[1] * 8
    return aggregate_matches(match_matrix(query, candidate, dim))


def float_similarity(query: np.ndarray, candidate: np.ndarray) -> float:
    """S(q, c) with cosine instead of Hamming similarity (float [kq, D], [kc, D])."""
    return aggregate_matches(cosine_matrix(query, candidate))
