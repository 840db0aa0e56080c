"""Search over ELFM binary codes: exhaustive (vectorised popcount) or on a shortlist.

S(q, c) = mean over the query's clusters i of max_j (1 - hamming(q_i, c_j) / D). The index
holds every image's codes in one uint64 array [N, K, W] (W = ceil(D / 64) words, images with
fewer than K clusters zero-padded, their cluster count kept apart), and scores a batch of
queries against a chunk of images at a time. Backends for the distances: "numba" (a compiled
popcount kernel, parallel over images; the fastest, used when numba is installed), "faiss"
(faiss' `hammings`), "numpy" (xor + bitwise_count); all give identical integers.

Index file (little-endian): magic b"ELFMIDX1"; uint32 K, D, W; uint64 N; uint8 counts [N];
uint8 codes [N, K, 8 W] (bit d of a code = bit d % 8 of byte d // 8); uint64 L; L bytes of
UTF-8 JSON, the list of image names. Bytes per image: K * 8 W + 1 + its name.
"""

import json
import os
import struct
from collections.abc import Sequence

import numpy as np

from delf_tf.elfm import functional as F
from delf_tf.io import atomic

__all__ = [
    "MAGIC", "DEFAULT_MAX_BATCH_ELEMENTS", "QUERY_BATCH", "BACKENDS", "resolve_backend",
    "hammings", "nearest_distances", "as_words", "pad_codes", "score_block", "ElfmIndex",
]

MAGIC = b"ELFMIDX1"
_HEADER = struct.Struct("<8sIIIQ")
# Hamming-distance entries computed at once (int32): 2^24 -> 64 MiB.
DEFAULT_MAX_BATCH_ELEMENTS = 1 << 24
QUERY_BATCH = 16

try:
    import faiss as _faiss
except ImportError:  # pragma: no cover - depends on the environment
    _faiss = None
try:
    import numba as _numba
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None
BACKENDS = ("auto", "numba", "faiss", "numpy")


def resolve_backend(backend: str) -> str:
    """"auto" -> the fastest installed backend; other names are checked."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "numba" if _numba is not None else "faiss" if _faiss is not None else "numpy"
    if backend == "numba" and _numba is None:
        raise ImportError("backend='numba' needs the numba package (pip install numba)")
    if backend == "faiss" and _faiss is None:
        raise ImportError("backend='faiss' needs the faiss-cpu package")
    return backend


def _hammings_numpy(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """int32 [a, b] Hamming distances between uint64 codes [a, W] and [b, W]."""
    out = np.empty([len(query), len(database)], np.int32)
    for row, code in enumerate(query):
        out[row] = np.bitwise_count(np.bitwise_xor(database, code)).sum(axis=1, dtype=np.int32)
    return out


def _hammings_faiss(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    query = np.ascontiguousarray(query).view(np.uint8)
    database = np.ascontiguousarray(database).view(np.uint8)
    out = np.empty([len(query), len(database)], np.int32)
    _faiss.hammings(_faiss.swig_ptr(query), _faiss.swig_ptr(database), len(query),
                    len(database), query.shape[1], _faiss.swig_ptr(out))
    return out


def hammings(query: np.ndarray, database: np.ndarray, backend: str = "auto") -> np.ndarray:
    """int32 [a, b] Hamming distances between uint64 codes [a, W] and [b, W].

    backend: "faiss", "numpy" or "auto" (faiss when installed).
    """
    if backend == "auto":
        backend = "faiss" if _faiss is not None else "numpy"
    if resolve_backend(backend) == "faiss":
        return _hammings_faiss(query, database)
    if backend != "numpy":
        raise ValueError(f"hammings: backend must be 'auto', 'faiss' or 'numpy', got {backend!r}")
    return _hammings_numpy(query, database)


def nearest_distances(query_words: np.ndarray, words: np.ndarray, counts: np.ndarray,
                      backend: str = "auto") -> np.ndarray:
    """int32 [P, C]: for each query code (uint64 [P, W]) the Hamming distance to the nearest
    code of each image (uint64 [C, K, W], counts [C]); 2^30 for an image without codes.
    backend: "faiss", "numpy" or "auto"."""
    num_images, clusters = words.shape[:2]
    distances = hammings(query_words, words.reshape(-1, words.shape[-1]), backend)
    distances = distances.reshape(len(query_words), num_images, clusters)
    # Padding clusters of an image never win the min.
    padded = np.arange(clusters)[None, :] >= counts[:, None]
    if padded.any():
        distances[:, padded] = 1 << 30
    return distances.min(axis=2)


def as_words(codes: np.ndarray) -> np.ndarray:
    """Packed uint8 codes [..., 8 W] -> uint64 [..., W] (a view when contiguous)."""
    codes = np.ascontiguousarray(codes, np.uint8)
    if codes.shape[-1] % 8:
        raise ValueError(f"code width {codes.shape[-1]} bytes is not whole 64-bit words")
    return codes.view("<u8")


def pad_codes(codes_list: Sequence[np.ndarray], num_clusters: int,
              num_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image packed codes (uint8 [k_i, num_bytes], k_i <= num_clusters) ->
    (uint8 [n, num_clusters, num_bytes] zero-padded, counts uint8 [n])."""
    codes = np.zeros([len(codes_list), num_clusters, num_bytes], np.uint8)
    counts = np.zeros([len(codes_list)], np.uint8)
    for i, image_codes in enumerate(codes_list):
        image_codes = np.asarray(image_codes, np.uint8)
        if image_codes.ndim != 2 or image_codes.shape[1] != num_bytes:
            raise ValueError(f"image {i}: codes of shape {image_codes.shape}, expected "
                             f"[k, {num_bytes}]")
        if len(image_codes) > num_clusters:
            raise ValueError(f"image {i}: {len(image_codes)} clusters > {num_clusters}")
        codes[i, :len(image_codes)] = image_codes
        counts[i] = len(image_codes)
    return codes, counts


