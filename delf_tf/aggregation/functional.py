"""Pure array functions behind VLAD, ASMK and ASMK* (Detect-to-Retrieve / HOW).

Everything here is stateless array code (NumPy; the nearest-word search runs its
matrix product in TensorFlow): visual-word assignment, residual
aggregation, per-word selection and normalisation, sign binarisation, and the
ASMK selectivity kernel. The config-driven classes in `extractor`,
`similarity` and `inverted_file` call these, so each formula lives once.

Shapes: features [N, D] float, codebook [K, D] float, visual words int.
"""

import functools

import numpy as np

from delf_tf import binary_codes
from delf_tf.binary_codes import hamming_distance  # the one Hamming distance, re-exported
from delf_tf.extraction.postprocess import l2_normalize

__all__ = [
    "WORD_NORM_THRESHOLD", "WordSearch", "assign", "nearest_words", "residuals", "sum_by_key",
    "sum_residuals_by_word",
    "vlad_from_word_sums", "select_and_normalize_words", "binarize", "packed_row_size",
    "hamming_similarity", "hamming_to_similarity", "selectivity",
]

# A visual word is kept in ASMK only if its aggregated residual is longer than
# this, so words whose residuals cancel out are not normalised into noise.
WORD_NORM_THRESHOLD = 1e-6
# Up to this many words per feature, the NumPy search takes repeated argmax passes.
_MAX_REPEATED_ARGMAX = 8
# Scores one nearest-word product may hold by default (256 MiB in float32).
_MAX_SCORES = 2**26
# A search of at least this many scores (features x words) runs its products in
# TensorFlow, whose speed there repays importing it (about 3 s, once per process);
# smaller ones run in NumPy, so small jobs (one query, a 1024-word codebook) do not
# load TensorFlow at all.
_TENSORFLOW_MIN_SCORES = 2**26
# Such a search for one word per feature goes through `word_screen` (where enabled)
# when the codebook has at least this many words.
_SCREEN_MIN_WORDS = 2048


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
      int64 [N, A], nearest first (ties go to the lower word id).
    """
    return WordSearch(codebook).words(features, num_assignments, batch_size)


def nearest_words(
    features: np.ndarray,
    codebook: np.ndarray,
    num_assignments: int = 1,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest `num_assignments` codewords of each feature, and their squared L2
    distances: `WordSearch(codebook)(features, num_assignments, batch_size)`."""
    return WordSearch(codebook)(features, num_assignments, batch_size)


