"""MatchFeatures and RerankByGeometricVerification on a real photo and
affine-warped copies (see conftest.Scene)."""

import dataclasses
import io
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from delf_tf.io import feature_io
from delf_tf.matching import ransac, reranking

_EXT = reranking.DELG_LOCAL_EXTENSION


def _write(path, locations, descriptors):
    n = len(locations)
    feature_io.WriteToFile(path, locations, np.ones(n), descriptors, np.ones(n))


@pytest.mark.parametrize("backend", ransac.BACKENDS)
def test_recovers_transform_and_inliers_on_a_photo(scene, backend):
    _, view = scene.warped_view(seed=0, num_true=80, num_random=100, num_false=30)
    query = reranking.LocalFeatures.from_arrays(scene.locations, scene.descriptors)
    index = reranking.LocalFeatures.from_arrays(view.locations, view.descriptors)
    result = reranking.verify_pair(query, index, ransac_seed=0, backend=backend)

    true_match = view.query_ids[result.index_ids] == result.query_ids
    assert true_match.sum() >= 60 and (~true_match).sum() >= 20
    # Inliers are exactly the matches consistent with the true transform.
    mapped = view.locations[result.index_ids] @ view.to_query_yx[:, :2].T + view.to_query_yx[:, 2]
    consistent = np.linalg.norm(mapped - scene.locations[result.query_ids], axis=1) < 10.0
    np.testing.assert_array_equal(result.inliers, consistent)
    assert consistent.sum() >= true_match.sum()
    np.testing.assert_allclose(result.model, view.to_query_yx, atol=1e-3)


def _small_index(scene, tmp_path):
    """Query = the photo; index = 4 warped copies with 80/50/32/20 true
    correspondences among outliers, and 2 other photos."""
    query_dir, index_dir = tmp_path / "query", tmp_path / "index"
    query_dir.mkdir()
    index_dir.mkdir()
    _write(query_dir / f"astronaut{_EXT}", scene.locations, scene.descriptors)
    names = []
    for i, num_true in enumerate((80, 50, 32, 20)):
        _, view = scene.warped_view(seed=10 + i, num_true=num_true, num_random=120,
                                    num_false=20, rotation=0.1 * i, scale=0.8 + 0.1 * i)
        names.append(f"warped_{i}")
        _write(index_dir / f"{names[-1]}{_EXT}", view.locations, view.descriptors)
    rng = np.random.default_rng(5)
    for name in ("coffee", "chelsea"):
        other = getattr(data, name)()
        gray = other.mean(axis=2) / 255.0
        locations = rng.uniform(12, np.array(gray.shape) - 12, size=(150, 2))
        patches = np.stack([gray[int(y) - 4:int(y) + 4, int(x) - 4:int(x) + 4].ravel()
                            for y, x in locations])
        patches -= patches.mean(axis=1, keepdims=True)
        patches /= np.maximum(np.linalg.norm(patches, axis=1, keepdims=True), 1e-12)
        names.append(name)
        _write(index_dir / f"{name}{_EXT}", locations, patches)
    return str(query_dir), str(index_dir), names


def _rerank(query_dir, index_dir, names, backend, seed=0, junk=(), **kwargs):
    # A global ranking that disagrees with the geometry.
    scores = np.array([0.2, 0.5, 0.9, 0.1, 0.8, 0.3])
    return reranking.RerankByGeometricVerification(
        np.argsort(-scores, kind="stable"), scores, "astronaut", names, query_dir, index_dir,
        junk_ids=set(junk), ransac_seed=seed, backend=backend, **kwargs)


def test_backends_agree_on_reranked_order(scene, tmp_path):
    query_dir, index_dir, names = _small_index(scene, tmp_path)
    opencv = _rerank(query_dir, index_dir, names, "opencv", descriptor_matching_threshold=0.9)
    skimage = _rerank(query_dir, index_dir, names, "skimage", descriptor_matching_threshold=0.9)
    np.testing.assert_array_equal(opencv[:4], [0, 1, 2, 3])
    np.testing.assert_array_equal(opencv, skimage)


