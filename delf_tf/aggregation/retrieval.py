"""Retrieval on a Revisited-format dataset with aggregated local features
(Detect-to-Retrieve's perform_retrieval): ASMK / ASMK* through an inverted
file, VLAD by a matrix product; writes the same `metrics.txt` as the global
retrieval tool."""

import dataclasses
import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from delf_tf.aggregation import aggregation_extraction
from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.params import AggregationParams, AggregationTypeName
from delf_tf.io import datum_io
from delf_tf.io.files import require_files
from delf_tf.protos import aggregation_config_pb2
from delf_tf.retrieval import dataset, evaluation, search

__all__ = [
    # The original's names (the compatibility surface).
    "RankIndexImages", "RepresentationBytes", "PerformAggregatedRetrieval",
    # delf_tf's own API.
    "PR_RANKS", "METRICS_FILENAME", "Representations", "AggregationSide",
    "retrieve_aggregated", "AggregatedRetrievalParams",
]

logger = logging.getLogger(__name__)

PR_RANKS = (1, 5, 10)
METRICS_FILENAME = evaluation.METRICS_FILENAME

Representations = list[tuple[np.ndarray, np.ndarray]]


def RankIndexImages(
    query_representations: Representations,
    index_representations: Representations,
    index_config: aggregation_config_pb2.AggregationConfig | AggregationParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks all index images for every query.

    Returns:
      (ranks int64 [Q, N] best first, ties by index id; scores float64 [Q, N]
      in index-id order).
    """
    if AggregationTypeName(index_config) == "VLAD":
        dim = index_config.codebook_size * index_config.feature_dimensionality

        def stack(representations):
            return np.stack([np.asarray(d, np.float32).reshape(dim) for d, _ in representations]
                            ) if representations else np.zeros([0, dim], np.float32)

        ranks, sorted_scores = search.global_search(
            stack(query_representations), stack(index_representations))
        scores = np.zeros(ranks.shape, dtype=np.float64)
        np.put_along_axis(scores, ranks, sorted_scores, axis=1)
        return ranks, scores
    inverted_file = AsmkInvertedFile(index_config).Build(
        [d for d, _ in index_representations], [w for _, w in index_representations])
    scores = np.zeros([len(query_representations), inverted_file.num_images], dtype=np.float64)
    for i, (data, words) in enumerate(query_representations):
        scores[i] = inverted_file.ComputeSimilarities(data, words)
    return np.argsort(-scores, axis=1, kind="stable"), scores


def RepresentationBytes(representations: Representations) -> np.ndarray:
    """Serialized DatumPairProto size of each representation (bytes [N])."""
    return np.array([len(datum_io.SerializePairToString(
                         d, aggregation_extraction.FileVisualWords(w)))
                     for d, w in representations], dtype=np.int64)


def _check_compatible(query_config, index_config) -> None:
    for field in ("aggregation_type", "codebook_size", "feature_dimensionality"):
        if getattr(query_config, field) != getattr(index_config, field):
            raise ValueError(
                f"Query and index aggregation configs differ in {field}: "
                f"{getattr(query_config, field)} vs {getattr(index_config, field)}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AggregationSide:
    """One side of an aggregated retrieval (the queries or the index images):
    its aggregation settings, and where its representations come from, the
    files written by extract_aggregation in `aggregation_dir` when given, else
    aggregated from the local features `files`."""

    params: AggregationParams
    files: aggregation_extraction.FeatureFiles | None = None
    aggregation_dir: str = ""
    description: str = "images"


def _check_inputs(names: Sequence[str], side: AggregationSide) -> None:
    if side.aggregation_dir:
        require_files(
            aggregation_extraction.AggregationFiles(names, side.aggregation_dir, side.params),
            f"aggregation files of the {side.description} are", max_named=1)
    elif side.files is None or not side.files.features_dir:
        raise ValueError(
            f"Give either a features dir or an aggregation dir for the {side.description}")
    else:
        aggregation_extraction.check_feature_files(names, side.files, side.params)


def _representations(names: Sequence[str], side: AggregationSide,
                     codebook: np.ndarray | None) -> Representations:
    if side.aggregation_dir:
        return aggregation_extraction.ReadAggregatedRepresentations(
            names, side.aggregation_dir, side.params)
    return aggregation_extraction.aggregate_images(names, side.files, side.params, codebook,
                                                   side.description)


def _shared_codebook(query_config, index_config) -> np.ndarray:
    """The index config's codebook, after checking the query config uses the same."""
    codebook = codebook_lib.ReadCodebook(index_config.codebook_path)
    if query_config.codebook_path != index_config.codebook_path:
        query_codebook = codebook_lib.ReadCodebook(query_config.codebook_path)
        if not np.array_equal(query_codebook, codebook):
            raise ValueError("Query and index aggregation configs use different codebooks")
    return codebook


def _mean_bytes(representations: Representations) -> float:
    return float(RepresentationBytes(representations).mean()) if representations else 0.0


@dataclasses.dataclass(frozen=True)
class AggregatedRetrievalParams:
    """Each side's AggregationConfig and where its representations come from (the flags of
    tools/perform_aggregated_retrieval.py besides the evaluation's files).

    Attributes:
      query_aggregation_config_path: Path to the AggregationConfig pbtxt of the queries.
      query_aggregation_dir: Directory of the queries' aggregated representations from
        extract_aggregation.py.
      index_aggregation_config_path: Path to the AggregationConfig pbtxt of the index images.
      index_aggregation_dir: Directory of the index images' aggregated representations from
        extract_aggregation.py.
      feature_extension: Extension of the local feature files (.delg_local for DELG, .delf for
        DELF).
      index_mapping_path: Optional region mapping CSV (name,index_image_id,box_id) for
        regional aggregation of index features; without it an index image is one region.
    """
    query_aggregation_config_path: str = "/tmp/query_aggregation_config.pbtxt"
    query_aggregation_dir: str = ""
    index_aggregation_config_path: str = "/tmp/index_aggregation_config.pbtxt"
    index_aggregation_dir: str = ""
    feature_extension: str = ".delg_local"
    index_mapping_path: str = ""

    def sides(self, query_features_dir: str = "", index_features_dir: str = ""
              ) -> tuple[AggregationSide, AggregationSide]:
        """(queries, index images): each side's AggregationConfig pbtxt read once, its
        representations from its aggregation directory when given, otherwise from the local
        feature files in `*_features_dir`."""
        query = AggregationSide(
            params=AggregationParams.read(self.query_aggregation_config_path),
            aggregation_dir=self.query_aggregation_dir, description="queries",
            files=aggregation_extraction.FeatureFiles(query_features_dir,
                                                      self.feature_extension))
        index = AggregationSide(
            params=AggregationParams.read(self.index_aggregation_config_path),
            aggregation_dir=self.index_aggregation_dir, description="index images",
            files=aggregation_extraction.FeatureFiles(index_features_dir,
                                                      self.feature_extension,
                                                      self.index_mapping_path))
        return query, index


def PerformAggregatedRetrieval(
    dataset_file_path: str,
    query_aggregation_config_path: str,
    index_aggregation_config_path: str,
    output_dir: str,
    query_features_dir: str = "",
    index_features_dir: str = "",
    **params,
) -> dict[str, float]:
    """`retrieve_aggregated` with the two sides as loose arguments: `params` are the other
    fields of AggregatedRetrievalParams (by keyword), whose `sides` build the two sides."""
    sides = AggregatedRetrievalParams(
        query_aggregation_config_path=query_aggregation_config_path,
        index_aggregation_config_path=index_aggregation_config_path, **params,
    ).sides(query_features_dir, index_features_dir)
    return retrieve_aggregated(dataset_file_path, *sides, output_dir)


def retrieve_aggregated(
    dataset_file_path: str,
    query: AggregationSide,
    index: AggregationSide,
    output_dir: str,
) -> dict[str, float]:
    """Ranks the index for every query and writes `<output_dir>/metrics.txt`
    (medium and hard protocols) and `<output_dir>/ranks.npy` (int [Q, N]).

    Returns:
      {'medium': mAP, 'hard': mAP, 'query_bytes_per_image': ...,
       'index_bytes_per_image': ...}.
    """
    _check_compatible(query.params, index.params)
    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    logger.info("%d queries, %d index images", len(query_list), len(index_list))

    # Every input is checked before hours of aggregation can start.
    _check_inputs(index_list, index)
    _check_inputs(query_list, query)
    codebook = (None if query.aggregation_dir and index.aggregation_dir
                else _shared_codebook(query.params, index.params))
    index_representations = _representations(index_list, index, codebook)
    query_representations = _representations(query_list, query, codebook)

    start = time.perf_counter()
    ranks, _ = RankIndexImages(query_representations, index_representations, index.params)
    logger.info("Ranked %d index images for %d queries in %.2f s", len(index_list),
                len(query_list), time.perf_counter() - start)

    _, medium, hard = dataset.ParseEasyMediumHardGroundTruth(ground_truth)
    mean_average_precision, mean_precisions, _ = evaluation.save_metrics(
        dict.fromkeys(("medium", "hard"), ranks), {"medium": medium, "hard": hard}, PR_RANKS,
        output_dir)
    evaluation.save_npy(os.path.join(output_dir, "ranks.npy"), ranks.astype(np.int32))

    query_bytes = _mean_bytes(query_representations)
    index_bytes = _mean_bytes(index_representations)
    print(evaluation.format_metrics_table(mean_average_precision, mean_precisions, PR_RANKS))
    print(f"{index.params.aggregation_type} representation, mean bytes per image: "
          f"index {index_bytes:.0f}, query {query_bytes:.0f}", flush=True)
    return {"medium": mean_average_precision["medium"], "hard": mean_average_precision["hard"],
            "query_bytes_per_image": query_bytes, "index_bytes_per_image": index_bytes}
