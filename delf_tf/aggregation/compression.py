"""Compact integer coding for inverted files: delta coding + variable-byte codes.

A posting list holds ascending image ids; storing the gaps between
consecutive ids instead of the ids makes most values small, and a
variable-byte (LEB128) code stores a value below 128 in one byte, below
16384 in two, and so on. Everything is vectorised NumPy.
"""

import numpy as np

__all__ = ["varint_encode", "varint_decode", "delta_encode_lists", "delta_decode_lists"]

_MAX_BYTES = 10  # a uint64 needs at most ten 7-bit groups


def varint_encode(values: np.ndarray) -> np.ndarray:
    """LEB128 codes of non-negative integers [N], concatenated: uint8 [M].

    Each value is written as 7-bit groups, least significant first, with the
    high bit set on every byte but the value's last.
    """
    values = np.asarray(values)
    if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0):
        raise ValueError("varint_encode takes non-negative integers")
    values = values.astype(np.uint64).reshape(-1)
    num_bytes = np.ones(values.shape, dtype=np.int64)
    for k in range(1, _MAX_BYTES):
        num_bytes += values >= (np.uint64(1) << np.uint64(7 * k))
    ends = np.cumsum(num_bytes)
    starts = ends - num_bytes
    out = np.empty([int(ends[-1]) if len(ends) else 0], dtype=np.uint8)
    for k in range(int(num_bytes.max(initial=0))):
        has_byte = num_bytes > k
        group = (values[has_byte] >> np.uint64(7 * k)) & np.uint64(0x7F)
        continuation = (num_bytes[has_byte] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has_byte] + k] = (group | continuation).astype(np.uint8)
    return out


def varint_decode(codes: np.ndarray) -> np.ndarray:
    """Inverse of `varint_encode`: uint8 [M] -> uint64 [N].

    Raises:
      ValueError: the last value is cut off (its last byte has the high bit set).
    """
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1)
    if not codes.size:
        return np.zeros([0], dtype=np.uint64)
    is_last = (codes & 0x80) == 0
    if not is_last[-1]:
        raise ValueError("Truncated variable-byte code: the last value has no final byte")
    value_index = np.cumsum(np.r_[0, is_last[:-1]])
    value_starts = np.flatnonzero(np.r_[True, is_last[:-1]])
    position = np.arange(codes.size) - value_starts[value_index]
    if position.max() >= _MAX_BYTES:
        raise ValueError("Corrupt variable-byte code: a value longer than 10 bytes")
    parts = (codes & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, value_starts)


def delta_encode_lists(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Gaps within consecutive lists values[offsets[i]:offsets[i + 1]], each list
    non-decreasing; a list's first value is kept as it is. int64 [N]."""
    values = np.asarray(values, dtype=np.int64)
    gaps = np.diff(values, prepend=0)
    firsts = np.asarray(offsets[:-1])[np.diff(offsets) > 0]
    gaps[firsts] = values[firsts]
    if gaps.size and gaps.min() < 0:
        raise ValueError("delta coding needs every list in non-decreasing order")
    return gaps


def delta_decode_lists(gaps: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of `delta_encode_lists`: int64 [N]."""
    gaps = np.asarray(gaps, dtype=np.int64)
    running = np.cumsum(gaps)
    # Subtract, from every entry, the running sum just before its list began.
    lengths = np.diff(offsets)
    before = np.r_[0, running][np.asarray(offsets[:-1])]
    return running - np.repeat(before, lengths)
