"""Persistent global-descriptor index: build once, save, load, query many times.

An index holds image names and their global descriptors (float32 [N, D],
similarity = dot product, i.e. cosine for the L2-normalised DELG descriptors)
and is searched either exactly (`search.global_search`, batched matrix
products) or approximately through faiss:

  exact    no extra structure; exact top-k.
  ivf      inverted file (IVF-Flat): k-means into `nlist` cells, a query scans
           the `nprobe` nearest cells; vectors stored in full.
  ivf_sq8  IVF with 8-bit scalar-quantised vectors (4x smaller than ivf).
  hnsw     HNSW graph (HNSW-Flat, `hnsw_m` links per node, `ef_search` beam).

On disk an index is a directory: `index.json` (format, kind, parameters,
counts and the names of the data files), `names.<tag>.txt`,
`descriptors.<tag>.npy` (memory-mapped on load) and, for the approximate kinds,
`faiss.<tag>.index`. Every file is written atomically and `index.json` last,
with a fresh tag, so a crash while saving leaves the previous index readable.
faiss is the optional extra `faiss` (pip install 'delf_tf[faiss]').
"""

import dataclasses
import json
import logging
import os
import secrets
import time
from collections.abc import Sequence

import numpy as np

from delf_tf.io import atomic
from delf_tf.optional import import_optional
from delf_tf.retrieval import search

__all__ = [
    # The original's names (the compatibility surface).
    "RecallAtK", "BuildFromFiles", "QueryFromFiles",
    # delf_tf's own API.
    "KINDS", "MANIFEST", "GlobalIndexParams", "GlobalIndex",
]

logger = logging.getLogger(__name__)

