"""HOW's kNN classifiers CLS1-3 on hand-made scores and labels."""

import numpy as np
import pytest

from delf_tf.retrieval import knn_classification
from delf_tf.retrieval.knn_classification import Classify, ClassWeights, KnnClassifier


def test_cls3_class_weights_on_a_toy_label_set():
    # 3 classes: 'a' 4 images, 'b' 2, 'c' 1 -> log(3/4), log(3/2), log(3).
    labels = np.array(["a", "b", "a", "c", "a", "b", "a"])
    classes, weights = ClassWeights(labels)
    assert list(classes) == ["a", "b", "c"]
    np.testing.assert_allclose(weights, [np.log(3 / 4), np.log(3 / 2), np.log(3)])


def test_cls1_cls2_cls3_on_hand_scores():
    labels = np.array([7, 7, 7, 5, 5, 9])
    scores = np.array([
        # top image is class 5; class 7 has more mass spread over three images.
        [0.30, 0.30, 0.30, 0.50, 0.10, 0.00],
        # class 9 (a single image) has the top score.
        [0.10, 0.10, 0.10, 0.20, 0.20, 0.36],
    ])
    label, confidence = Classify(scores, labels, "cls1")
    np.testing.assert_array_equal(label, [5, 9])
    np.testing.assert_allclose(confidence, [0.50, 0.36])

    label, confidence = Classify(scores, labels, "cls2")
    np.testing.assert_array_equal(label, [7, 5])
    np.testing.assert_allclose(confidence, [0.90, 0.40])

    # weights: 7 -> log(3/3) = 0, 5 -> log(3/2), 9 -> log(3).
    label, confidence = Classify(scores, labels, "cls3")
    w5, w9 = np.log(1.5), np.log(3)
    expected_1 = {5: (np.sqrt(0.5) + np.sqrt(0.1)) * w5, 9: 0.0}
    expected_2 = {5: 2 * np.sqrt(0.2) * w5, 9: 0.6 * w9}
    assert label[0] == 5 and confidence[0] == pytest.approx(expected_1[5])
    assert label[1] == 9 and confidence[1] == pytest.approx(expected_2[9])


def test_only_the_n_best_images_of_a_class_count():
    labels = np.array([1] * 12 + [2])
    scores = np.r_[np.linspace(0.12, 0.01, 12), 0.5][None]
    label, confidence = Classify(scores, labels, KnnClassifier(num_neighbors=10))
    assert label[0] == 1
    np.testing.assert_allclose(confidence, [np.sort(scores[0, :12])[-10:].sum()])
    # Negative scores (an image without visual words) count as zero.
    label, confidence = Classify(np.array([[-1.0, -1.0, 0.2]]), np.array([1, 1, 2]), "cls2")
    assert label[0] == 2 and confidence[0] == pytest.approx(0.2)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="Unknown classifier"):
        Classify(np.zeros([1, 2]), np.array([0, 1]), "cls4")
    with pytest.raises(ValueError, match="3 labels"):
        Classify(np.zeros([1, 2]), np.array([0, 1, 1]), "cls1")
    assert set(knn_classification.CLASSIFIERS) == {"cls1", "cls2", "cls3"}
