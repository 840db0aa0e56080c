"""Search one's own photos: folders (or lists) of query and database images -> ranked results.

The library behind `delf-search`. Images are named by their file name without extension
(GLDv2 ids for a GLDv2 folder tree), which must be unique within each side. Methods:

  delg_global  rank the database by global-descriptor similarity (dot product of the
               L2-normalised DELG global descriptors).
  delg         delg_global, then re-rank the top `num_to_rerank` by geometric verification
               of the local features (RANSAC inliers; ties keep the global order).
  delg_star    as delg with binarized local descriptors (DELG*: Hamming matching).
  delf         local features only: every database image is verified, ranked by inliers
               (fine for hundreds of images, not for large databases).
  asmk         local features only, aggregated with ASMK* over a visual-word codebook (HOW's
               retrieval; also DELF/DELG local features): ranked by ASMK* similarity.
  elfm         ELFM: per image, binary codes of 10 clusters of the strongest local vectors of a
               DELG/ELFM model; ranked by the ELFM similarity (mean best Hamming similarity).

Features are cached in `<features_dir>/{query,index}/<name>.delg_global|.delg_local`; an
image whose feature files exist is not extracted again (delete the folder after changing
the model or config).
"""

import dataclasses
import glob
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from delf_tf.io import atomic
from delf_tf.matching.params import VerificationParams

logger = logging.getLogger(__name__)

