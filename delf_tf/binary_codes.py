"""Sign-bit codes of float descriptors and their Hamming distances: the one
binarisation (DELG*, ASMK*) and the one Hamming distance of the package."""

import numpy as np

__all__ = ["binarize", "hamming_distance"]


def binarize(descriptors: np.ndarray) -> np.ndarray:
    """Float [N, D] -> uint8 [N, ceil(D/8)] with bit i set iff descriptors[:, i] > 0,
    in np.packbits (big-endian within a byte) order."""
    descriptors = np.asarray(descriptors)
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be [N, D], got shape {descriptors.shape}")
    return np.packbits(descriptors > 0, axis=1)


def hamming_distance(codes_1: np.ndarray, codes_2: np.ndarray) -> np.ndarray:
    """Number of differing bits (int64 [...]) between packed uint8 codes [..., B]
    that broadcast against each other."""
    codes_1, codes_2 = np.broadcast_arrays(codes_1, codes_2)
    num_bytes = codes_1.shape[-1]
    if num_bytes % 8 == 0 and num_bytes:
        # Eight times fewer elements to xor and count as 64-bit words.
        codes_1 = np.ascontiguousarray(codes_1).view(np.uint64)
        codes_2 = np.ascontiguousarray(codes_2).view(np.uint64)
    return np.bitwise_count(np.bitwise_xor(codes_1, codes_2)).sum(axis=-1, dtype=np.int64)
