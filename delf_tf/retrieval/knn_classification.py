"""k-nearest-neighbour classification from retrieval scores (HOW's CLS1-3).

Each class accumulates the similarities of its N best-scoring database
images; the prediction is the class with the largest accumulated value,
which is also the prediction's confidence (for GLDv2 micro-AP):

  CLS1: N = 1,  sum of similarities (the top image's class and score);
  CLS2: N = 10, sum of similarities;
  CLS3: N = 10, sum of square-rooted similarities times the class weight
        log(number of classes / class frequency), class frequency being the
        number of database images of the class, which down-weights frequent
        classes. (On a label set with few classes, a class of at least as
        many images as there are classes gets a weight <= 0.)

Similarities below zero (ASMK's -1 for an image without visual words) count
as zero.
"""

import dataclasses

import numpy as np

__all__ = [
    # The original's names (the compatibility surface).
    "ClassWeights", "Classify",
    # delf_tf's own API.
    "KnnClassifier", "CLASSIFIERS",
]


@dataclasses.dataclass(frozen=True)
class KnnClassifier:
    """num_neighbors: N images per class; square_root: accumulate sqrt(s);
    class_weights: multiply by log(#classes / class frequency)."""

    num_neighbors: int
    square_root: bool = False
    class_weights: bool = False


CLASSIFIERS = {
    "cls1": KnnClassifier(1),
    "cls2": KnnClassifier(10),
    "cls3": KnnClassifier(10, square_root=True, class_weights=True),
}


def ClassWeights(database_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLS3's weight log(C / n_c) of each of the C database classes, n_c being
    the number of database images of class c.

    Returns:
      (classes [C] ascending, float64 weights [C]).
    """
    classes, counts = np.unique(np.asarray(database_labels), return_counts=True)
    return classes, np.log(len(classes) / counts)


def Classify(
    scores: np.ndarray,
    database_labels: np.ndarray,
    classifier: KnnClassifier | str = "cls3",
) -> tuple[np.ndarray, np.ndarray]:
    """Predicts a class per query.

    Args:
      scores: float [Q, M] similarity of every query to every database image.
      database_labels: [M] class label of each database image (any sortable type).
      classifier: a KnnClassifier or one of 'cls1', 'cls2', 'cls3'.

    Returns:
      (labels [Q] of the database label dtype, confidences float64 [Q]).
    """
    if isinstance(classifier, str):
        try:
            classifier = CLASSIFIERS[classifier.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown classifier {classifier!r}; expected one of {sorted(CLASSIFIERS)}"
            ) from None
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    database_labels = np.asarray(database_labels)
    if scores.shape[1] != len(database_labels):
        raise ValueError(
            f"scores cover {scores.shape[1]} database images but there are "
            f"{len(database_labels)} labels")
    if classifier.num_neighbors < 1:
        raise ValueError(f"num_neighbors must be positive, got {classifier.num_neighbors}")
    classes, class_ids = np.unique(database_labels, return_inverse=True)
    _, weights = ClassWeights(database_labels)
    values = np.maximum(scores, 0.0)
    if classifier.square_root:
        values = np.sqrt(values)
    # Per query: images sorted by class, then by decreasing value; the first
    # N of each class run are accumulated.
    order = np.lexsort((-values, np.broadcast_to(class_ids, values.shape)), axis=1)
    sorted_values = np.take_along_axis(values, order, axis=1)
    sorted_classes = class_ids[order]
    class_start = np.searchsorted(np.sort(class_ids), np.arange(len(classes)))
    rank_in_class = np.arange(len(class_ids)) - class_start[np.sort(class_ids)]
    keep = rank_in_class < classifier.num_neighbors
    totals = np.zeros([len(scores), len(classes)])
    for q in range(len(scores)):
        totals[q] = np.bincount(sorted_classes[q, keep], weights=sorted_values[q, keep],
                                minlength=len(classes))
    if classifier.class_weights:
        totals *= weights
    best = np.argmax(totals, axis=1)
    return classes[best], totals[np.arange(len(scores)), best]
