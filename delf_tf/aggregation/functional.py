"""Pure array functions behind VLAD, ASMK and ASMK* (Detect-to-Retrieve / HOW).

Everything here is stateless NumPy: visual-word assignment, residual
aggregation, per-word selection and normalisation, sign binarisation, and the
ASMK selectivity kernel. The config-driven classes in `extractor`,
`similarity` and `inverted_file` call these, so each formula lives once.

Shapes: features [N, D] float, codebook [K, D] float, visual words int.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from delf_tf import binary_codes
from delf_tf.binary_codes import hamming_distance  # the one Hamming distance, re-exported
from delf_tf.extraction.postprocess import l2_normalize

__all__ = [
    "WORD_NORM_THRESHOLD", "assign", "residuals", "sum_by_key", "sum_residuals_by_word",
    "vlad_from_word_sums", "select_and_normalize_words", "binarize", "packed_row_size",
    "hamming_similarity", "hamming_to_similarity", "selectivity",
]

# A visual word is kept in ASMK only if its aggregated residual is longer than
# this, so words whose residuals cancel out are not normalised into noise.
WORD_NORM_THRESHOLD = 1e-6
# Up to this many features x words per matrix product, multi-threaded BLAS does
# not pay off: threads spend their time synchronising (on a busy 2-core machine,
# 450 x 128 features against 256 words took 105 ms with 2 OpenBLAS threads and
# 4 ms with 1), so such products run single-threaded. Larger ones use every
# core (1000 features in batches of 100 against 8192 words: 32 ms with 2
# threads, 38 ms with 1).
_SINGLE_THREAD_MAX_PRODUCT = 2**19
# Up to this many words per feature, assignment takes repeated argmax passes.
_MAX_REPEATED_ARGMAX = 8


def assign(
    features: np.ndarray,
    codebook: np.ndarray,
    num_assignments: int = 1,
    batch_size: int = 100,
) -> np.ndarray:
    """Nearest `num_assignments` codewords of each feature by squared L2.

    Args:
      features: float [N, D].
      codebook: float [K, D].
      num_assignments: codewords per feature (1 <= A <= K).
      batch_size: features per distance computation (bounds memory at
        batch_size x K distances); <= 0 computes all N at once.

    Returns:
      int64 [N, A], nearest first (with A = 1, ties go to the lower word id).
    """
    num_words = len(codebook)
    if not 1 <= num_assignments <= num_words:
        raise ValueError(
            f"num_assignments must be in [1, {num_words}] (codebook size), got {num_assignments}")
    num_features = len(features)
    if batch_size <= 0:
        batch_size = max(num_features, 1)
    codebook = np.asarray(codebook)
    # Nearest by squared L2 = largest x.c - |c|^2 / 2 (|x|^2 is the same for
    # every word of a feature); computed in place on the product matrix.
    half_sq_norms = 0.5 * np.einsum("kd,kd->k", codebook, codebook)
    assignments = np.empty([num_features, num_assignments], dtype=np.int64)
    product = min(batch_size, num_features) * num_words
    blas_threads = 1 if product <= _SINGLE_THREAD_MAX_PRODUCT else None
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        for start in range(0, num_features, batch_size):
            batch = np.asarray(features[start:start + batch_size], dtype=codebook.dtype)
            scores = batch @ codebook.T
            scores -= half_sq_norms
            if num_assignments == 1:
                nearest = np.argmax(scores, axis=1)[:, None]
            elif num_assignments <= _MAX_REPEATED_ARGMAX:
                # A few row-wise argmax passes are several times faster than a
                # partial sort of every row (8192 words: 0.03 s vs 0.28 s for
                # 1000 features and 5 words); ties still go to the lower id.
                nearest = np.empty([len(batch), num_assignments], dtype=np.int64)
                rows = np.arange(len(batch))
                for a in range(num_assignments):
                    nearest[:, a] = np.argmax(scores, axis=1)
                    scores[rows, nearest[:, a]] = -np.inf
            else:
                candidates = np.argpartition(scores, -num_assignments, axis=1)
                candidates = np.sort(candidates[:, -num_assignments:], axis=1)
                order = np.argsort(-np.take_along_axis(scores, candidates, axis=1),
                                   axis=1, kind="stable")
                nearest = np.take_along_axis(candidates, order, axis=1)
            assignments[start:start + len(batch)] = nearest
    return assignments


def residuals(
    features: np.ndarray, codebook: np.ndarray, assignments: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (feature - codeword) of every assignment.

    Args:
      features: float [N, D]; codebook: float [K, D]; assignments: int [N, A].

    Returns:
      (words int64 [N*A], residuals float32 [N*A, D]), feature-major.
    """
    assignments = np.asarray(assignments)
    words = assignments.reshape(-1).astype(np.int64)
    repeated = np.asarray(features, dtype=np.float32).repeat(assignments.shape[1], axis=0)
    return words, repeated - codebook[words]