class WordSearch:
    """Exact nearest-codeword search over one codebook, prepared once for many calls.

    Nearest by squared L2 = largest x.c - |c|^2 / 2 (|x|^2 is the same for every
    word of a feature): one product per batch of features with a 1 appended against
    [c^T; -|c|^2 / 2], computed once, here. Large searches (_TENSORFLOW_MIN_SCORES)
    run it in TensorFlow (oneDNN or Eigen): on the 2-core AVX-512 machine, 50,000 x
    128-D features against 8192 words took 0.61 s against 0.97 s for faiss's exact
    search and 1.00 s for NumPy's OpenBLAS product in batches of 100 (medians of 3
    alternating runs); smaller ones in NumPy. Large searches for one word per feature
    with >= 2048 words go through `word_screen`'s bfloat16 screen where the CPU has
    native bfloat16 products (same words; 300,000 features x 8192 words in 2.5 s instead
    of 3.6 s there). Either way ties go to the lower word id.
    """

    def __init__(self, codebook: np.ndarray):
        """codebook: float [K, D] (its dtype is the dtype of the search)."""
        codebook = np.asarray(codebook)
        if codebook.ndim != 2 or not len(codebook):
            raise ValueError(f"codebook must be [K, D] with K >= 1, got shape {codebook.shape}")
        self.codebook = codebook
        # [D + 1, K]: the codewords as columns over a last row of -|c|^2 / 2, so one product
        # of the features with a 1 appended gives every x.c - |c|^2 / 2 (in TensorFlow 10%
        # faster here than subtracting |c|^2 / 2 from the product in a second pass).
        half_sq_norms = 0.5 * np.einsum("kd,kd->k", codebook, codebook)
        self._codebook_aug = np.concatenate([codebook.T, -half_sq_norms[None]])

    @functools.cached_property
    def _screen(self):
        from delf_tf.aggregation import word_screen

        return word_screen.Bfloat16Screen(self.codebook)

    @functools.cached_property
    def _codebook_aug_tensor(self):
        import tensorflow as tf

        return tf.constant(self._codebook_aug)

    def __call__(
        self,
        features: np.ndarray,
        num_assignments: int = 1,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest `num_assignments` codewords of each feature and their squared distances.

        Args:
          features: float [N, D].
          num_assignments: codewords per feature (1 <= A <= K).
          batch_size: features per product (bounds memory at batch_size x K scores);
            <= 0 computes all N at once; None: as many as keep a product's scores
            within 64 Mi values (4096 rows for up to 16384 words).

        Returns:
          (words int64 [N, A] nearest first, ties to the lower word id;
           squared distances [N, A] in the codebook's dtype, |x|^2 - 2 (x.c - |c|^2 / 2),
           clipped at 0).
        """
        return self._search(features, num_assignments, batch_size, with_distances=True)

    def words(
        self,
        features: np.ndarray,
        num_assignments: int = 1,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """The words of `__call__` without the distances: int64 [N, A]."""
        return self._search(features, num_assignments, batch_size, with_distances=False)[0]

    def _search(self, features: np.ndarray, num_assignments: int, batch_size: int | None,
                with_distances: bool) -> tuple[np.ndarray, np.ndarray | None]:
        num_words, dim = self.codebook.shape
        if not 1 <= num_assignments <= num_words:
            raise ValueError(f"num_assignments must be in [1, {num_words}] (codebook size), "
                             f"got {num_assignments}")
        features = np.asarray(features, dtype=self.codebook.dtype).reshape(-1, dim)
        num_features = len(features)
        if batch_size is None:
            batch_size = max(1, min(4096, _MAX_SCORES // num_words))
        elif batch_size <= 0:
            batch_size = max(num_features, 1)
        words = np.empty([num_features, num_assignments], dtype=np.int64)
        scores = np.empty([num_features, num_assignments], dtype=self.codebook.dtype)
        large = num_features * num_words >= _TENSORFLOW_MIN_SCORES
        if large and self._screened(num_assignments):
            words[:, 0], scores[:, 0] = self._screen.nearest(features, batch_size)
        else:
            if large:
                search, codebook_aug = _top_words(num_assignments), self._codebook_aug_tensor
            else:
                search, codebook_aug = _numpy_top_words(num_assignments), self._codebook_aug
            for start in range(0, num_features, batch_size):
                rows = slice(start, start + batch_size)
                words[rows], scores[rows] = search(features[rows], codebook_aug)
        if not with_distances:
            return words, None
        # |x - c|^2 = |x|^2 - 2 (x.c - |c|^2 / 2).
        sq_norms = np.einsum("nd,nd->n", features, features)[:, None]
        return words, np.maximum(sq_norms - 2 * scores, 0)

    def _screened(self, num_assignments: int) -> bool:
        """Whether a large search goes through the bfloat16 screen (`word_screen`):
        one word per feature, a float32 codebook of >= _SCREEN_MIN_WORDS words, and
        `word_screen.enabled()`."""
        from delf_tf.aggregation import word_screen

        return (num_assignments == 1 and self.codebook.dtype == np.float32
                and len(self.codebook) >= _SCREEN_MIN_WORDS and word_screen.enabled())


def _numpy_top_words(k: int):
    """`_top_words` in NumPy: (int64 words [B, k], their scores [B, k]), largest first,
    ties to the lower word id."""

    def top_words(features, codebook_aug):
        scores = features @ codebook_aug[:-1]
        scores += codebook_aug[-1]
        rows = np.arange(len(scores))
        if k > _MAX_REPEATED_ARGMAX:
            candidates = np.sort(np.argpartition(scores, -k, axis=1)[:, -k:], axis=1)
            order = np.argsort(-np.take_along_axis(scores, candidates, axis=1),
                               axis=1, kind="stable")
            top = np.take_along_axis(candidates, order, axis=1)
            return top, np.take_along_axis(scores, top, axis=1)
        # A few argmax passes are several times faster than sorting every row.
        top = np.empty([len(scores), k], dtype=np.int64)
        top_scores = np.empty([len(scores), k], dtype=scores.dtype)
        for a in range(k):
            top[:, a] = np.argmax(scores, axis=1)
            top_scores[:, a] = scores[rows, top[:, a]]
            scores[rows, top[:, a]] = -np.inf
        return top, top_scores

    return top_words


@functools.cache
def _top_words(k: int):
    """A TensorFlow function: the `k` words of largest x.c - |c|^2 / 2 per row of
    features [B, D] given [c^T; -|c|^2 / 2] [D + 1, K]; (int64 words [B, k], their
    scores [B, k]), largest first, ties to the lower word id (argmax's and top_k's
    order)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def top_words(features, codebook_aug):
        ones = tf.pad(features, [[0, 0], [0, 1]], constant_values=1)
        scores = tf.matmul(ones, codebook_aug)
        if k > 1:
            top = tf.math.top_k(scores, k)
            return tf.cast(top.indices, tf.int64), top.values
        words = tf.argmax(scores, axis=1, output_type=tf.int64)[:, None]
        return words, tf.gather(scores, words, batch_dims=1)

    return top_words


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
