"""The ASMK* search jobs behind tools/train_asmk_codebook.py,
tools/build_asmk_index.py and tools/query_asmk_index.py: local feature files
in, a codebook / a saved index / rankings, metrics and kNN predictions out.

Images are named either by a Revisited-format dataset file (its query or
index list) or by a text file with one name per line; the features of image
`name` are `<features_dir>/<name><feature_extension>` (DelfFeatures).
"""

import csv
import logging
import os
import time

import numpy as np

from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.aggregation_extraction import FeatureFiles
from delf_tf.aggregation.asmk_index import (
    IMAGES_PER_SEARCH,
    AsmkIndex,
    AsmkParams,
    CodebookParams,
    ReadDescriptors,
    train_codebook,
)
from delf_tf.io import atomic
from delf_tf.progress import Progress
from delf_tf.retrieval import dataset, evaluation, knn_classification

__all__ = [
    # The original's names (the compatibility surface).
    "ReadImageNames", "FeaturePaths", "TrainCodebookFromFeatures", "BuildIndexFromFeatures",
    "ReadLabels", "QueryIndexWithFeatures",
    # delf_tf's own API.
    "PR_RANKS", "IMAGE_SETS", "train_codebook_from_features",
]

logger = logging.getLogger(__name__)

PR_RANKS = (1, 5, 10)
IMAGE_SETS = ("query", "index")


def ReadImageNames(dataset_file_path: str = "", image_set: str = "index",
                   list_images_path: str = "") -> list[str]:
    """Names from a Revisited dataset file's `image_set` list, or from a text
    file with one name per line (exactly one of the two paths)."""
    if bool(dataset_file_path) == bool(list_images_path):
        raise ValueError("Give exactly one of dataset_file_path and list_images_path")
    if dataset_file_path:
        if image_set not in IMAGE_SETS:
            raise ValueError(f"image_set must be one of {IMAGE_SETS}, got {image_set!r}")
        query_list, index_list, _ = dataset.ReadDatasetFile(dataset_file_path)
        return query_list if image_set == "query" else index_list
    if not os.path.isfile(list_images_path):
        raise FileNotFoundError(f"No such image list: {list_images_path}")
    with open(list_images_path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f"{list_images_path} lists no images")
    return names


def FeaturePaths(names, features_dir: str, feature_extension: str) -> list[str]:
    """Feature file of every name; FileNotFoundError naming the missing ones."""
    paths = [os.path.join(features_dir, name + feature_extension) for name in names]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(paths)} feature files are missing, e.g. {missing[0]}")
    return paths


def train_codebook_from_features(
    names, files: FeatureFiles, output_path: str, params: CodebookParams = CodebookParams(),
) -> np.ndarray:
    """Trains a k-means codebook (`params.kmeans`) on the features of (at most
    `params.num_images` of) the named images and writes it as a DatumProto file."""
    paths = FeaturePaths(names, files.features_dir, files.extension)
    start = time.perf_counter()
    reading = Progress(min(len(paths), params.num_images), "Read features of", unit="images",
                       every=500)
    codebook = train_codebook(paths, params, progress=lambda done, total: reading.step())
    logger.info("Codebook %s trained in %.1f s", codebook.shape, time.perf_counter() - start)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    codebook_lib.WriteCodebook(codebook, output_path)
    return codebook


def TrainCodebookFromFeatures(
    names, features_dir: str, feature_extension: str, output_path: str,
    num_words: int = 65536, num_images: int = 20000, num_iterations: int = 10, seed: int = 0,
) -> np.ndarray:
    """`train_codebook_from_features` with loose arguments."""
    return train_codebook_from_features(
        names, FeatureFiles(features_dir, feature_extension), output_path,
        CodebookParams(num_words=num_words, num_images=num_images,
                       num_iterations=num_iterations, seed=seed))


def BuildIndexFromFeatures(
    codebook_path: str, names, features_dir: str, feature_extension: str,
    output_path: str, params: AsmkParams | None = None,
) -> dict[str, float]:
    """Aggregates the named images' features, builds the inverted file and
    saves the index (HOW's parameters unless `params`). Returns its Stats()
    plus the build time in seconds."""
    paths = FeaturePaths(names, features_dir, feature_extension)
    index = AsmkIndex(codebook_lib.ReadCodebook(codebook_path), params or AsmkParams())
    start = time.perf_counter()
    representations = []
    aggregating = Progress(len(paths), "Aggregated", unit="images", every=500)
    for start in range(0, len(paths), IMAGES_PER_SEARCH):
        chunk = [ReadDescriptors(path) for path in paths[start:start + IMAGES_PER_SEARCH]]
        representations += index.AggregateIndexImages(chunk)
        aggregating.step(len(chunk))
    index.BuildFromRepresentations(representations, names)
    seconds = time.perf_counter() - start
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    index.Save(output_path)
    stats = {**index.Stats(), "build_seconds": seconds,
             "file_bytes_per_image": os.path.getsize(output_path) / max(index.num_images, 1)}
    logger.info("Indexed %d images in %.1f s: %.1f vectors and %.0f bytes per image",
                index.num_images, seconds, stats["vectors_per_image"], stats["bytes_per_image"])
    return stats