def sum_by_key(keys: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums the rows of float [M, D] sharing a key of int [M].

    Returns:
      (unique keys int64 [U] ascending, sums float32 [U, D]).
    """
    keys = np.asarray(keys, dtype=np.int64)
    if not keys.size:
        return np.zeros([0], dtype=np.int64), np.zeros([0, vectors.shape[1]], dtype=np.float32)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sums = np.add.reduceat(vectors[order], starts, axis=0).astype(np.float32)
    return sorted_keys[starts], sums


def sum_residuals_by_word(
    features: np.ndarray,
    codebook: np.ndarray,
    assignments: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sums the residuals of every assignment per word.

    Returns:
      (words int64 [W] ascending, sums float32 [W, D]) over the W words that
      received at least one feature.
    """
    words, vectors = residuals(features, codebook, assignments)
    return sum_by_key(words, vectors)


def vlad_from_word_sums(
    words: np.ndarray, sums: np.ndarray, num_words: int, use_l2_normalization: bool
) -> np.ndarray:
    """Scatters per-word residual sums into a flat VLAD vector float32 [K*D]."""
    dim = sums.shape[1]
    vlad = np.zeros([num_words, dim], dtype=np.float32)
    vlad[words] = sums
    vlad = vlad.reshape(-1)
    if use_l2_normalization:
        vlad = l2_normalize(vlad)
    return vlad


def select_and_normalize_words(
    words: np.ndarray, sums: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ASMK's per-word step: drops words whose sum has norm <= WORD_NORM_THRESHOLD
    and L2-normalises the rest.

    Args:
      words: int [W] ascending; sums: float [W, D].

    Returns:
      (words int64 [W'], descriptors float32 [W', D]), order kept.
    """
    norms = np.linalg.norm(sums, axis=1)
    keep = norms > WORD_NORM_THRESHOLD
    descriptors = (sums[keep] / norms[keep, None]).astype(np.float32)
    return np.asarray(words, dtype=np.int64)[keep], descriptors


def binarize(descriptors: np.ndarray) -> np.ndarray:
    """ASMK*: sign bits (> 0) of float [W, D] packed big-endian into uint8
    [W, ceil(D/8)], each word's bits padded with zeros to whole bytes (any D)."""
    return binary_codes.binarize(descriptors)


def packed_row_size(dim: int) -> int:
    """Bytes per word of ASMK* data of dimensionality `dim`: ceil(dim / 8)."""
    return (int(dim) + 7) // 8


def hamming_similarity(codes_1: np.ndarray, codes_2: np.ndarray, num_bits: int) -> np.ndarray:
    """ASMK*'s u = 1 - 2 * hamming / num_bits between packed uint8 codes [..., B]."""
    return hamming_to_similarity(hamming_distance(codes_1, codes_2), num_bits)


def hamming_to_similarity(hamming: np.ndarray, num_bits: int) -> np.ndarray:
    """1 - 2 * hamming / num_bits (float64): +1 for equal codes, -1 for opposite."""
    return 1.0 - 2.0 * np.asarray(hamming) / num_bits


def selectivity(similarities: np.ndarray, alpha: float, tau: float) -> np.ndarray:
    """ASMK's sigma(u) = sign(u) * |u|^alpha where u > tau, else 0 (float64)."""
    u = np.asarray(similarities, dtype=np.float64)
    return np.where(u > tau, np.sign(u) * np.abs(u) ** alpha, 0.0)
