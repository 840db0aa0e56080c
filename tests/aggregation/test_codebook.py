"""k-means codebooks: training, sampling from feature files, file round trips."""

import numpy as np
import pytest

from delf_tf.aggregation import codebook
from delf_tf.io import feature_io

CENTERS = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]])


def _blobs(rng, per_center=200):
    return np.concatenate([c + 0.1 * rng.normal(size=[per_center, 3]) for c in CENTERS])


@pytest.mark.parametrize("algorithm", ["exact", "minibatch"])
def test_train_recovers_separated_centers(algorithm):
    descriptors = _blobs(np.random.default_rng(0), per_center=500)
    centers = codebook.TrainCodebook(descriptors, 3, num_iterations=20, algorithm=algorithm)
    assert centers.dtype == np.float32 and centers.shape == (3, 3)
    np.testing.assert_allclose(centers[np.lexsort(centers.T[::-1])],
                               CENTERS[np.lexsort(CENTERS.T[::-1])], atol=0.05)


def test_train_is_seeded_and_checks_sizes():
    descriptors = np.random.default_rng(1).normal(size=[300, 4])
    np.testing.assert_array_equal(codebook.TrainCodebook(descriptors, 5, seed=3),
                                  codebook.TrainCodebook(descriptors, 5, seed=3))
    with pytest.raises(ValueError, match="300 descriptors for 400 clusters"):
        codebook.TrainCodebook(descriptors, 400)
    with pytest.raises(ValueError, match="algorithm"):
        codebook.TrainCodebook(descriptors, 5, algorithm="hierarchical")


def _write_features(path, descriptors):
    n = len(descriptors)
    feature_io.WriteToFile(str(path), np.zeros([n, 2]), np.ones([n]), descriptors, np.ones([n]))


def test_sample_descriptors(tmp_path):
    rng = np.random.default_rng(2)
    paths = []
    for i, n in enumerate([30, 0, 50]):
        paths.append(str(tmp_path / f"{i}.delf"))
        _write_features(paths[-1], rng.normal(size=[n, 8]))
    all_descriptors = codebook.SampleDescriptors(paths)
    assert all_descriptors.shape == (80, 8) and all_descriptors.dtype == np.float32
    sampled = codebook.SampleDescriptors(paths, max_num_descriptors=20, seed=1)
    assert sampled.shape == (20, 8)
    # Sampled rows are rows of the full set, without repeats.
    matches = (sampled[:, None, :] == all_descriptors[None]).all(-1)
    assert np.all(matches.sum(1) == 1) and len(set(matches.argmax(1))) == 20

    _write_features(tmp_path / "binary.delf", np.zeros([3, 4], np.uint8))
    with pytest.raises(ValueError, match="binarized"):
        codebook.SampleDescriptors([str(tmp_path / "binary.delf")])
    with pytest.raises(FileNotFoundError, match="missing.delf"):
        codebook.SampleDescriptors([str(tmp_path / "missing.delf")])
    with pytest.raises(ValueError, match="No descriptors"):
        codebook.SampleDescriptors([paths[1]])


def test_datum_round_trip(tmp_path):
    centers = np.random.default_rng(3).normal(size=[16, 8]).astype(np.float32)
    path = str(tmp_path / "codebook.datum")
    codebook.WriteCodebook(centers, path)
    np.testing.assert_array_equal(codebook.ReadCodebook(path), centers)
    with pytest.raises(FileNotFoundError, match="nothing.datum"):
        codebook.ReadCodebook(str(tmp_path / "nothing.datum"))
    with pytest.raises(ValueError, match=r"\[K, D\]"):
        codebook.WriteCodebook(np.zeros([4]), path)


def test_reads_original_tensorflow_checkpoint(tmp_path):
    tf = pytest.importorskip("tensorflow")
    centers = np.random.default_rng(4).normal(size=[6, 4]).astype(np.float32)
    checkpoint = tf.train.Checkpoint(clusters=tf.Variable(centers))
    # save() also writes the directory's 'checkpoint' state file.
    prefix = checkpoint.save(str(tmp_path / "k6_codebook_tfckpt" / "codebook"))
    np.testing.assert_array_equal(codebook.ReadCodebook(prefix), centers)
    np.testing.assert_array_equal(codebook.ReadCodebook(str(tmp_path / "k6_codebook_tfckpt")),
                                  centers)


