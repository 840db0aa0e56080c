"""Exact nearest words through a bfloat16 screen, for CPUs with native bfloat16 products.

The nearest word of x by squared L2 is the word of largest s(c) = x.c - |c|^2 / 2.
On a CPU with native bfloat16 dot products (x86 AVX512-BF16 or AMX) through oneDNN,
one bfloat16 product of all features against all words costs about 65% of the float32
one. Its scores are rounded, so this module uses them only to rule words out, and
the winner is still decided in float32:

1. The words are ordered once into groups of `WORDS_PER_GROUP` neighbouring words
   (recursive halving along the principal direction).
2. The bfloat16 product gives, per feature, the largest rounded score M_g of each
   group g.
3. Each score's rounding error is bounded per feature by `eps` (from the exact
   residuals of the bfloat16 casts, the float32 accumulation and the product's
   rounding to bfloat16; see `_bound_terms`). A group can hold the nearest word
   only if M_g + error >= max_g (M_g - error): every other group's words all score
   strictly less than the best word, so they can neither win nor tie.
4. The words of the remaining groups (1.4 per feature on the 8192-word benchmark)
   are scored again in float32, and the best wins (ties to the lower word id).

So the words are those of a float32 search over every word, up to float32
rounding, like any other exact search. `enabled()` says when `WordSearch` takes this
path; the environment variable DELF_TF_BFLOAT16_SCREEN=on|off overrides it, except that
the screen is never used where TensorFlow's bfloat16 product breaks the bound's
assumption (checked once per process).
"""

import concurrent.futures
import functools
import os

import numpy as np
from absl import logging

from delf_tf import blas

__all__ = ["WORDS_PER_GROUP", "Bfloat16Screen", "bfloat16_product_is_bounded", "enabled",
           "group_order"]

# Words per group: fewer, larger groups cost less in step 2 and more in step 4. 256 was
# fastest on the 8192-word benchmark (128: the same within 3%; 512: 12% slower).
WORDS_PER_GROUP = 256
# Unit roundoff of bfloat16 (8 significant bits, round to nearest).
_BFLOAT16_ROUNDOFF = 2.0**-8
_FLOAT32_ROUNDOFF = 2.0**-24
# Score of the padding words that fill the last group (never a candidate).
_PADDING_SCORE = -1e30
# Features whose candidate words are re-scored together.
_FEATURES_PER_CHECK = 16384


def enabled() -> bool:
    """Whether large single-word searches go through the bfloat16 screen.

    DELF_TF_BFLOAT16_SCREEN=off: never. on: whenever TensorFlow's bfloat16 product
    keeps to the error bound the screen relies on (`bfloat16_product_is_bounded`).
    auto (the default): also only when the CPU has native bfloat16 dot products
    (avx512_bf16 or amx_bf16 in /proc/cpuinfo) and TensorFlow's oneDNN kernels are on
    (not TF_ENABLE_ONEDNN_OPTS=0), since elsewhere a bfloat16 product is emulated,
    slower than the float32 one, and (Eigen's) not summed in float32.
    """
    choice = os.environ.get("DELF_TF_BFLOAT16_SCREEN", "auto").lower()
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"DELF_TF_BFLOAT16_SCREEN must be auto, on or off, got {choice!r}")
    if choice == "off":
        return False
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    if choice == "auto" and not (onednn and _cpu_has_bfloat16()):
        return False
    if bfloat16_product_is_bounded():
        return True
    logging.warning("TensorFlow's bfloat16 product here is not a float32 sum rounded to "
                    "bfloat16; nearest-word searches run in float32 only")
    return False