def test_same_seed_same_order_and_junk_is_not_verified(scene, tmp_path):
    query_dir, index_dir, names = _small_index(scene, tmp_path)
    runs = [_rerank(query_dir, index_dir, names, "opencv", seed=3) for _ in range(3)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    # Junk images keep 0 inliers and fall behind by global score.
    with_junk = _rerank(query_dir, index_dir, names, "opencv", junk={0})
    np.testing.assert_array_equal(with_junk[:3], [1, 2, 3])
    assert list(with_junk).index(0) > list(with_junk).index(1)
    # Only the top num_to_rerank non-junk images (by global score: 2, 4) are verified.
    top_two = _rerank(query_dir, index_dir, names, "opencv", num_to_rerank=2)
    np.testing.assert_array_equal(top_two[:2], [2, 4])
    np.testing.assert_array_equal(top_two[2:], [1, 5, 0, 3])


def test_rerank_by_inliers_is_stable():
    ranks = np.array([3, 4, 2, 1, 0])
    scores = np.array([0.5, 0.2, 0.5, 0.9, 0.5])
    inliers = np.array([7, 0, 0, 0, 7])
    # 0 and 4 tie on (inliers, score): input order (4 before 0) is kept.
    np.testing.assert_array_equal(
        reranking.rerank_by_inliers(ranks, scores, inliers), [4, 0, 3, 2, 1])


def test_select_candidates_skips_junk():
    np.testing.assert_array_equal(
        reranking.select_candidates([5, 1, 4, 2, 0, 3], junk_ids={1, 2}, num_to_rerank=3),
        [5, 4, 0])


def test_match_features_edge_cases(scene):
    locations, descriptors = scene.locations, scene.descriptors
    empty = np.array([])
    assert reranking.MatchFeatures(locations, descriptors, empty, empty) == (0, b"")
    assert reranking.MatchFeatures(empty, empty, locations, descriptors) == (0, b"")
    # 3 putative matches (< 4) count 0 inliers even though an affine fits them.
    assert reranking.MatchFeatures(locations[:3], descriptors[:3], locations,
                                   descriptors, ransac_seed=0)[0] == 0
    assert reranking.MatchFeatures(locations[:4], descriptors[:4], locations,
                                   descriptors, ransac_seed=0)[0] == 4
    with pytest.raises(ValueError, match="dimensionality"):
        reranking.MatchFeatures(locations, descriptors, locations, descriptors[:, :32])


def test_match_features_binarized_descriptors(scene):
    _, view = scene.warped_view(seed=2, num_true=70, num_random=60, num_false=10)
    # DELG*: sign bits of the descriptors, bit-packed.
    def pack(d):
        return np.packbits(d > 0, axis=1)

    float_inliers, _ = reranking.MatchFeatures(
        scene.locations, scene.descriptors, view.locations, view.descriptors,
        ransac_seed=0, descriptor_matching_threshold=1.0, ransac_residual_threshold=20.0)
    binary_inliers, _ = reranking.MatchFeatures(
        scene.locations, pack(scene.descriptors), view.locations, pack(view.descriptors),
        ransac_seed=0, descriptor_matching_threshold=1.0, ransac_residual_threshold=20.0)
    assert binary_inliers >= 40 and float_inliers >= 40


def test_match_features_picture(scene):
    warped, view = scene.warped_view(seed=1, num_true=40, num_random=20, num_false=5)
    num_inliers, png = reranking.MatchFeatures(
        scene.locations, scene.descriptors, view.locations, view.descriptors, ransac_seed=0,
        query_im_array=scene.image, index_im_array=warped[::2, ::2],
        index_im_scale_factors=[0.5, 0.5])
    picture = Image.open(io.BytesIO(png))
    assert num_inliers >= 30
    assert picture.format == "PNG" and picture.size == (512 + 256, 512)
    # Inlier lines are drawn over the pictures.
    side_by_side = np.concatenate(
        [scene.image, np.pad(warped[::2, ::2], ((0, 256), (0, 0), (0, 0)))], axis=1)
    assert (np.asarray(picture) != side_by_side).any(axis=2).sum() > 1000


def test_missing_or_broken_files_fail_before_verifying(scene, tmp_path, monkeypatch):
    query_dir, index_dir, names = _small_index(scene, tmp_path)
    calls = []
    monkeypatch.setattr(reranking, "verify_candidates",
                        lambda *a, **k: calls.append(1) or np.zeros(len(names), np.int64))
    os.remove(os.path.join(index_dir, f"chelsea{_EXT}"))
    with pytest.raises(FileNotFoundError, match=f"chelsea{_EXT}"):
        _rerank(query_dir, index_dir, names, "opencv")
    with open(os.path.join(index_dir, f"chelsea{_EXT}"), "wb") as f:
        f.write(b"\xff\xff\xff not a proto")
    with pytest.raises(ValueError, match=f"chelsea{_EXT}"):
        _rerank(query_dir, index_dir, names, "opencv")
    with pytest.raises(ValueError, match=f"chelsea{_EXT}"):
        reranking.check_local_features_file(os.path.join(index_dir, f"chelsea{_EXT}"))
    assert not calls


def test_check_local_features_file(scene, tmp_path):
    path = str(tmp_path / f"a{_EXT}")
    _write(path, scene.locations, scene.descriptors)
    assert reranking.check_local_features_file(path) == (len(scene.locations), 64, False)
    _write(path, scene.locations[:5], np.packbits(scene.descriptors[:5] > 0, axis=1))
    assert reranking.check_local_features_file(path) == (5, 8, True)
    _write(path, np.zeros((0, 2)), np.zeros((0, 64)))
    assert reranking.check_local_features_file(path) == (0, 0, False)


def test_feature_store_reads_each_file_once(scene, tmp_path, monkeypatch):
    path = str(tmp_path / f"a{_EXT}")
    _write(path, scene.locations, scene.descriptors)
    reads = []
    original = reranking.read_local_features
    monkeypatch.setattr(reranking, "read_local_features",
                        lambda p, **k: reads.append(p) or original(p, **k))
    store = reranking.LocalFeatureStore(capacity=1)
    first = store.get(path)
    assert store.get(path) is first and len(reads) == 1


def test_verify_candidates_same_counts_for_any_number_of_workers(scene):
    query = reranking.LocalFeatures.from_arrays(scene.locations, scene.descriptors)
    candidates = []
    for seed in range(4):
        _, view = scene.warped_view(seed=seed, num_true=20 + 15 * seed, num_random=50,
                                    num_false=30)
        candidates.append(reranking.LocalFeatures.from_arrays(
            view.locations, view.descriptors))
    counts = [reranking.verify_candidates(query, candidates, ransac_seed=1, num_workers=n)
              for n in (1, 3)]
    np.testing.assert_array_equal(counts[0], counts[1])
    assert list(counts[0]) == sorted(counts[0]) and counts[0][0] >= 15
    assert reranking.verify_candidates(query, []).shape == (0,)


def test_wrappers_are_the_engine(scene, tmp_path):
    """RerankByGeometricVerification, verify_pair and verify_candidates are thin
    wrappers over rerank_query, verify and verify_all with a VerificationParams."""
    from delf_tf.matching.params import VerificationParams

    query_dir, index_dir, names = _small_index(scene, tmp_path)
    scores = np.array([0.2, 0.5, 0.9, 0.1, 0.8, 0.3])
    ranks = np.argsort(-scores, kind="stable")
    params = VerificationParams(descriptor_matching_threshold=0.9, ransac_seed=0)
    query = reranking.read_local_features(os.path.join(query_dir, f"astronaut{_EXT}"))

    def index_features(i):
        return reranking.read_local_features(os.path.join(index_dir, names[i] + _EXT))

    engine = reranking.rerank_query(query, ranks, scores, {"a": {3}, "b": set()},
                                    index_features, params)
    np.testing.assert_array_equal(
        _rerank(query_dir, index_dir, names, "opencv", junk=[3]), engine["a"])
    np.testing.assert_array_equal(_rerank(query_dir, index_dir, names, "opencv"), engine["b"])
    assert not np.array_equal(engine["b"], ranks)

    candidates = [index_features(i) for i in range(len(names))]
    np.testing.assert_array_equal(
        reranking.verify_candidates(query, candidates, 0.9, ransac_seed=0),
        reranking.verify_all(query, candidates, params))
    assert reranking.verify_pair(query, candidates[0], 0.9, ransac_seed=0).num_inliers == \
        reranking.verify(query, candidates[0], params).num_inliers


def test_verification_params_check_the_backend_once():
    from delf_tf.matching.params import VerificationParams

    with pytest.raises(ValueError, match="unknown RANSAC backend 'cv3'"):
        VerificationParams(ransac_backend="cv3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        VerificationParams().max_trials = 5


def test_planned_store_reads_once_and_drops_images_after_their_last_use(monkeypatch):
    reads = []
    monkeypatch.setattr(reranking, "read_local_features", lambda p: reads.append(p) or object())
    # One image of room: b is never asked for again, so a stays for query 2 (an
    # LRU store of one image would read a twice).
    store = reranking.LocalFeatureStore.planned([["a"], ["b"], ["a", "c"]], capacity=1)
    for paths in (["a"], ["b"], ["a", "c"]):
        for path in paths:
            store.get(path)
    assert reads == ["a", "b", "c"] and len(store) == 0
    # Too little room: the image needed furthest ahead is the one read again.
    reads.clear()
    store = reranking.LocalFeatureStore.planned([["a", "b"], ["b"], ["a"]], capacity=1)
    for paths in (["a", "b"], ["b"], ["a"]):
        for path in paths:
            store.get(path)
    assert reads == ["a", "b", "a"] and len(store) == 0
