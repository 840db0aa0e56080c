"""ELFM maths on hand examples."""

import numpy as np
import pytest

from delf_tf.elfm import descriptor
from delf_tf.elfm import functional as F

# Norms 1, 3, 2.9, 2, 2.1: the seeds are point 1 (largest norm), then point 3 (farthest from
# point 1: 13 vs 12.82 squared), then point 0 (distance^2 1 to point 3; points 2, 4 are 0.01
# and 0.02 from a chosen centre).
POINTS = np.array([[1.0, 0.0], [0.0, 3.0], [0.0, 2.9], [2.0, 0.0], [2.1, 0.1]])


def test_init_centers_hand_order():
    np.testing.assert_array_equal(F.init_centers(POINTS, 3), [1, 3, 0])
    np.testing.assert_array_equal(F.init_centers(POINTS, 1), [1])
    np.testing.assert_array_equal(F.init_centers(POINTS, 9), [1, 3, 0, 4, 2])


def test_init_centers_ties_and_duplicates():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # Equal norms: the lower index; point 2 duplicates the chosen point 0 (distance 0) but is
    # still chosen once no other point is left.
    np.testing.assert_array_equal(F.init_centers(points, 3), [0, 1, 2])


def test_kmeans_hand_example():
    centers, labels = F.kmeans(POINTS, 3)
    np.testing.assert_array_equal(labels, [2, 0, 0, 1, 1])
    np.testing.assert_allclose(centers, [[0.0, 2.95], [2.05, 0.05], [1.0, 0.0]])


def test_kmeans_same_result_for_same_input():
    rng = np.random.default_rng(3)
    points = rng.random([200, 64]).astype(np.float32)
    first = F.kmeans(points, 10)
    second = F.kmeans(points.copy(), 10)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[0], second[0])


def test_select_by_norm():
    np.testing.assert_array_equal(F.select_by_norm(POINTS, 3), [1, 2, 4])
    assert len(F.select_by_norm(POINTS[:0], 3)) == 0


def test_cluster_gem():
    points = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 0.5]])
    pooled = F.cluster_gem(points, np.array([0, 0, 1]), 3, power=3.0)
    np.testing.assert_allclose(pooled[0], [4.5 ** (1 / 3), 2.0], rtol=1e-6)
    np.testing.assert_allclose(pooled[1], [3.0, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(pooled[2], [0.0, 0.0])  # no members


@pytest.mark.parametrize("dim", [64, 70, 2048])
def test_pack_round_trip(dim):
    bits = np.random.default_rng(dim).random([5, dim]) > 0.5
    packed = F.pack_codes(bits)
    assert packed.shape == (5, 8 * F.num_words(dim)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(F.unpack_codes(packed, dim), bits)
    words = descriptor.codes_to_words(packed)
    np.testing.assert_array_equal(descriptor.words_to_codes(words), packed)


def test_pack_bit_order():
    bits = np.zeros([1, 64], bool)
    bits[0, [0, 9, 63]] = True
    packed = F.pack_codes(bits)
    assert packed[0, 0] == 1 and packed[0, 1] == 2 and packed[0, 7] == 128
    assert descriptor.codes_to_words(packed)[0, 0] == 1 + (1 << 9)


def _code(*ranges):
    bits = np.zeros([64], bool)
    for start, stop in ranges:
        bits[start:stop] = True
    return bits


def test_similarity_hand_codes_unequal_cluster_counts():
    query = F.pack_codes(np.stack([_code(), _code((0, 32))]))
    candidate = F.pack_codes(np.stack([_code((0, 16)), _code((0, 64)), _code((32, 48))]))
    np.testing.assert_array_equal(F.hamming_matrix(query, candidate),
                                  [[16, 64, 16], [16, 32, 48]])
    np.testing.assert_allclose(F.match_matrix(query, candidate, 64),
                               [[0.75, 0.0, 0.75], [0.75, 0.5, 0.25]])
    assert F.elfm_similarity(query, candidate) == pytest.approx(0.75)
    assert F.elfm_similarity(candidate, query) == pytest.approx((0.75 + 0.5 + 0.75) / 3)
    assert F.elfm_similarity(query[:0], candidate) == 0.0
    assert F.elfm_similarity(query, candidate[:0]) == 0.0


def test_float_similarity():
    query = np.array([[1.0, 0.0], [0.0, 2.0]])
    candidate = np.array([[3.0, 4.0]])
    assert F.float_similarity(query, candidate) == pytest.approx((0.6 + 0.8) / 2)


def test_describe_fewer_features_than_clusters():
    features = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.1]])
    flip = np.diag([1.0, -1.0, 1.0, -1.0]).astype(np.float32)
    result = descriptor.describe(features, lambda x: x @ flip, num_clusters=10)
    # Each feature is its own cluster, in seeding order: norms 3 (row 1), then farthest.
    assert result.num_clusters == 3 and result.dim == 4
    np.testing.assert_array_equal(sorted(result.labels), [0, 1, 2])
    bits = F.unpack_codes(result.codes, 4)
    for cluster, row in zip(result.labels, features[result.selected]):
        # GeM of one member is the member, clamped at GeM's epsilon (so 0 -> 1e-6 > 0).
        np.testing.assert_array_equal(bits[cluster], (np.maximum(row, 1e-6) @ flip) > 0)
    empty = descriptor.describe(np.zeros([0, 4]), lambda x: x, dim=4)
    assert empty.num_clusters == 0 and empty.codes.shape == (0, 8)
    assert F.elfm_similarity(empty.codes, result.codes, 4) == 0.0


def test_code_file_round_trip(tmp_path):
    codes = F.pack_codes(np.random.default_rng(0).random([10, 2048]) > 0.5)
    path = str(tmp_path / "a.elfm")
    descriptor.WriteCodesToFile(codes, 2048, path)
    read, dim = descriptor.ReadCodesFromFile(path)
    assert dim == 2048
    np.testing.assert_array_equal(read, codes)
    descriptor.WriteCodesToFile(codes[:0], 2048, path)
    read, dim = descriptor.ReadCodesFromFile(path)
    assert read.shape == (0, 256) and dim == 2048
    (tmp_path / "bad.elfm").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="bad.elfm"):
        descriptor.ReadCodesFromFile(str(tmp_path / "bad.elfm"))


_DESCRIBE_SCRIPT = """
import sys
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from tests.elfm.test_functional import _describe_fingerprint
sys.stdout.write(_describe_fingerprint())
"""


def _describe_fingerprint() -> str:
    rng = np.random.default_rng(7)
    features = np.maximum(rng.standard_normal([700, 256]), 0).astype(np.float32)
    whitening = rng.standard_normal([256, 256]).astype(np.float32)
    result = descriptor.describe(features, lambda x: x @ whitening)
    return result.codes.tobytes().hex() + " " + result.labels.tobytes().hex()


def test_describe_same_bits_whatever_the_thread_count():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    # This process: TensorFlow's default thread pools; the subprocess: one thread.
    single_threaded = subprocess.run([sys.executable, "-c", _DESCRIBE_SCRIPT], cwd=root,
                                     capture_output=True, text=True, env=env, check=True).stdout
    assert single_threaded == _describe_fingerprint()
