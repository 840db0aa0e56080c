"""The one binarisation and the one Hamming distance, and the modules that
re-export them."""

import numpy as np

from delf_tf import binary_codes
from delf_tf.aggregation import functional
from delf_tf.elfm import functional as elfm_functional
from delf_tf.extraction import postprocess


def test_binarize_and_hamming_by_hand():
    codes = binary_codes.binarize(np.array([[1.0, -1, 0, 2, -3, 4, 5, -6, 7],
                                            [-1.0, 1, 1, 1, 1, 1, 1, 1, -1]]))
    np.testing.assert_array_equal(codes, [[0b10010110, 0b10000000], [0b01111111, 0]])
    assert binary_codes.hamming_distance(codes[0], codes[1]).tolist() == 6
    # Broadcast: [2, 1, B] against [1, 2, B].
    np.testing.assert_array_equal(
        binary_codes.hamming_distance(codes[:, None], codes[None]), [[0, 6], [6, 0]])


def test_one_implementation_everywhere():
    assert postprocess.binarize is binary_codes.binarize
    assert functional.hamming_distance is binary_codes.hamming_distance
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 8), dtype=np.uint8)
    b = rng.integers(0, 256, (4, 8), dtype=np.uint8)
    expected = np.unpackbits(a[:, None] ^ b[None], axis=-1).sum(axis=-1)
    np.testing.assert_array_equal(elfm_functional.hamming_matrix(a, b), expected)
    np.testing.assert_array_equal(binary_codes.hamming_distance(a[:, None], b[None]), expected)
