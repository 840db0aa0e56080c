r"""Queries a saved ASMK* index (tools/build_asmk_index.py) with local
feature files: writes the top-k rankings; with a Revisited dataset file also
metrics.txt (medium/hard mAP); with database labels also GLDv2 recognition
predictions by a kNN classifier (HOW's CLS1, CLS2, CLS3).

Example:
  python tools/query_asmk_index.py --index_path=asmk/roxford5k.asmk \
    --dataset_file_path=gnd_roxford5k.mat --image_set=query \
    --features_dir=features/query --output_dir=results/how_asmk
"""

import json

from absl import app, flags

from delf_tf.aggregation import asmk_search
from delf_tf.retrieval import knn_classification
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_INDEX_PATH = flags.DEFINE_string(
    "index_path", "index.asmk",
    "Index from build_asmk_index.py.")
_IMAGES = retrieval_flags.define_image_flags(image_set="query")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "asmk_results",
    "Where ranks.npy, scores.npy, results.csv, metrics.txt (with a dataset file and "
    "--image_set=query) and predictions.csv are written.")
_TOP_K = flags.DEFINE_integer(
    "top_k", 100,
    "Database images kept per query (<= 0: all).")
_QUERY_NUM_ASSIGNMENTS = flags.DEFINE_integer(
    "query_num_assignments", 0,
    "Visual words per query descriptor; 0 keeps the index's setting (HOW: 5).")
_INDEX_LABELS_PATH = flags.DEFINE_string(
    "index_labels_path", "",
    "CSV id,landmark_id of the database images (GLDv2 train.csv); if given, predictions.csv "
    "is written by --classifier.")
_CLASSIFIER = flags.DEFINE_enum(
    "classifier", "cls3", sorted(knn_classification.CLASSIFIERS),
    "kNN classifier: cls1 (top image), cls2 (10 best images per class, summed similarity), "
    "cls3 (10 best, summed square-rooted similarity x log(#classes / class frequency)).")


@common.tool_main
def main():
    dataset_file_path = _IMAGES.dataset_file_path.value
    result = asmk_search.QueryIndexWithFeatures(
        _INDEX_PATH.value, _IMAGES.names(), _IMAGES.features_dir.value,
        _IMAGES.feature_extension.value, _OUTPUT_DIR.value, top_k=_TOP_K.value,
        dataset_file_path=dataset_file_path if _IMAGES.image_set.value == "query" else "",
        index_labels_path=_INDEX_LABELS_PATH.value, classifier=_CLASSIFIER.value,
        query_num_assignments=_QUERY_NUM_ASSIGNMENTS.value or None)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