def _photo_patches(image: np.ndarray) -> np.ndarray:
    """Mean-free 8x8 patches (64-D) of a grey photo, every 4 pixels: real local descriptors."""
    pixels = image.astype(np.float32) / 255
    patches = np.lib.stride_tricks.sliding_window_view(pixels, (8, 8))[::4, ::4].reshape(-1, 64)
    return patches - patches.mean(1, keepdims=True)


@pytest.fixture(scope="module")
def photo_descriptors():
    pytest.importorskip("faiss")
    skimage_data = pytest.importorskip("skimage.data")
    return _photo_patches(skimage_data.camera()), _photo_patches(skimage_data.astronaut()[..., 1])


def _quantization_error(descriptors, centers):
    squared = ((descriptors[:, None, :] - centers[None]) ** 2).sum(-1)
    return squared.min(1).mean()


def test_approximate_assignment_matches_exact_on_photo_patches(photo_descriptors):
    import faiss

    train, held_out = photo_descriptors
    exact = codebook.TrainCodebook(train, 64, 8, algorithm="converge", tolerance=0)
    approximate = codebook.TrainCodebook(train, 64, 8, algorithm="approximate", tolerance=0,
                                         num_neighbors=8)
    # Same quantization error on other photos' patches (exact k-means differs by ~1% with the
    # seed alone).
    np.testing.assert_allclose(_quantization_error(held_out, approximate),
                               _quantization_error(held_out, exact), rtol=0.02)
    # One approximate assignment step from the exact assignment: the same words for
    # nearly all descriptors, and never a farther word than the exact step finds.
    _, exact_words = faiss.knn(train, exact, 1)
    moved = exact + 0.01 * np.random.default_rng(0).normal(size=exact.shape).astype(np.float32)
    moved_distances, moved_words = faiss.knn(train, moved, 1)
    distances, words = codebook._assign_near_previous(train, moved, exact_words[:, 0], 8)
    assert np.mean(words == moved_words[:, 0]) > 0.95
    assert np.all(distances >= moved_distances[:, 0] - 1e-4)
    np.testing.assert_allclose(distances.mean(), moved_distances.mean(), rtol=0.01)


@pytest.mark.parametrize("algorithm", ["converge", "approximate"])
def test_lloyd_is_seeded_and_stops_once_converged(photo_descriptors, algorithm, caplog):
    train = photo_descriptors[0][::2]
    first = codebook.TrainCodebook(train, 32, 5, seed=1, algorithm=algorithm, num_neighbors=8)
    np.testing.assert_array_equal(
        first, codebook.TrainCodebook(train, 32, 5, seed=1, algorithm=algorithm,
                                      num_neighbors=8))
    assert not np.array_equal(
        first, codebook.TrainCodebook(train, 32, 5, seed=2, algorithm=algorithm,
                                      num_neighbors=8))
    with caplog.at_level("INFO", logger=codebook.__name__):
        codebook.TrainCodebook(train, 32, 50, algorithm=algorithm, num_neighbors=8,
                               tolerance=0.05)
    iterations = [r.message for r in caplog.records if "k-means iteration" in r.message]
    assert 2 <= len(iterations) < 50 and "converged" in caplog.records[-1].message


def test_cluster_dataset_features_wrapper_passes_clustering_params(monkeypatch):
    """ClusterDatasetFeatures is cluster_dataset_features on ClusteringParams."""
    seen = []
    monkeypatch.setattr(codebook, "cluster_dataset_features",
                        lambda *args: seen.append(args) or "out/codebook.datum")
    assert codebook.ClusterDatasetFeatures("d.mat", "f", "out", 8, num_iterations=3, seed=2,
                                           feature_extension=".delg_local") == "out/codebook.datum"
    assert seen == [("d.mat", "f", "out",
                     codebook.ClusteringParams(num_clusters=8, num_iterations=3, seed=2),
                     ".delg_local")]