def score_block(query_words: np.ndarray, query_counts: np.ndarray, words: np.ndarray,
                counts: np.ndarray, dim: int, backend: str = "auto") -> np.ndarray:
    """ELFM similarities float64 [Q, C] of queries uint64 [Q, Kq, W] (counts [Q]) against
    images uint64 [C, K, W] (counts [C]); 0 where either side has no cluster."""
    num_queries, query_clusters, width = query_words.shape
    if resolve_backend(backend) == "numba":
        from delf_tf.elfm import _kernels

        out = np.empty([len(words), num_queries], np.float64)
        _kernels.elfm_scores(np.ascontiguousarray(query_words.reshape(-1, width).T),
                             query_counts.astype(np.int64), np.ascontiguousarray(words),
                             counts.astype(np.int64), int(dim), out)
        return out.T
    nearest = nearest_distances(query_words.reshape(-1, width), words, counts, backend)
    nearest = nearest.reshape(num_queries, query_clusters, -1).astype(np.int64)
    valid = np.arange(query_clusters)[None, :] < query_counts[:, None]   # [Q, Kq]
    # Integer sums in a fixed order: the same scores as the numba kernel, bit for bit.
    total = np.einsum("qkc,qk->qc", nearest, valid.astype(np.int64))
    scores = 1.0 - total / (float(dim) * np.maximum(query_counts, 1)[:, None])
    scores[:, counts == 0] = 0.0
    scores[query_counts == 0] = 0.0
    return scores


def _rank(ids: np.ndarray, scores: np.ndarray, top_k: int | None):
    """Best-first order of one query's (ids, scores); ties by ascending id."""
    if top_k is not None and top_k < len(scores):
        keep = np.argpartition(-scores, top_k - 1)[:top_k]
        # Ties at the cut: argpartition may pick any; redo exactly on the boundary score.
        boundary = scores[keep].min()
        above = np.flatnonzero(scores > boundary)
        tied = np.flatnonzero(scores == boundary)
        keep = np.concatenate([above, tied[np.argsort(ids[tied], kind="stable")]
                               [:top_k - len(above)]])
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]


