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

__all__ = [
    # The original's names (the compatibility surface).
    "ListImages", "ImageNames", "ExtractFeatures", "ExtractElfmFeatures", "Rank",
    "TrainCodebook", "WriteResults", "Search",
    # delf_tf's own API.
    "METHODS", "IMAGE_EXTENSIONS", "GLOBAL_EXTENSION", "LOCAL_EXTENSION", "ELFM_EXTENSION",
    "DEFAULT_NUM_TO_RERANK", "SEARCH_VERIFICATION", "Match", "SearchRequest", "SearchOutcome",
]

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
    from delf_tf.io import datum_io, feature_io

    extensions = ([GLOBAL_EXTENSION] if use_global else []) + (
        [LOCAL_EXTENSION] if use_local else [])
    failed: list[str] = []
    for count, name, image in _images_to_extract(paths, names, output_dir, extensions, failed):
        features = extract(image)
        if use_local:
            feature_io.write_features(os.path.join(output_dir, name + LOCAL_EXTENSION),
                                      features["local_features"])
        if use_global:
            datum_io.WriteToFile(features["global_descriptor"],
                                 os.path.join(output_dir, name + GLOBAL_EXTENSION))
        if count % 50 == 0 or count == len(paths):
            logger.info("extracted %d/%d images into %s", count, len(paths), output_dir)
    return failed


def _images_to_extract(paths: Sequence[str], names: Sequence[str], output_dir: str,
                       extensions: Sequence[str], failed: list[str]):
    """Yields (count, name, uint8 [H, W, 3] image) of each image, counted from 1, that lacks
    one of its outputs `<output_dir>/<name><extension>`; the paths of images that cannot be
    loaded are logged and appended to `failed`."""
    from delf_tf import utils

    os.makedirs(output_dir, exist_ok=True)
    for count, (path, name) in enumerate(zip(paths, names), 1):
        if all(os.path.exists(os.path.join(output_dir, name + e)) for e in extensions):
            continue
        try:
            image = utils.RgbLoader(path)
        except (FileNotFoundError, ValueError) as e:
            logger.error("Skipping %s: %s", path, e)
            failed.append(path)
            continue
        yield count, name, np.asarray(image)


