"""Compiled (numba) scoring of RANSAC hypotheses. Imported only when numba is installed."""

import numba
import numpy as np

__all__ = ["score_hypotheses"]


@numba.njit(cache=True, nogil=True)
def score_hypotheses(models, valid, src, dst, threshold, counts, sums):
    """For each affine hypothesis t ([x, y, 1] @ models[t] maps src to dst): counts[t] =
    number of points with transfer error < threshold, sums[t] = sum of squared errors over
    all points; invalid hypotheses get count -1. Same arithmetic, in the same order, as
    the NumPy path of delf_tf.matching.ransac.

    models: float64 [T, 3, 2]; valid: bool [T]; src, dst: float64 [N, 2];
    counts: int64 [T] and sums: float64 [T], written.
    """
    for t in range(models.shape[0]):
        if not valid[t]:
            counts[t] = -1
            sums[t] = 0.0
            continue
        a00, a10, a20 = models[t, 0, 0], models[t, 1, 0], models[t, 2, 0]
        a01, a11, a21 = models[t, 0, 1], models[t, 1, 1], models[t, 2, 1]
        count = 0
        total = 0.0
        for i in range(src.shape[0]):
            dx = (a00 * src[i, 0] + a10 * src[i, 1] + a20) - dst[i, 0]
            dy = (a01 * src[i, 0] + a11 * src[i, 1] + a21) - dst[i, 1]
            squared = dx * dx + dy * dy
            total += squared
            if np.sqrt(squared) < threshold:
                count += 1
        counts[t] = count
        sums[t] = total