class ElfmIndex:
    """ELFM codes of a database of images, searchable and persisted in one file.

    codes: uint8 [N, K, 8 W] packed codes (zero rows past each image's count), counts: uint8
    [N] clusters per image, dim: D bits per code, names: N image names.
    """

    def __init__(self, codes: np.ndarray, counts: np.ndarray, dim: int,
                 names: Sequence[str] | None = None):
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.dtype != np.uint8 or codes.shape[2] != 8 * F.num_words(dim):
            raise ValueError(f"codes must be uint8 [N, K, {8 * F.num_words(dim)}] for "
                             f"{dim}-bit codes, got {codes.dtype} {codes.shape}")
        counts = np.asarray(counts, np.uint8)
        if counts.shape != codes.shape[:1] or (counts > codes.shape[1]).any():
            raise ValueError(f"counts {counts.shape} do not fit codes {codes.shape}")
        self.codes, self.counts, self.dim = codes, counts, int(dim)
        self.words = as_words(codes)
        self.names = list(names) if names is not None else [str(i) for i in range(len(codes))]
        if len(self.names) != len(codes):
            raise ValueError(f"{len(self.names)} names for {len(codes)} images")

    @classmethod
    def from_codes(cls, codes_list: Sequence[np.ndarray], dim: int,
                   names: Sequence[str] | None = None,
                   num_clusters: int | None = None) -> "ElfmIndex":
        """From per-image packed codes (uint8 [k_i, 8 W]); K = num_clusters or max k_i."""
        if num_clusters is None:
            num_clusters = max([len(c) for c in codes_list], default=0)
        codes, counts = pad_codes(codes_list, num_clusters, 8 * F.num_words(dim))
        return cls(codes, counts, dim, names)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def num_clusters(self) -> int:
        return int(self.codes.shape[1])

    def bytes_per_image(self) -> float:
        """Stored bytes per image: codes, the cluster count and the name (the file's share)."""
        names = sum(len(json.dumps(n)) + 1 for n in self.names)
        return self.codes.shape[1] * self.codes.shape[2] + 1 + names / max(len(self), 1)

    # -- search -------------------------------------------------------------------------

    def search(self, queries: Sequence[np.ndarray], top_k: int | None = None, *,
               shortlist: np.ndarray | None = None, backend: str = "auto",
               max_batch_elements: int = DEFAULT_MAX_BATCH_ELEMENTS):
        """Ranks the database for each query (packed uint8 codes [k_q, 8 W]).

        With `shortlist` (int [Q, S] database ids per query, e.g. from a global-descriptor
        search) only those images are scored. Returns per query a pair (ids int64 [k],
        scores float64 [k]) best first, ties by ascending id; k = top_k or all.
        """
        if not len(queries):
            return []
        query_codes, query_counts = pad_codes(
                queries, max(1, *(len(q) for q in queries)), self.codes.shape[2])
        query_words = as_words(query_codes)
        if shortlist is not None:
            shortlist = np.asarray(shortlist, np.int64)
            if shortlist.ndim != 2 or len(shortlist) != len(queries):
                raise ValueError(f"shortlist must be [Q={len(queries)}, S], got {shortlist.shape}")
            results = []
            for q, ids in enumerate(shortlist):
                scores = self._score_all(query_words[q:q + 1], query_counts[q:q + 1],
                                         ids, backend, max_batch_elements)[0]
                results.append(_rank(ids, scores, top_k))
            return results
        results = []
        # Queries share each database chunk while it is in cache.
        batch = QUERY_BATCH
        all_ids = np.arange(len(self), dtype=np.int64)
        for start in range(0, len(queries), batch):
            scores = self._score_all(query_words[start:start + batch],
                                     query_counts[start:start + batch], None, backend,
                                     max_batch_elements)
            results.extend(_rank(all_ids, row, top_k) for row in scores)
        return results

    def _score_all(self, query_words, query_counts, ids, backend, max_batch_elements):
        """float64 [Q, n] scores of the queries against images `ids` (None: all)."""
        total = len(self) if ids is None else len(ids)
        # Entries held at once per image: the nearest distances (numba) or all distances.
        per_image = query_words.shape[0] * query_words.shape[1] * (
                1 if resolve_backend(backend) == "numba" else self.num_clusters)
        chunk = max(1, max_batch_elements // max(per_image, 1))
        scores = np.zeros([len(query_words), total], np.float64)
        for start in range(0, total, chunk):
            rows = slice(start, min(total, start + chunk))
            if ids is None:
                words, counts = self.words[rows], self.counts[rows]
            else:
                words, counts = self.words[ids[rows]], self.counts[ids[rows]]
            scores[:, rows] = score_block(query_words, query_counts, words, counts,
                                          self.dim, backend)
        return scores

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Writes the index file atomically (see the module docstring for the layout)."""
        names = json.dumps(self.names).encode("utf-8")
        with atomic.open_atomic(path) as f:
            f.write(_HEADER.pack(MAGIC, self.num_clusters, self.dim, F.num_words(self.dim),
                                 len(self)))
            f.write(self.counts.tobytes())
            f.write(np.ascontiguousarray(self.codes).data)
            f.write(struct.pack("<Q", len(names)))
            f.write(names)

    @classmethod
    def load(cls, path: str, mmap: bool = False) -> "ElfmIndex":
        """Reads an index file; with mmap the codes stay on disk, paged in on demand."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ELFM index at {path}")
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size or header[:8] != MAGIC:
                raise ValueError(f"{path}: not an ELFM index file (bad magic)")
            _, clusters, dim, words, count = _HEADER.unpack(header)
            if words != F.num_words(dim):
                raise ValueError(f"{path}: {words} words per code cannot hold {dim} bits")
            codes_offset = _HEADER.size + count
            names_offset = codes_offset + count * clusters * 8 * words
            if size < names_offset + 8:
                raise ValueError(f"{path}: truncated ({size} bytes, expected at least "
                                 f"{names_offset + 8})")
            counts = np.frombuffer(f.read(count), np.uint8)
            if mmap:
                codes = np.memmap(path, np.uint8, "r", codes_offset,
                                  (count, clusters, 8 * words))
                f.seek(names_offset)
            else:
                codes = np.fromfile(f, np.uint8, count * clusters * 8 * words).reshape(
                        count, clusters, 8 * words)
            (length,) = struct.unpack("<Q", f.read(8))
            raw = f.read(length)
            if len(raw) != length:
                raise ValueError(f"{path}: truncated name list")
        return cls(codes, counts, dim, json.loads(raw.decode("utf-8")))
