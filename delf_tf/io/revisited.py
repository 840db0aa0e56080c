"""The Revisited Oxford / Paris ground-truth file (`gnd_roxford5k.mat`, `gnd_rparis6k.mat`):
read and written here, so extraction, aggregation and data generation need not import the
retrieval package to read one.

A MATLAB `.mat` file with cell arrays `imlist` (index image names) and `qimlist` (query
image names), names without extension, and a struct array `gnd` with one record per query:
`bbx` [x1, y1, x2, y2] (query crop, in pixels) and 1-based index-image ids in `easy`, `hard`
and `junk`. In memory, ids are 0-based positions in `imlist`.
"""

import io
import os
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import io as scipy_io

from delf_tf import checks
from delf_tf.io import atomic

__all__ = ["GroundTruth", "ReadDatasetFile", "WriteDatasetFile", "CheckGroundTruth"]

_GROUND_TRUTH_KEYS = ("easy", "hard", "junk")

GroundTruth = list[dict[str, np.ndarray]]


def ReadDatasetFile(dataset_file_path: str) -> tuple[list[str], list[str], GroundTruth]:
    """Reads a Revisited Oxford/Paris ground-truth `.mat` file.

    Returns:
      query_list: query image names [Q] (no extension).
      index_list: index image names [N] (no extension).
      ground_truth: Q dicts with 'bbx' float64 [4] as [x1, y1, x2, y2] and
        'easy', 'hard', 'junk' int64 [K] 0-based index ids.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the file is not a ground-truth `.mat` file (names the file).
    """
    dataset_file_path = os.fspath(dataset_file_path)
    if not os.path.isfile(dataset_file_path):
        raise FileNotFoundError(f"No such dataset file: {dataset_file_path}")
    try:
        contents = scipy_io.loadmat(dataset_file_path)
    except Exception as e:  # scipy raises several unrelated types on bad files.
        raise ValueError(f"{dataset_file_path} is not a readable .mat file: {e}") from e
    for key in ("imlist", "qimlist", "gnd"):
        if key not in contents:
            raise ValueError(f"{dataset_file_path} has no '{key}' entry")

    # Names become file names under image and feature directories: a name that is
    # absolute or climbs out with '..' would read or write elsewhere.
    query_list = checks.relative_names(_cell_to_names(contents["qimlist"]),
                                       f"{dataset_file_path}: query image name")
    index_list = checks.relative_names(_cell_to_names(contents["imlist"]),
                                       f"{dataset_file_path}: index image name")
    records = np.asarray(contents["gnd"]).ravel()
    if len(records) != len(query_list):
        raise ValueError(
            f"{dataset_file_path}: {len(records)} gnd records for {len(query_list)} queries")
    ground_truth = []
    for record in records:
        query_ground_truth = {
            key: np.asarray(record[key], dtype=np.float64).ravel().astype(np.int64) - 1
            for key in _GROUND_TRUTH_KEYS
        }
        query_ground_truth["bbx"] = np.asarray(record["bbx"], dtype=np.float64).ravel()
        ground_truth.append(query_ground_truth)
    CheckGroundTruth(ground_truth, len(index_list), dataset_file_path, query_list)
    return query_list, index_list, ground_truth


def CheckGroundTruth(ground_truth: GroundTruth, num_index_images: int, source: str = "gnd",
                     query_names: Sequence[str] | None = None) -> None:
    """Raises ValueError (naming `source`, the query and the 1-based id) when an
    'easy'/'hard'/'junk' id is outside the index, or one index image has two of
    these labels for one query: a positive that is also junk would be counted
    both ways and give precisions above 100%."""
    for q, query_ground_truth in enumerate(ground_truth):
        query = f"query {q + 1}" + (f" ({query_names[q]})" if query_names else "")
        seen: dict[int, str] = {}
        for key in _GROUND_TRUTH_KEYS:
            for index_id in np.asarray(query_ground_truth.get(key, []), dtype=np.int64):
                if not 0 <= index_id < num_index_images:
                    raise ValueError(
                        f"{source}: {query} '{key}' id {index_id + 1} is outside the "
                        f"{num_index_images} index images (ids are 1-based)")
                other = seen.setdefault(int(index_id), key)
                if other != key:
                    raise ValueError(
                        f"{source}: {query}: index image {index_id + 1} is both '{other}' "
                        f"and '{key}'; each index image can have one label per query")


def _cell_to_names(cell: np.ndarray) -> list[str]:
    """A MATLAB cell array of strings (as loaded by scipy) -> list of str."""
    names = []
    for entry in np.asarray(cell, dtype=object).ravel():
        entry = np.asarray(entry).ravel()
        names.append(str(entry[0]) if entry.size else "")
    return names


def WriteDatasetFile(
    dataset_file_path: str,
    imlist: Sequence[str],
    qimlist: Sequence[str],
    gnd: Sequence[Mapping[str, Sequence[float]]],
) -> None:
    """Writes a ground-truth `.mat` file in the layout of `gnd_roxford5k.mat`.

    Args:
      dataset_file_path: output path (written atomically).
      imlist: index image names [N], without extension.
      qimlist: query image names [Q], without extension.
      gnd: Q mappings with 'bbx' [x1, y1, x2, y2] and 'easy', 'hard', 'junk':
        1-BASED index ids, as stored in the original files (ReadDatasetFile
        returns them 0-based).
    """
    if len(gnd) != len(qimlist):
        raise ValueError(f"gnd has {len(gnd)} records but qimlist has {len(qimlist)} names")
    records = np.zeros(
        [1, len(gnd)], dtype=[(key, object) for key in ("bbx",) + _GROUND_TRUTH_KEYS])
    for i, query_gnd in enumerate(gnd):
        bbx = np.asarray(query_gnd["bbx"], dtype=np.float64).reshape(1, -1)
        if bbx.shape != (1, 4):
            raise ValueError(f"gnd[{i}]['bbx'] must have 4 values, got {bbx.size}")
        records[0, i]["bbx"] = bbx
        for key in _GROUND_TRUTH_KEYS:
            ids = np.asarray(query_gnd.get(key, []), dtype=np.float64).reshape(1, -1)
            if ids.size and (ids.min() < 1 or ids.max() > len(imlist)):
                raise ValueError(
                    f"gnd[{i}]['{key}'] ids must be 1-based in [1, {len(imlist)}]")
            records[0, i][key] = ids
    # The original files hold imlist as an N x 1 cell and qimlist as 1 x Q.
    contents = {
        "imlist": _names_to_cell(imlist).reshape(-1, 1),
        "qimlist": _names_to_cell(qimlist).reshape(1, -1),
        "gnd": records,
    }
    buffer = io.BytesIO()
    scipy_io.savemat(buffer, contents)
    atomic.write_bytes_atomic(dataset_file_path, buffer.getvalue())


def _names_to_cell(names: Sequence[str]) -> np.ndarray:
    cell = np.empty([len(names)], dtype=object)
    for i, name in enumerate(names):
        cell[i] = str(name)
    return cell