@functools.cache
def _cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def bfloat16_product_is_bounded(dim: int = 129) -> bool:
    """Whether TensorFlow's bfloat16 matrix product, as this process runs it, is what the
    screen's bound assumes: each entry the float32 sum of the exact products, rounded to
    the nearest bfloat16, so within 2^-8 of its exact value plus 2 D 2^-24 times the sum
    of the products' magnitudes. Checked once on a random 256 x D x 512 product (oneDNN
    keeps to it; Eigen's emulation, with TF_ENABLE_ONEDNN_OPTS=0, does not)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.cast(rng.normal(size=[256, dim]).astype(np.float32), tf.bfloat16)
    b = tf.cast(rng.normal(size=[dim, 512]).astype(np.float32), tf.bfloat16)
    a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    exact = a64 @ b64
    error = np.abs(tf.matmul(a, b).numpy().astype(np.float64) - exact)
    allowed = _BFLOAT16_ROUNDOFF * np.abs(exact) + 2 * dim * _FLOAT32_ROUNDOFF * (
        np.abs(a64) @ np.abs(b64))
    return bool((error <= allowed).all())


def group_order(codebook: np.ndarray, words_per_group: int) -> np.ndarray:
    """A permutation of the words that puts neighbouring words together: the words are
    halved recursively along their principal direction, each split at a multiple of
    `words_per_group`, so consecutive runs of `words_per_group` words (the last one
    possibly shorter) form the groups. Each group's words are in ascending id order."""
    order = []

    def split(ids: np.ndarray) -> None:
        if len(ids) <= words_per_group:
            order.append(np.sort(ids))
            return
        centred = codebook[ids] - codebook[ids].mean(axis=0)
        direction = np.linalg.eigh(centred.T @ centred)[1][:, -1]
        ids = ids[np.argsort(centred @ direction, kind="stable")]
        half = words_per_group * (-(-len(ids) // words_per_group) // 2)
        split(ids[:half])
        split(ids[half:])

    split(np.arange(len(codebook)))
    return np.concatenate(order)


class Bfloat16Screen:
    """The exact nearest word of each feature, screened by one bfloat16 product (see
    the module docstring). Prepared once per float32 codebook [K, D]."""

    def __init__(self, codebook: np.ndarray, words_per_group: int | None = None):
        """codebook: [K, D]; words_per_group: default `WORDS_PER_GROUP`."""
        import tensorflow as tf

        words_per_group = words_per_group or WORDS_PER_GROUP
        codebook = np.asarray(codebook, dtype=np.float32)
        num_words, dim = codebook.shape
        self._group_size = words_per_group
        self._num_groups = -(-num_words // words_per_group)
        padding = self._num_groups * words_per_group - num_words
        # word_ids[j]: the word of column j (padding columns: id num_words, never chosen).
        self.word_ids = np.concatenate([group_order(codebook, words_per_group),
                                        np.full(padding, num_words)])
        ordered = np.concatenate([codebook, np.zeros([1, dim], np.float32)])[self.word_ids]
        half_sq_norms = 0.5 * np.einsum("kd,kd->k", ordered, ordered)
        if padding:
            half_sq_norms[-padding:] = -_PADDING_SCORE
        # [D + 1, K'] columns [c; -|c|^2 / 2] in group order, float32 and bfloat16.
        self._codebook_aug = np.concatenate([ordered.T, -half_sq_norms[None]]).astype(np.float32)
        self._groups = [np.ascontiguousarray(self._codebook_aug[:, g:g + words_per_group])
                        for g in range(0, self._codebook_aug.shape[1], words_per_group)]
        self._codebook_bf16 = tf.cast(tf.constant(self._codebook_aug), tf.bfloat16)
        self._bounds = tf.constant(_bound_terms(
            self._codebook_aug[:, :num_words], self._codebook_bf16.numpy()[:, :num_words]))

    def nearest(self, features: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(int64 word [N], float32 score x.c - |c|^2 / 2 [N]) of each feature of float32
        [N, D]; `batch_size` features per bfloat16 product."""
        features = np.asarray(features, dtype=np.float32)
        words = np.empty(len(features), dtype=np.int64)
        scores = np.empty(len(features), dtype=np.float32)
        candidate_groups = _candidate_function()
        for start in range(0, len(features), _FEATURES_PER_CHECK):
            chunk = features[start:start + _FEATURES_PER_CHECK]
            candidates = np.concatenate([
                candidate_groups(chunk[i:i + batch_size], self._codebook_bf16, self._bounds,
                                 self._num_groups).numpy()
                for i in range(0, len(chunk), batch_size)])
            end = start + len(chunk)
            words[start:end], scores[start:end] = self._check(chunk, candidates)
        return words, scores

    def _check(self, features: np.ndarray, candidates: np.ndarray):
        """Step 4: float32 scores of every word of each feature's candidate groups
        (bool [N, G]); (word, score) of the best, ties to the lower word id."""
        groups, rows = np.nonzero(candidates.T)  # sorted by group
        starts = np.searchsorted(groups, np.arange(self._num_groups + 1))
        features_aug = np.empty([len(features), features.shape[1] + 1], dtype=np.float32)
        features_aug[:, :-1], features_aug[:, -1] = features, 1
        best_scores = np.empty(len(rows), dtype=np.float32)
        best_columns = np.empty(len(rows), dtype=np.int64)

        def check_groups(group_ids) -> None:
            for g in group_ids:
                pairs = slice(starts[g], starts[g + 1])
                if starts[g] == starts[g + 1]:
                    continue
                scores = features_aug[rows[pairs]] @ self._groups[g]
                best = np.argmax(scores, axis=1)  # first of equal scores: the lower id
                best_scores[pairs] = scores[np.arange(len(best)), best]
                best_columns[pairs] = g * self._group_size + best

        # Small products, each on one BLAS thread, in a few Python threads: BLAS's own
        # threads would stay spinning after each product and slow the next bfloat16 one.
        threads = min(4, os.cpu_count() or 1)
        # (A pool per call, so no idle threads outlive the search.)
        with blas.single_threaded(), concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(check_groups, [range(i, self._num_groups, threads)
                                         for i in range(threads)]))
        word = self.word_ids[best_columns]
        best = np.full(len(features), -np.inf, dtype=np.float32)
        np.maximum.at(best, rows, best_scores)
        chosen = np.full(len(features), len(self.word_ids), dtype=np.int64)
        np.minimum.at(chosen, rows, np.where(best_scores == best[rows], word, len(self.word_ids)))
        # A feature with a NaN has no candidate group (its comparisons are all false) and
        # no nearest word; it gets word 0, as from NumPy's argmax over NaN scores.
        chosen[chosen == len(self.word_ids)] = 0
        return chosen, best


def _bound_terms(codebook_aug: np.ndarray, codebook_bf16: np.ndarray) -> np.ndarray:
    """float32 [5]: max |r_c|, max |c~|, max |r_b|, max |b~| over the words, and the
    float32 accumulation error factor, where c~ and b~ = -|c|^2/2~ are a word's
    bfloat16 values and r_c, r_b what the casts dropped (exactly: c = c~ + r_c).

    For a feature x = x~ + r_x (with its appended 1, exact in bfloat16), the exact score
    is x~.c~ + b~ + x~.r_c + r_x.c~ + r_x.r_c + r_b, so it differs from the product's
    float32 accumulation of x~.c~ + b~ by at most |x~||r_c| + |r_x||c~| + |r_x||r_c| +
    |r_b| + (accumulation error of that sum and of the float32 re-scoring:
    2 (D + 1) 2^-24 (|x~||c~| + |b~|) each)."""
    dim = codebook_aug.shape[0] - 1
    codebook_bf16 = codebook_bf16.astype(np.float32)
    residual = codebook_aug - codebook_bf16
    return np.array([
        np.linalg.norm(residual[:dim], axis=0).max(),
        np.linalg.norm(codebook_bf16[:dim], axis=0).max(),
        np.abs(residual[dim]).max(),
        np.abs(codebook_bf16[dim]).max(),
        4 * (dim + 1) * _FLOAT32_ROUNDOFF,
    ], dtype=np.float32)


@functools.cache
def _candidate_function():
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def candidate_groups(features, codebook_bf16, bounds, num_groups):
        """bool [B, G]: whether group g may hold the nearest word of feature b."""
        features_aug = tf.pad(features, [[0, 0], [0, 1]], constant_values=1)
        features_bf16 = tf.cast(features_aug, tf.bfloat16)
        rounded = tf.cast(features_bf16, tf.float32)
        residual_norm = tf.norm(features_aug - rounded, axis=1)
        norm = tf.norm(rounded[:, :-1], axis=1)
        max_residual, max_norm, max_bias_residual, max_bias, accumulation = tf.unstack(bounds)
        eps = (norm * max_residual + residual_norm * (max_norm + max_residual)
               + max_bias_residual + accumulation * (norm * max_norm + max_bias))
        eps = eps * (1 + 1e-4)  # the float32 arithmetic of this bound itself
        scores = tf.matmul(features_bf16, codebook_bf16)
        # The largest bfloat16 score of each group, from its bits as int16 (4x faster
        # than TensorFlow's bfloat16 max on the 2-core AVX-512 machine). bfloat16 is
        # sign-magnitude: among int16 bits, non-negative values sort as their numbers,
        # negative ones in reverse; so a group's largest value is its largest int16 if
        # that is >= 0, and otherwise (every score negative) its smallest int16.
        bits = tf.reshape(tf.bitcast(scores, tf.int16), [tf.shape(scores)[0], num_groups, -1])
        largest_bits = tf.reduce_max(bits, 2)
        largest_bits = tf.where(largest_bits >= 0, largest_bits, tf.reduce_min(bits, 2))
        group_max = tf.cast(tf.bitcast(largest_bits, tf.bfloat16), tf.float32)
        # A float32 sum a rounded to bfloat16 as m satisfies |m - a| <= u |a| <= u' |m|.
        rounding = tf.abs(group_max) * (_BFLOAT16_ROUNDOFF / (1 - _BFLOAT16_ROUNDOFF))
        lowest_best = tf.reduce_max(group_max - rounding, axis=1) - eps
        return group_max + rounding + eps[:, None] >= lowest_best[:, None]

    return candidate_groups