KINDS = ("exact", "ivf", "ivf_sq8", "hnsw")
MANIFEST = "index.json"
_FORMAT = "delf_tf.global_index"
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class GlobalIndexParams:
    """How an index is built and searched (the flags of tools/build_global_index.py; nprobe
    and ef_search are stored in the index and can be changed when querying). An IVF index gets
    at most N / 39 cells, so that each cell has the 39 training points faiss asks for.

    Attributes:
      kind: exact: exhaustive matrix products; ivf: faiss IVF-Flat; ivf_sq8: IVF with 8-bit
        vectors (4x smaller); hnsw: faiss HNSW-Flat graph.
      nlist: Number of IVF cells (0: 4 sqrt(N), at most N / 39).
      nprobe: IVF cells scanned per query (more: higher recall, slower).
      hnsw_m: HNSW links per node.
      ef_construction: HNSW beam width when building.
      ef_search: HNSW search beam width (more: higher recall, slower).
      train_size: Size of the IVF k-means training sample (0: min(N, 256 nlist)).
      seed: Seed of the training sample and k-means.
    """
    kind: str = "exact"
    nlist: int = 0
    nprobe: int = 16
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    train_size: int = 0
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("nprobe", "hnsw_m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.nlist < 0 or self.train_size < 0:
            raise ValueError("nlist and train_size must be >= 0")


def _faiss():
    return import_optional("faiss", "faiss")


def _num_lists(params: GlobalIndexParams, num_images: int) -> int:
    nlist = params.nlist or int(round(4 * np.sqrt(num_images)))
    return max(1, min(nlist, num_images // 39 or 1))


def _build_ann(descriptors: np.ndarray, params: GlobalIndexParams):
    faiss = _faiss()
    num, dim = descriptors.shape
    if params.kind == "hnsw":
        ann = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = params.ef_construction
        ann.add(descriptors)
        return ann
    nlist = _num_lists(params, num)
    quantizer = faiss.IndexFlatIP(dim)
    if params.kind == "ivf":
        ann = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        ann = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    ann.cp.seed = params.seed
    train_size = min(num, params.train_size or 256 * nlist)
    sample = np.random.default_rng(params.seed).choice(num, train_size, replace=False)
    ann.train(np.ascontiguousarray(descriptors[np.sort(sample)]))
    ann.add(descriptors)
    return ann


class GlobalIndex:
    """Image names + global descriptors, searchable exactly or through faiss."""

    def __init__(self, names: Sequence[str], descriptors: np.ndarray,
                 params: GlobalIndexParams, ann=None):
        if not isinstance(descriptors, np.ndarray):  # keeps a memory map as it is
            descriptors = np.asarray(descriptors)
        if descriptors.ndim != 2 or len(descriptors) != len(names):
            raise ValueError(f"descriptors must be [N, D] for {len(names)} names, "
                             f"got shape {descriptors.shape}")
        if params.kind != "exact" and ann is None:
            raise ValueError(f"a {params.kind} index needs its faiss structure")
        self.names = list(names)
        self.descriptors = descriptors
        self.params = params
        self.ann = ann

    @property
    def num_images(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return self.descriptors.shape[1]

    @classmethod
    def Build(cls, names: Sequence[str], descriptors: np.ndarray,
              params: GlobalIndexParams = GlobalIndexParams()) -> "GlobalIndex":
        """Indexes descriptors float [N, D] of images `names` (N distinct names)."""
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        if descriptors.ndim != 2 or not len(descriptors):
            raise ValueError(f"need a non-empty [N, D] array, got shape {descriptors.shape}")
        if len(set(names)) != len(names):
            raise ValueError("image names must be distinct")
        if not np.isfinite(descriptors).all():
            bad = int(np.flatnonzero(~np.isfinite(descriptors).all(axis=1))[0])
            raise ValueError(f"descriptor of {names[bad]} has non-finite values")
        ann = None if params.kind == "exact" else _build_ann(descriptors, params)
        return cls(names, descriptors, params, ann)

    def Search(self, queries: np.ndarray, top_k: int = 100, exact: bool = False,
               nprobe: int | None = None, ef_search: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Best `top_k` images for each query descriptor (float [Q, D]).

        Returns (ids int64 [Q, K], scores float32 [Q, K]), best first, K =
        min(top_k, N). Exact search (kind exact, or exact=True) orders ties by
        id; approximate search may miss true neighbours (id -1, score -inf
        where it finds fewer than K). nprobe / ef_search override the built
        values for this call.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [Q, {self.dim}], got shape {queries.shape}")
        k = max(0, min(int(top_k), self.num_images))
        if exact or self.ann is None:
            return search.global_search(queries, self.descriptors, top_k=k)
        if self.params.kind == "hnsw":
            self.ann.hnsw.efSearch = max(k, ef_search or self.params.ef_search)
        else:
            self.ann.nprobe = nprobe or self.params.nprobe
        scores, ids = self.ann.search(queries, k) if k else (
            np.zeros([len(queries), 0], np.float32), np.zeros([len(queries), 0], np.int64))
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return ids.astype(np.int64), scores

    def Save(self, directory: str) -> dict:
        """Writes the index to `directory` (created if needed); returns the manifest."""
        os.makedirs(directory, exist_ok=True)
        old = _read_manifest(directory) if os.path.exists(os.path.join(directory, MANIFEST)) \
            else None
        tag = secrets.token_hex(4)
        files = {"names": f"names.{tag}.txt", "descriptors": f"descriptors.{tag}.npy"}
        atomic.write_bytes_atomic(os.path.join(directory, files["names"]),
                                  "".join(name + "\n" for name in self.names).encode())
        with atomic.open_atomic(os.path.join(directory, files["descriptors"])) as f:
            np.save(f, self.descriptors)
        if self.ann is not None:
            files["faiss"] = f"faiss.{tag}.index"
            atomic.write_bytes_atomic(os.path.join(directory, files["faiss"]),
                                      _faiss().serialize_index(self.ann).tobytes())
        manifest = {"format": _FORMAT, "version": _VERSION, "num_images": self.num_images,
                    "dim": self.dim, "params": dataclasses.asdict(self.params), "files": files}
        atomic.write_bytes_atomic(os.path.join(directory, MANIFEST),
                                  json.dumps(manifest, indent=1).encode())
        if old is not None:  # the previous index's files, now unreferenced
            for name in old["files"].values():
                if name not in files.values():
                    try:
                        os.remove(os.path.join(directory, name))
                    except FileNotFoundError:
                        pass
        return manifest

    @classmethod
    def Load(cls, directory: str, mmap: bool = True) -> "GlobalIndex":
        """Reads an index written by Save (descriptors memory-mapped with `mmap`)."""
        manifest = _read_manifest(directory)
        files = manifest["files"]
        params = GlobalIndexParams(**manifest["params"])
        with open(os.path.join(directory, files["names"])) as f:
            names = f.read().splitlines()
        descriptors = np.load(os.path.join(directory, files["descriptors"]),
                              mmap_mode="r" if mmap else None)
        if len(names) != manifest["num_images"] or descriptors.shape != (
                manifest["num_images"], manifest["dim"]):
            raise ValueError(f"{directory}: {len(names)} names and descriptors of shape "
                             f"{descriptors.shape}, but {MANIFEST} says "
                             f"{manifest['num_images']} x {manifest['dim']}")
        ann = None
        if params.kind != "exact":
            data = np.fromfile(os.path.join(directory, files["faiss"]), dtype=np.uint8)
            ann = _faiss().deserialize_index(data)
            if ann.ntotal != len(names):
                raise ValueError(f"{directory}: faiss index holds {ann.ntotal} vectors for "
                                 f"{len(names)} names")
        return cls(names, descriptors, params, ann)

    def BytesPerImage(self, directory: str) -> float:
        """Bytes on disk per image of the saved index in `directory`."""
        manifest = _read_manifest(directory)
        total = sum(os.path.getsize(os.path.join(directory, name))
                    for name in [MANIFEST, *manifest["files"].values()])
        return total / max(1, manifest["num_images"])


def _read_manifest(directory: str) -> dict:
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory} is not a global index (no {MANIFEST})")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
        raise ValueError(f"{path} is not a version-{_VERSION} {_FORMAT} manifest")
    return manifest


def RecallAtK(approximate_ids: np.ndarray, exact_ids: np.ndarray, k: int) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / k (ids int [Q, >=k])."""
    k = min(k, exact_ids.shape[1])
    if not len(exact_ids) or k == 0:
        return 1.0
    hits = [len(np.intersect1d(a[:k], e[:k])) for a, e in zip(approximate_ids, exact_ids)]
    return float(np.mean(hits) / k)


def BuildFromFiles(names: Sequence[str], features_dir: str, feature_extension: str,
                   params: GlobalIndexParams) -> tuple["GlobalIndex", dict]:
    """Reads `<features_dir>/<name><feature_extension>` (DatumProto global
    descriptors) and builds an index. Returns (index, stats)."""
    from delf_tf.retrieval import evaluation  # deferred: evaluation imports matching

    paths = [os.path.join(features_dir, name + feature_extension) for name in names]
    start = time.perf_counter()
    descriptors = evaluation.read_global_descriptors(paths)
    read_seconds = time.perf_counter() - start
    start = time.perf_counter()
    index = GlobalIndex.Build(names, descriptors, params)
    stats = {"num_images": index.num_images, "dim": index.dim, "kind": params.kind,
             "read_seconds": read_seconds, "build_seconds": time.perf_counter() - start}
    return index, stats


def QueryFromFiles(index_dir: str, names: Sequence[str], query_paths: Sequence[str],
                   top_k: int = 100, exact: bool = False, nprobe: int | None = None,
                   ef_search: int | None = None, report_recall: bool = False,
                   output_path: str = "") -> dict:
    """Searches the index saved in `index_dir` for the query descriptors in `query_paths`
    (DatumProto, named `names`) and returns a report: num_queries, num_images, kind,
    ms_per_query; with `report_recall` also recall@top_k of an approximate index against an
    exhaustive search; with `output_path` the results {name: [[index name, score], ...]}
    are written there as JSON (atomically)."""
    from delf_tf.io import atomic
    from delf_tf.retrieval import evaluation  # deferred: evaluation imports matching

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    queries = evaluation.read_global_descriptors(query_paths)
    index = GlobalIndex.Load(index_dir)
    start = time.perf_counter()
    ids, scores = index.Search(queries, top_k, exact=exact, nprobe=nprobe, ef_search=ef_search)
    seconds = time.perf_counter() - start
    report = {"num_queries": len(names), "num_images": index.num_images,
              "kind": "exact" if exact else index.params.kind,
              "ms_per_query": 1e3 * seconds / max(1, len(names))}
    if report_recall:
        exact_ids, _ = index.Search(queries, top_k, exact=True)
        report[f"recall@{top_k}"] = RecallAtK(ids, exact_ids, top_k)
    if output_path:
        results = {name: [[index.names[i], float(s)] for i, s in zip(row_ids, row_scores)
                          if i >= 0]
                   for name, row_ids, row_scores in zip(names, ids, scores)}
        atomic.write_bytes_atomic(output_path, json.dumps(results, indent=1).encode())
        report["output_path"] = output_path
    return report