def ExtractElfmFeatures(extractor, paths: Sequence[str], names: Sequence[str],
                        output_dir: str) -> list[str]:
    """Writes `<output_dir>/<name>.elfm` of each image not yet extracted; returns the paths
    that failed to load.

    Args:
      extractor: a delf_tf.elfm.extraction.ElfmExtractor.
    """
    from delf_tf.elfm import descriptor

    failed: list[str] = []
    for _, name, image in _images_to_extract(paths, names, output_dir, [ELFM_EXTENSION],
                                             failed):
        described = extractor(image)[0]
        descriptor.WriteCodesToFile(described.codes, described.dim,
                                    os.path.join(output_dir, name + ELFM_EXTENSION))
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
    from delf_tf.aggregation.asmk_index import CodebookParams, ReadDescriptors, cluster_descriptors

    # Each file read once (the counts choose K, then the same descriptors are clustered).
    descriptors = [ReadDescriptors(os.path.join(index_dir, n + LOCAL_EXTENSION))
                   for n in index_names]
    total = sum(len(d) for d in descriptors)
    if total < 20:
        raise ValueError(f"only {total} local descriptors in the database: too few for a "
                         "codebook (give --codebook_path)")
    params = CodebookParams(num_words=max(2, min(num_words, total // 10)),
                            num_images=len(index_names), seed=seed)
    return cluster_descriptors(
        np.concatenate([d for d in descriptors if len(d)]).astype(np.float32), params,
        len(index_names))


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """One search job (what delf-search's flags say): the images are listed by ListImages,
    `method` is one of METHODS, and num_results, num_to_rerank and verification are Rank's.

    Attributes:
      query_images: Query images: a folder (searched recursively), a text file with one image
        path per line, or a glob pattern in quotes.
      index_images: Database images: a folder (searched recursively), a text file with one
        image path per line, or a glob pattern in quotes.
      output_dir: Where results.csv, results.json and the feature cache go.
      method: Ranking method (see the description of delf-search).
      delf_config_path: DelfConfig pbtxt (path, or the name of a shipped config) whose
        model_path is the exported model; set its score_threshold from the training job's
        attention_stats.json (delf-write-config). Every method but elfm needs it.
      elfm_model_path: For elfm: a DELG checkpoint prefix (with its .json sidecar) or an ELFM
        SavedModel (delf-export-elfm-model).
      features_dir: Feature cache (default <output_dir>/features); images whose feature files
        exist there are not extracted again: delete it after changing the model or config.
      num_results: Results written per query.
      num_to_rerank: Database images verified per query (delg, delg_star).
      verification: How delg and delg_star verify a database image: descriptor matching and
        RANSAC (DELG retrieval's thresholds by default).
      codebook_path: For asmk: visual-word codebook (DatumProto, e.g. from
        delf-train-asmk-codebook); default: train one on the database features and save it as
        <output_dir>/codebook.datum.
      asmk_num_words: For asmk without --codebook_path: words of the codebook trained on the
        database (at most a tenth of its descriptors).
      gldv2_predictions_path: Also write a Google Landmarks v2 retrieval predictions CSV
        (id,images with the best 100 database ids) here, for delf-compute-retrieval-metrics.
    """
    query_images: str
    index_images: str
    output_dir: str
    method: str = "delg"
    delf_config_path: str | None = None
    elfm_model_path: str | None = None
    features_dir: str | None = None
    num_results: int = 100
    num_to_rerank: int = DEFAULT_NUM_TO_RERANK
    verification: VerificationParams = SEARCH_VERIFICATION
    codebook_path: str | None = None
    asmk_num_words: int = 65536
    gldv2_predictions_path: str | None = None

    def feature_dirs(self) -> tuple[str, str]:
        """(query, index) feature cache folders of the method; ValueError when the method's
        model is not given."""
        features_dir = self.features_dir or os.path.join(self.output_dir, "features")
        if self.method == "elfm":
            if not self.elfm_model_path:
                raise ValueError("method elfm needs an elfm_model_path")
            features_dir = os.path.join(features_dir, "elfm")
        elif not self.delf_config_path:
            raise ValueError(f"method {self.method} needs a delf_config_path")
        elif self.method == "delg_star":
            features_dir = os.path.join(features_dir, "binarized")
        return os.path.join(features_dir, "query"), os.path.join(features_dir, "index")


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What Search did: the ranked results of the queries that could be read, the files
    written (kind -> path) and the image paths that could not be read."""
    results: dict[str, list[Match]]
    query_names: list[str]
    index_names: list[str]
    written: dict[str, str]
    failed: list[str]


def Search(request: SearchRequest) -> SearchOutcome:
    """Extracts the features of both sides (those not cached yet), ranks the database for
    every query and writes the results; images that cannot be read are left out and listed
    in the outcome."""
    if request.method not in METHODS:
        raise ValueError(f"unknown method {request.method!r}; expected one of {METHODS}")
    query_paths = ListImages(request.query_images)
    index_paths = ListImages(request.index_images)
    query_names, index_names = ImageNames(query_paths), ImageNames(index_paths)
    query_dir, index_dir = request.feature_dirs()
    sides = ((query_paths, query_names, query_dir), (index_paths, index_names, index_dir))
    failed = _extract_both_sides(request, sides)
    if failed:
        query_paths, query_names = _without(query_paths, query_names, set(failed))
        index_paths, index_names = _without(index_paths, index_names, set(failed))
    codebook = _search_codebook(request, index_names, index_dir)
    results = Rank(request.method, query_names, index_names, index_paths, query_dir, index_dir,
                   num_results=request.num_results, num_to_rerank=request.num_to_rerank,
                   codebook=codebook, verification=request.verification)
    written = WriteResults(request.output_dir, request.method, query_paths, query_names,
                           results)
    if request.gldv2_predictions_path:
        from delf_tf.retrieval import gldv2

        gldv2.WriteRetrievalPredictions(
            request.gldv2_predictions_path,
            {name: [m.name for m in matches] for name, matches in results.items()})
        written["gldv2"] = request.gldv2_predictions_path
    return SearchOutcome(results, query_names, index_names, written, failed)


def _extract_both_sides(request: SearchRequest, sides) -> list[str]:
    """Features of (paths, names, folder) of each side by the request's model; returns the
    paths of the images that could not be read."""
    failed: list[str] = []
    if request.method == "elfm":
        from delf_tf.elfm.extraction import ElfmExtractor

        extractor = ElfmExtractor(request.elfm_model_path)
        for paths, names, folder in sides:
            failed += ExtractElfmFeatures(extractor, paths, names, folder)
        return failed
    from delf_tf import config as config_lib
    from delf_tf.extraction import extractor as extractor_lib

    config = config_lib.ReadDelfConfig(request.delf_config_path)
    _check_config_features(request, config)
    extract = extractor_lib.MakeExtractor(
        config, binarize_local_descriptors=request.method == "delg_star")
    for paths, names, folder in sides:
        failed += ExtractFeatures(extract, paths, names, folder, config.use_global_features,
                                  config.use_local_features)
    return failed


def _check_config_features(request: SearchRequest, config) -> None:
    """ValueError unless the DelfConfig extracts the features the method ranks by."""
    use_global = request.method not in ("delf", "asmk")
    use_local = request.method != "delg_global"
    if (use_global and not config.use_global_features) or (
            use_local and not config.use_local_features):
        raise ValueError(
            f"method {request.method} needs {'global' if use_global else ''}"
            f"{' and ' if use_global and use_local else ''}{'local' if use_local else ''} "
            f"features, but {request.delf_config_path} has use_global_features="
            f"{config.use_global_features}, use_local_features={config.use_local_features}")


def _search_codebook(request: SearchRequest, index_names: Sequence[str],
                     index_dir: str) -> np.ndarray | None:
    """asmk: the request's codebook, or one trained on the database (and saved)."""
    if request.method != "asmk":
        return None
    from delf_tf.aggregation import codebook as codebook_lib

    if request.codebook_path:
        return codebook_lib.ReadCodebook(request.codebook_path)
    codebook = TrainCodebook(index_names, index_dir, request.asmk_num_words)
    codebook_lib.WriteCodebook(codebook, os.path.join(request.output_dir, "codebook.datum"))
    return codebook


def _without(paths: Sequence[str], names: Sequence[str],
             failed: set[str]) -> tuple[list[str], list[str]]:
    kept = [(p, n) for p, n in zip(paths, names) if p not in failed]
    return [p for p, _ in kept], [n for _, n in kept]


def _csv(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value

