"""The SfM-120k / SfM-30k training database (retrieval-SfM-*.pkl), read without executing code.

A database is a pickle of {"train": split, "val": split}; each split holds
  cids     [N] image ids (str); image i lives at ims/<c[-2:]>/<c[-4:-2]>/<c[-6:-4]>/<c>
  cluster  [N] int cluster (3D model) of image i
  qidxs    [Q] query image indices
  pidxs    [Q] the positive image index of each query (same cluster)
and optionally "bbxs" [N] (None or [x1, y1, x2, y2]).

Pickles can run arbitrary code when loaded, so `SafeLoad` only admits plain containers
(dict, list, tuple, set, str, bytes, numbers, None) and NumPy arrays/scalars; anything else is
refused with an error that names the file and the offending class.
"""

import dataclasses
import io
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from delf_tf.io import atomic

__all__ = [
    # The original's names (the compatibility surface).
    "SafeLoad", "ReadSfmDatabase", "WriteSfmDatabase", "ReadGroundTruthPickle",
    "ReadGroundTruth", "SplitFromClusters",
    # delf_tf's own API.
    "UnsafePickleError", "cid2filename", "id2filename", "SfmSplit",
]

# (module, name) a pickle may reference: builtin containers and what NumPy needs to rebuild
# arrays and scalars (numpy.core before NumPy 2, numpy._core after; protocol 2 writes array
# buffers as _codecs.encode(text, "latin1")).
_ALLOWED_GLOBALS = {
        ("_codecs", "encode"),
        ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
        ("builtins", "complex"), ("collections", "OrderedDict"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(ValueError):
    """A pickle references something other than plain containers and NumPy arrays."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"{module}.{name}")
        return super().find_class(module, name)


def SafeLoad(path: str) -> Any:
    """Unpickles `path` admitting only plain containers and NumPy arrays.

    Raises:
      FileNotFoundError: no such file.
      UnsafePickleError: the pickle references any other class or function (named).
      ValueError: not a readable pickle.
    """
    data = atomic.read_bytes(path)
    try:
        # latin1: Python 2 pickles (the published SfM databases) hold NumPy buffers as str.
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as error:
        raise UnsafePickleError(
                f"{path}: refusing to unpickle {error} (only plain containers and NumPy "
                "arrays are read; convert the file to plain lists/dicts/arrays)") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable pickle ({error})") from error


def cid2filename(cid: str, prefix: str) -> str:
    """SfM image id -> <prefix>/<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid> (no extension)."""
    return os.path.join(prefix, cid[-2:], cid[-4:-2], cid[-6:-4], cid)


# The original's name (delf/python/datasets/sfm120k).
id2filename = cid2filename


@dataclasses.dataclass
class SfmSplit:
    """One split of an SfM database, validated; indices are 0-based into `cids`."""

    cids: list[str]
    cluster: np.ndarray          # int64 [N]
    qidxs: np.ndarray            # int64 [Q]
    pidxs: np.ndarray            # int64 [Q]
    bbxs: list | None = None     # [N] of None or [x1, y1, x2, y2]

    def image_paths(self, ims_root: str) -> list[str]:
        return [cid2filename(cid, ims_root) for cid in self.cids]


def _split_from(raw: Any, where: str) -> SfmSplit:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is a {type(raw).__name__}, expected a dict")
    missing = [k for k in ("cids", "cluster", "qidxs", "pidxs") if k not in raw]
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    cids = [c.decode() if isinstance(c, bytes) else str(c) for c in raw["cids"]]
    cluster = np.asarray(raw["cluster"], dtype=np.int64).ravel()
    qidxs = np.asarray(raw["qidxs"], dtype=np.int64).ravel()
    pidxs = np.asarray(raw["pidxs"], dtype=np.int64).ravel()
    if len(cluster) != len(cids):
        raise ValueError(f"{where}: {len(cluster)} cluster ids for {len(cids)} cids")
    if len(qidxs) != len(pidxs):
        raise ValueError(f"{where}: {len(qidxs)} qidxs but {len(pidxs)} pidxs")
    for key, values in (("qidxs", qidxs), ("pidxs", pidxs)):
        if values.size and (values.min() < 0 or values.max() >= len(cids)):
            raise ValueError(f"{where}: {key} out of range [0, {len(cids)})")
    bbxs = raw.get("bbxs")
    if bbxs is not None and len(bbxs) != len(cids):
        raise ValueError(f"{where}: {len(bbxs)} bbxs for {len(cids)} cids")
    return SfmSplit(cids, cluster, qidxs, pidxs, list(bbxs) if bbxs is not None else None)


def ReadSfmDatabase(path: str) -> dict[str, SfmSplit]:
    """retrieval-SfM-120k.pkl (or -30k) -> {"train": SfmSplit, "val": SfmSplit} (those present)."""
    raw = SafeLoad(path)
    if not isinstance(raw, dict) or not ({"train", "val"} & set(raw)):
        raise ValueError(f"{path}: not an SfM database (expected a dict with 'train'/'val')")
    return {name: _split_from(raw[name], f"{path}['{name}']")
            for name in ("train", "val") if name in raw}


def WriteSfmDatabase(path: str, splits: dict[str, SfmSplit]) -> None:
    """Writes `splits` as the original's pickle layout (plain lists), atomically."""
    raw = {}
    for name, split in splits.items():
        raw[name] = {"cids": list(split.cids), "cluster": [int(c) for c in split.cluster],
                     "qidxs": [int(i) for i in split.qidxs],
                     "pidxs": [int(i) for i in split.pidxs]}
        if split.bbxs is not None:
            raw[name]["bbxs"] = list(split.bbxs)
    atomic.write_bytes_atomic(path, pickle.dumps(raw, protocol=4))


def ReadGroundTruthPickle(path: str) -> tuple[list[str], list[str], list[dict]]:
    """A Revisited gnd_*.pkl -> (query names, index names, per-query ground truth).

    The pickle holds "qimlist", "imlist" and "gnd" (dicts with 0-based "easy", "hard",
    "junk" and "bbx" [x1, y1, x2, y2]); the result has the layout of
    `retrieval.dataset.ReadDatasetFile`.
    """
    raw = SafeLoad(path)
    if not isinstance(raw, dict) or not {"imlist", "qimlist", "gnd"} <= set(raw):
        raise ValueError(f"{path}: not a Revisited ground-truth pickle (needs imlist, qimlist, "
                         "gnd)")
    ground_truth = []
    for i, record in enumerate(raw["gnd"]):
        entry = {key: np.asarray(record.get(key, []), dtype=np.int64).ravel()
                 for key in ("easy", "hard", "junk")}
        bbx = record.get("bbx")
        entry["bbx"] = (np.asarray(bbx, dtype=np.float64).ravel() if bbx is not None
                        else np.zeros([0]))
        for key in ("easy", "hard", "junk"):
            if entry[key].size and (entry[key].min() < 0 or
                                    entry[key].max() >= len(raw["imlist"])):
                raise ValueError(f"{path}: gnd[{i}]['{key}'] out of range")
        ground_truth.append(entry)
    return [str(q) for q in raw["qimlist"]], [str(n) for n in raw["imlist"]], ground_truth


def ReadGroundTruth(path: str) -> tuple[list[str], list[str], list[dict]]:
    """gnd_*.mat or gnd_*.pkl -> (query names, index names, ground truth with 0-based ids)."""
    if path.endswith(".pkl"):
        return ReadGroundTruthPickle(path)
    from delf_tf.retrieval import dataset as revisited
    return revisited.ReadDatasetFile(path)


def SplitFromClusters(cids: Sequence[str], clusters: Sequence[int], pairs_per_cluster: int,
                      seed: int = 0) -> SfmSplit:
    """A split whose query/positive pairs are drawn within each cluster (cluster < 0 = no
    pairs, e.g. distractors): up to `pairs_per_cluster` distinct queries per cluster, each with
    a random other image of its cluster as the positive."""
    rng = np.random.default_rng(seed)
    clusters = np.asarray(clusters, dtype=np.int64)
    qidxs, pidxs = [], []
    for c in np.unique(clusters[clusters >= 0]):
        members = np.flatnonzero(clusters == c)
        if len(members) < 2:
            continue
        for q in rng.permutation(members)[:pairs_per_cluster]:
            others = members[members != q]
            qidxs.append(int(q))
            pidxs.append(int(rng.choice(others)))
    return SfmSplit(list(cids), clusters, np.asarray(qidxs, np.int64),
                    np.asarray(pidxs, np.int64))
