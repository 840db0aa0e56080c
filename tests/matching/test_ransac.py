"""Affine RANSAC backends on points with a known transform and outliers."""

import numpy as np
import pytest

from delf_tf.matching import ransac


def _points(seed=0, num_inliers=60, num_outliers=60, noise=0.0):
    rng = np.random.default_rng(seed)
    model = np.array([[0.9, -0.2, 30.0], [0.15, 1.1, -12.0]])
    src = rng.uniform(0, 500, size=(num_inliers + num_outliers, 2))
    dst = src @ model[:, :2].T + model[:, 2]
    dst[:num_inliers] += noise * rng.normal(size=(num_inliers, 2))
    dst[num_inliers:] = rng.uniform(0, 500, size=(num_outliers, 2))
    truth = np.linalg.norm(src @ model[:, :2].T + model[:, 2] - dst, axis=1) < 5.0
    return src, dst, model, truth


@pytest.mark.parametrize("backend", ransac.BACKENDS)
def test_recovers_transform_and_inliers(backend):
    src, dst, model, truth = _points()
    result = ransac.estimate_affine(src, dst, residual_threshold=5.0, seed=0, backend=backend)
    np.testing.assert_array_equal(result.inliers, truth)
    np.testing.assert_allclose(result.model, model, atol=1e-3)
    assert result.num_inliers == truth.sum() >= 60


@pytest.mark.parametrize("backend", ransac.BACKENDS)
def test_same_seed_same_inliers(backend):
    # Few trials on noisy data: the outcome depends on the samples drawn.
    src, dst, _, _ = _points(seed=1, num_inliers=30, num_outliers=90, noise=3.0)
    runs = [ransac.estimate_affine(src, dst, 4.0, max_trials=15, seed=seed, backend=backend)
            for seed in (7, 7, 8, 9, 10, 11)]
    np.testing.assert_array_equal(runs[0].inliers, runs[1].inliers)
    # The seed does steer the sampling (OpenCV ignores cv2.setRNGSeed).
    assert len({r.inliers.tobytes() for r in runs}) > 1


@pytest.mark.parametrize("backend", ransac.BACKENDS)
def test_too_few_points_give_no_model(backend):
    result = ransac.estimate_affine(np.zeros((2, 2)), np.ones((2, 2)), 10.0, backend=backend)
    assert result.model is None and result.num_inliers == 0 and result.inliers.shape == (2,)


def test_collinear_points():
    # All points on one line determine no affine transform: OpenCV rejects the
    # samples, scikit-image (the original) fits one of the many exact models.
    src = np.stack([np.arange(10.0), np.arange(10.0)], axis=1)
    opencv = ransac.estimate_affine(src, src * 2, 1.0, max_trials=50, seed=0,
                                    backend="opencv")
    skimage = ransac.estimate_affine(src, src * 2, 1.0, max_trials=50, seed=0,
                                     backend="skimage")
    numpy = ransac.estimate_affine(src, src * 2, 1.0, max_trials=50, seed=0)
    assert opencv.num_inliers == 0 and opencv.model is None
    assert skimage.num_inliers == 10
    np.testing.assert_array_equal(numpy.inliers, skimage.inliers)


def test_numpy_backend_draws_the_samples_of_numpys_choice():
    for seed in (0, 3, 12345):
        for num_points in (3, 4, 9, 150, 1000, 70000):
            rng = np.random.default_rng(seed)
            expected = [rng.choice(num_points, 3, replace=False) for _ in range(40)]
            np.testing.assert_array_equal(ransac.choice_samples(seed, num_points, 40),
                                          expected)


@pytest.mark.parametrize("case", range(6))
def test_numpy_backend_gives_the_skimage_backends_inliers(case):
    # Noisy inliers and outliers in general position, and points on a coarse grid (many
    # collinear, degenerate samples, as keypoints on a feature-map grid give).
    rng = np.random.default_rng(case)
    num = int(rng.integers(8, 120))
    if case % 2:
        src = rng.integers(0, 8, size=(num, 2)) * 32.0
        dst = src @ np.array([[1.0, 0.1], [0.0, 0.9]]) + 7.0
        dst[:num // 3] = rng.integers(0, 8, size=(num // 3, 2)) * 32.0
        threshold, trials = 10.0, 300
    else:
        src, dst, _, _ = _points(seed=case, num_inliers=int(rng.integers(3, 40)),
                                 num_outliers=num, noise=3.0)
        threshold, trials = 8.0, 1000
    reference = ransac.estimate_affine(src, dst, threshold, trials, seed=case,
                                       backend="skimage")
    ours = ransac.estimate_affine(src, dst, threshold, trials, seed=case)
    np.testing.assert_array_equal(ours.inliers, reference.inliers)
    if reference.model is not None:
        np.testing.assert_allclose(ours.model, reference.model, rtol=1e-6, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown RANSAC backend"):
        ransac.estimate_affine(np.zeros((5, 2)), np.zeros((5, 2)), 1.0, backend="magsac")
    with pytest.raises(ValueError, match="src has 5 points, dst has 4"):
        ransac.estimate_affine(np.zeros((5, 2)), np.zeros((4, 2)), 1.0)


def test_numpy_backend_same_result_with_and_without_numba(monkeypatch):
    src, dst, _, _ = _points(seed=4, num_inliers=25, num_outliers=100, noise=3.0)
    compiled = ransac.estimate_affine(src, dst, 8.0, seed=1)
    monkeypatch.setattr(ransac, "_KERNEL", [None])  # the NumPy scoring path
    plain = ransac.estimate_affine(src, dst, 8.0, seed=1)
    np.testing.assert_array_equal(compiled.inliers, plain.inliers)
    assert compiled.num_inliers >= 20
