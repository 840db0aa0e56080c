"""Affine RANSAC with two backends: OpenCV (default) and scikit-image (parity).

Both fit a 2-D affine transform mapping `src` points onto `dst` points from
random 3-point samples, count as inliers the points whose transfer error
||A(src) - dst|| is below `residual_threshold`, run `max_trials` samples and
return the inliers of the best hypothesis. The coordinate order of the points
does not matter (an affine model is the same in (y, x) and (x, y)), only that
`src` and `dst` use the same one.

- 'opencv': cv2.estimateAffine2D (plain RANSAC). About 0.5 ms per pair instead
  of ~250 ms for scikit-image at 1000 trials. OpenCV's RANSAC draws samples from
  a generator with a fixed internal seed (cv2.setRNGSeed has no effect on it),
  so the seed is applied by shuffling the points with a seeded NumPy generator
  before the call: the same seed gives the same inliers, different seeds give
  different samples. Confidence is set just below 1 so that, like the original,
  it runs all trials unless the inlier ratio makes more trials pointless.
- 'skimage': skimage.measure.ransac with AffineTransform, min_samples 3 and
  stop_probability 1, seeded through its `rng` (the original's algorithm).

The two backends draw different samples, so their inlier counts agree
statistically, not bit for bit. They also differ on degenerate input: OpenCV
rejects collinear samples, scikit-image fits one of the many exact models (so
points all on one line are all inliers there, 0 with OpenCV).
"""

import warnings
from typing import NamedTuple

import numpy as np

MIN_SAMPLES = 3
DEFAULT_MAX_TRIALS = 1000
BACKENDS = ("opencv", "skimage")
# OpenCV asserts confidence < 1; this keeps its adaptive stop at max_trials for
# any realistic inlier ratio.
_OPENCV_CONFIDENCE = 1.0 - 1e-12


class RansacResult(NamedTuple):
    """model: float64 [2, 3] affine [A | t] with dst ~ A @ src + t, or None if
    no model was found. inliers: bool [N]."""
    model: np.ndarray | None
    inliers: np.ndarray

    @property
    def num_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown RANSAC backend {backend!r}; expected one of {BACKENDS}")


def estimate_affine(
    src: np.ndarray,
    dst: np.ndarray,
    residual_threshold: float,
    max_trials: int = DEFAULT_MAX_TRIALS,
    seed: int | None = None,
    backend: str = "opencv",
) -> RansacResult:
    """Robustly fits dst ~ A @ src + t.

    Args:
      src, dst: float [N, 2] corresponding points.
      residual_threshold: max transfer error (pixels) of an inlier.
      max_trials: number of random 3-point samples.
      seed: makes the result reproducible; None draws fresh randomness.
      backend: 'opencv' or 'skimage'.

    Fewer than 3 points give (None, all False).
    """
    check_backend(backend)
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) != len(dst):
        raise ValueError(f"src has {len(src)} points, dst has {len(dst)}")
    num_points = len(src)
    no_model = RansacResult(None, np.zeros([num_points], dtype=bool))
    if num_points < MIN_SAMPLES:
        return no_model
    if backend == "opencv":
        return _opencv_affine(src, dst, residual_threshold, max_trials, seed, no_model)
    return _skimage_affine(src, dst, residual_threshold, max_trials, seed, no_model)


def _opencv_affine(src, dst, residual_threshold, max_trials, seed, no_model) -> RansacResult:
    import cv2  # Imported lazily: only this backend needs OpenCV.

    order = np.random.default_rng(seed).permutation(len(src))
    model, mask = cv2.estimateAffine2D(
        src[order], dst[order], method=cv2.RANSAC,
        ransacReprojThreshold=float(residual_threshold), maxIters=int(max_trials),
        confidence=_OPENCV_CONFIDENCE)
    if model is None or mask is None:
        return no_model
    inliers = np.zeros(len(src), dtype=bool)
    inliers[order] = mask.ravel().astype(bool)
    if not inliers.any():
        return no_model
    return RansacResult(np.asarray(model, dtype=np.float64), inliers)


def _skimage_affine(src, dst, residual_threshold, max_trials, seed, no_model) -> RansacResult:
    from delf_tf.optional import import_optional

    measure = import_optional("skimage.measure", "demo")
    transform = import_optional("skimage.transform", "demo")

    with warnings.catch_warnings():
        # Degenerate samples and "no inliers found" are expected outcomes here.
        warnings.simplefilter("ignore")
        model, inliers = measure.ransac(
            (src, dst), transform.AffineTransform, min_samples=MIN_SAMPLES,
            residual_threshold=float(residual_threshold), max_trials=int(max_trials),
            rng=seed)
    if inliers is None or not np.any(inliers):
        return no_model
    # The final least-squares refit on the inliers can fail (degenerate
    # inliers) even though the inlier set itself is valid.
    params = getattr(model, "params", None)
    if params is not None:
        params = np.asarray(params, dtype=np.float64)[:2]
    return RansacResult(params, np.asarray(inliers, dtype=bool))