def ReadLabels(labels_path: str, names) -> np.ndarray:
    """Class label of every name from a CSV with columns id,landmark_id (a
    header row is skipped), as int64 [len(names)]."""
    if not os.path.isfile(labels_path):
        raise FileNotFoundError(f"No such labels file: {labels_path}")
    labels = {}
    with open(labels_path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or (line == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            if len(row) < 2:
                raise ValueError(f"{labels_path}:{line}: expected 'id,landmark_id', got {row}")
            labels[row[0].strip()] = int(row[1])
    missing = [n for n in names if n not in labels]
    if missing:
        raise ValueError(
            f"{labels_path} has no label for {len(missing)} index images, e.g. {missing[0]}")
    return np.array([labels[n] for n in names], dtype=np.int64)


def _ground_truth(dataset_file_path: str, names, index: AsmkIndex, index_path: str):
    """The Revisited ground truth of `dataset_file_path` (None without one), checked
    to describe these queries and the index's images."""
    if not dataset_file_path:
        return None
    query_list, index_list, ground_truth = dataset.ReadDatasetFile(dataset_file_path)
    if list(query_list) != list(names) or list(index_list) != index.image_names:
        raise ValueError(
            f"{dataset_file_path}: its query and index lists must be the queries given "
            f"and the images of {index_path}")
    return ground_truth


def _write_rankings(output_dir, names, image_names, top_ranks, scores) -> None:
    """ranks.npy, scores.npy and results.csv of the top ranks [Q, K]."""
    evaluation.save_npy(os.path.join(output_dir, "ranks.npy"), top_ranks.astype(np.int32))
    evaluation.save_npy(os.path.join(output_dir, "scores.npy"),
                        np.take_along_axis(scores, top_ranks, axis=1).astype(np.float32))
    rows = [f"{name},{' '.join(image_names[j] for j in top_ranks[i])}"
            for i, name in enumerate(names)]
    atomic.write_bytes_atomic(os.path.join(output_dir, "results.csv"),
                              ("query,index\n" + "\n".join(rows) + "\n").encode())


def QueryIndexWithFeatures(
    index_path: str, names, features_dir: str, feature_extension: str, output_dir: str,
    top_k: int = 100, dataset_file_path: str = "", index_labels_path: str = "",
    classifier: str = "cls3", query_num_assignments: int | None = None,
) -> dict[str, float]:
    """Queries a saved index with the named images' features.

    Writes to `output_dir`: `ranks.npy` (int32 [Q, top_k] index ids, best
    first), `scores.npy` (float32 [Q, top_k]) and `results.csv`
    (query,index names of the top_k). With a Revisited `dataset_file_path`
    (whose queries must be `names`), also `metrics.txt` over the full
    ranking; with `index_labels_path`, `predictions.csv` in the GLDv2
    recognition format (id,"landmark_id score") by the kNN `classifier`.

    Returns:
      {'seconds_per_query': ..., 'medium': mAP, 'hard': mAP (with a dataset
      file)}.
    """
    paths = FeaturePaths(names, features_dir, feature_extension)
    index = AsmkIndex.Load(index_path, query_num_assignments)
    ground_truth = _ground_truth(dataset_file_path, names, index, index_path)
    labels = ReadLabels(index_labels_path, index.image_names) if index_labels_path else None
    descriptors = [ReadDescriptors(p) for p in paths]
    start = time.perf_counter()
    scores = np.stack([index.ComputeSimilarities(d) for d in descriptors]) if descriptors \
        else np.zeros([0, index.num_images])
    seconds = time.perf_counter() - start
    ranks = np.argsort(-scores, axis=1, kind="stable")
    top_k = min(top_k, index.num_images) if top_k > 0 else index.num_images
    os.makedirs(output_dir, exist_ok=True)
    _write_rankings(output_dir, names, index.image_names, ranks[:, :top_k], scores)
    result = {"seconds_per_query": seconds / max(len(names), 1)}
    if ground_truth is not None:
        _, medium, hard = dataset.ParseEasyMediumHardGroundTruth(ground_truth)
        mean_ap, mean_precisions, _ = evaluation.save_metrics(
            {"medium": ranks, "hard": ranks}, {"medium": medium, "hard": hard}, PR_RANKS,
            output_dir)
        logger.info("\n%s", evaluation.format_metrics_table(mean_ap, mean_precisions, PR_RANKS))
        result.update(medium=mean_ap["medium"], hard=mean_ap["hard"])
    if labels is not None:
        predicted, confidence = knn_classification.Classify(scores, labels, classifier)
        lines = [f"{name},{label} {score:.6f}"
                 for name, label, score in zip(names, predicted, confidence)]
        atomic.write_bytes_atomic(os.path.join(output_dir, "predictions.csv"),
                                  ("id,landmarks\n" + "\n".join(lines) + "\n").encode())
    return result