METHODS = ("delg_global", "delg", "delg_star", "delf", "asmk", "elfm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GLOBAL_EXTENSION = ".delg_global"
LOCAL_EXTENSION = ".delg_local"
ELFM_EXTENSION = ".elfm"
DEFAULT_NUM_TO_RERANK = 100
# Rank's verification unless given: the library's defaults with a fixed seed (reproducible).
SEARCH_VERIFICATION = VerificationParams(ransac_seed=0)


def ListImages(spec: str) -> list[str]:
    """Image paths named by `spec`.

    `spec` is a folder (every image file below it, recursively, sorted), a text file with
    one image path per line (relative paths are relative to the list's folder), or a glob
    pattern such as 'photos/*.jpg'. Raises FileNotFoundError naming `spec` when it names
    nothing or no image.
    """
    if os.path.isdir(spec):
        paths = []
        for root, dirs, files in os.walk(spec):
            dirs.sort()
            paths.extend(os.path.join(root, name) for name in sorted(files)
                         if name.lower().endswith(IMAGE_EXTENSIONS))
    elif os.path.isfile(spec) and not spec.lower().endswith(IMAGE_EXTENSIONS):
        base = os.path.dirname(spec)
        with open(spec, encoding="utf-8") as f:
            paths = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in paths]
    else:
        paths = sorted(p for p in glob.glob(spec)
                       if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(
            f"No images found for {spec!r} (a folder, a list file with one path per line, or a "
            f"glob pattern; image extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return paths


def ImageNames(paths: Sequence[str]) -> list[str]:
    """File names without extension; raises ValueError naming two paths with the same name."""
    names, seen = [], {}
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        if name in seen:
            raise ValueError(f"Two images have the name {name!r}: {seen[name]} and {path} "
                             "(results name images by file name without extension)")
        seen[name] = path
        names.append(name)
    return names


@dataclasses.dataclass(frozen=True)
class Match:
    """One result: database image `name` (file `path`) at `rank` (1 = best)."""

    rank: int
    name: str
    path: str
    score: float  # global similarity (delg*), or inliers (delf)
    inliers: int | None  # None when not verified


def ExtractFeatures(extract, paths: Sequence[str], names: Sequence[str], output_dir: str,
                    use_global: bool, use_local: bool) -> list[str]:
    """Writes features of each image not yet extracted; returns the paths that failed to load.

    Args:
      extract: a function image -> features dict (delf_tf.extraction.extractor.MakeExtractor).
      paths, names: images and their names; outputs are `<output_dir>/<name><extension>`.
    """
    from delf_tf import utils
    from delf_tf.io import datum_io, feature_io

    os.makedirs(output_dir, exist_ok=True)
    failed = []
    for count, (path, name) in enumerate(zip(paths, names), 1):
        global_path = os.path.join(output_dir, name + GLOBAL_EXTENSION)
        local_path = os.path.join(output_dir, name + LOCAL_EXTENSION)
        wanted = ([global_path] if use_global else []) + ([local_path] if use_local else [])
        if all(os.path.exists(p) for p in wanted):
            continue
        try:
            image = utils.RgbLoader(path)
        except (FileNotFoundError, ValueError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            continue
        features = extract(np.asarray(image))
        if use_local:
            feature_io.write_features(local_path, features["local_features"])
        if use_global:
            datum_io.WriteToFile(features["global_descriptor"], global_path)
        if count % 50 == 0 or count == len(paths):
            logger.info("extracted %d/%d images into %s", count, len(paths), output_dir)
    return failed


def ExtractElfmFeatures(extractor, paths: Sequence[str], names: Sequence[str],
                        output_dir: str) -> list[str]:
    """Writes `<output_dir>/<name>.elfm` of each image not yet extracted; returns the paths
    that failed to load.

    Args:
      extractor: a delf_tf.elfm.extraction.ElfmExtractor.
    """
    from delf_tf import utils
    from delf_tf.elfm import descriptor

    os.makedirs(output_dir, exist_ok=True)
    failed = []
    for path, name in zip(paths, names):
        output = os.path.join(output_dir, name + ELFM_EXTENSION)
        if os.path.exists(output):
            continue
        try:
            image = utils.RgbLoader(path)
        except (FileNotFoundError, ValueError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            continue
        described = extractor(np.asarray(image))[0]
        descriptor.WriteCodesToFile(described.codes, described.dim, output)
    return failed


def _elfm_search(query_names: Sequence[str], index_names: Sequence[str], query_dir: str,
                 index_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """ELFM rankings: (ids int64 [Q, N], scores [Q, N]), best first."""
    from delf_tf.elfm import descriptor
    from delf_tf.elfm.index import ElfmIndex

    def read(directory, names):
        codes = [descriptor.ReadCodesFromFile(os.path.join(directory, n + ELFM_EXTENSION))
                 for n in names]
        dims = {dim for _, dim in codes}
        if len(dims) > 1:
            raise ValueError(f"ELFM codes of different lengths {sorted(dims)} in {directory}")
        return [c for c, _ in codes], dims.pop() if dims else 0

    index_codes, dim = read(index_dir, index_names)
    query_codes, query_dim = read(query_dir, query_names)
    if query_codes and query_dim != dim:
        raise ValueError(f"{query_dim}-bit query codes but {dim}-bit database codes")
    ranked = ElfmIndex.from_codes(index_codes, dim, index_names).search(query_codes)
    ranks = np.array([ids for ids, _ in ranked], np.int64).reshape(-1, len(index_names))
    scores = np.array([sc for _, sc in ranked], np.float64).reshape(-1, len(index_names))
    return ranks, scores


def Rank(
    method: str,
    query_names: Sequence[str],
    index_names: Sequence[str],
    index_paths: Sequence[str],
    query_dir: str,
    index_dir: str,
    num_results: int,
    num_to_rerank: int = DEFAULT_NUM_TO_RERANK,
    skip_same_name: bool = True,
    codebook: np.ndarray | None = None,
    verification: VerificationParams = SEARCH_VERIFICATION,
) -> dict[str, list[Match]]:
    """Ranks the database for every query from the feature files in query_dir / index_dir.

    Args:
      method: one of METHODS.
      query_names, index_names: image names; features are `<dir>/<name><extension>`.
      index_paths: database image paths (reported with the results).
      num_results: matches kept per query.
      num_to_rerank: database images verified per query (delg, delg_star).
      skip_same_name: leave out the database image named like the query (the query itself
        when both sides come from one folder).
      codebook: float32 [K, D] visual words (asmk only).
      verification: how pairs are verified (delg, delg_star, delf).

    Returns:
      query name -> its best `num_results` matches, best first.
    """
    from delf_tf.matching import reranking

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    num_index = len(index_names)
    results: dict[str, list[Match]] = {}
    global_ranks, global_scores = _first_rankings(method, query_names, index_names, query_dir,
                                                  index_dir, codebook)
    if method == "delf":
        num_to_rerank = num_index
    verify = method not in ("delg_global", "asmk", "elfm")
    store = reranking.LocalFeatureStore(num_index) if verify else None
    for q, query_name in enumerate(query_names):
        ranks = global_ranks[q]
        if skip_same_name:
            ranks = np.array([i for i in ranks if index_names[i] != query_name], np.int64)
        scores_by_id = np.zeros([num_index])
        scores_by_id[global_ranks[q]] = global_scores[q]
        inliers = None
        if verify:
            ranks, inliers = _verify_and_rerank(
                os.path.join(query_dir, query_name + LOCAL_EXTENSION), ranks, scores_by_id,
                lambda i: store.get(os.path.join(index_dir, index_names[i] + LOCAL_EXTENSION)),
                num_to_rerank, verification)
        results[query_name] = _matches(method, ranks[:num_results], scores_by_id, inliers,
                                       index_names, index_paths)
    return results


def _verify_and_rerank(query_path, ranks, scores_by_id, index_features, num_to_rerank,
                       verification):
    """(ranks re-ranked by inliers, inliers int64 [N] with -1 for unverified images)."""
    from delf_tf.matching import reranking

    query = reranking.read_local_features(query_path)
    candidates = reranking.select_candidates(ranks, (), num_to_rerank)
    inliers = np.full([len(scores_by_id)], -1, dtype=np.int64)
    inliers[candidates] = reranking.verify_all(
        query, [index_features(i) for i in candidates], verification)
    return reranking.rerank_by_inliers(ranks, scores_by_id, np.maximum(inliers, 0)), inliers


def _first_rankings(method, query_names, index_names, query_dir, index_dir, codebook):
    """(ranks int [Q, N], sorted scores [Q, N]) before any verification: by global
    descriptors, ASMK* or ELFM; for 'delf', every image in index order with score 0."""
    from delf_tf.io import datum_io
    from delf_tf.retrieval import search

    if method == "delf":
        num_index = len(index_names)
        return (np.tile(np.arange(num_index), (len(query_names), 1)),
                np.zeros([len(query_names), num_index]))
    if method == "asmk":
        return _asmk_search(codebook, query_names, index_names, query_dir, index_dir)
    if method == "elfm":
        return _elfm_search(query_names, index_names, query_dir, index_dir)
    query_global = np.stack([datum_io.ReadFromFile(
        os.path.join(query_dir, n + GLOBAL_EXTENSION)) for n in query_names])
    index_global = np.stack([datum_io.ReadFromFile(
        os.path.join(index_dir, n + GLOBAL_EXTENSION)) for n in index_names])
    return search.global_search(query_global, index_global)


def _matches(method, ranks, scores_by_id, inliers, index_names, index_paths) -> list[Match]:
    """One query's Match rows, best first; inliers[i] < 0: not verified."""
    matches = []
    for position, i in enumerate(ranks, 1):
        verified = inliers is not None and inliers[i] >= 0
        score = float(inliers[i]) if method == "delf" else float(scores_by_id[i])
        matches.append(Match(position, index_names[i], index_paths[i], score,
                             int(inliers[i]) if verified else None))
    return matches


def _asmk_search(codebook: np.ndarray | None, query_names: Sequence[str],
                 index_names: Sequence[str], query_dir: str, index_dir: str,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """ASMK* rankings: (ids int64 [Q, N], scores [Q, N]), best first."""
    from delf_tf.aggregation.asmk_index import AsmkIndex, ReadDescriptors

    if codebook is None:
        raise ValueError("method asmk needs a codebook")
    index = AsmkIndex(codebook).Build(
        [ReadDescriptors(os.path.join(index_dir, n + LOCAL_EXTENSION)) for n in index_names],
        index_names)
    ranks, scores = [], []
    for name in query_names:
        ids, similarities = index.Search(
            ReadDescriptors(os.path.join(query_dir, name + LOCAL_EXTENSION)))
        ranks.append(np.asarray(ids, np.int64))
        scores.append(np.asarray(similarities, np.float64))
    return np.array(ranks, np.int64).reshape(-1, len(index_names)), np.array(
        scores, np.float64).reshape(-1, len(index_names))


def TrainCodebook(index_names: Sequence[str], index_dir: str, num_words: int,
                  seed: int = 0) -> np.ndarray:
    """A k-means codebook float32 [K, D] of the database images' local descriptors (K at
    most a tenth of the number of descriptors, so every word gets a few)."""
    from delf_tf.aggregation.asmk_index import ReadDescriptors, TrainAsmkCodebook

    paths = [os.path.join(index_dir, n + LOCAL_EXTENSION) for n in index_names]
    total = sum(len(ReadDescriptors(path)) for path in paths)
    if total < 20:
        raise ValueError(f"only {total} local descriptors in the database: too few for a "
                         "codebook (give --codebook_path)")
    num_words = max(2, min(num_words, total // 10))
    logger.info("training a %d-word codebook on %d descriptors", num_words, total)
    return TrainAsmkCodebook(paths, num_words=num_words, num_images=len(paths), seed=seed)


def WriteResults(output_dir: str, method: str, query_paths: Sequence[str],
                 query_names: Sequence[str], results: dict[str, list[Match]]) -> dict[str, str]:
    """Writes results.csv (query,rank,image,score,inliers,query_path,image_path) and
    results.json ({"method", "queries": {name: {"path", "results": [...]}}}); returns their paths.
    """
    os.makedirs(output_dir, exist_ok=True)
    rows = ["query,rank,image,score,inliers,query_path,image_path"]
    payload: dict[str, Any] = {"method": method, "queries": {}}
    for path, name in zip(query_paths, query_names):
        matches = results.get(name, [])
        payload["queries"][name] = {"path": path,
                                    "results": [dataclasses.asdict(m) for m in matches]}
        for m in matches:
            inliers = "" if m.inliers is None else str(m.inliers)
            rows.append(",".join([_csv(name), str(m.rank), _csv(m.name), f"{m.score:.6g}",
                                  inliers, _csv(path), _csv(m.path)]))
    paths = {"csv": os.path.join(output_dir, "results.csv"),
             "json": os.path.join(output_dir, "results.json")}
    atomic.write_bytes_atomic(paths["csv"], ("\n".join(rows) + "\n").encode("utf-8"))
    atomic.write_bytes_atomic(paths["json"], (json.dumps(payload, indent=1) + "\n").encode())
    return paths


def _csv(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value

