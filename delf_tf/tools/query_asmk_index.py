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
from delf_tf.tools import common

_INDEX_PATH = flags.DEFINE_string("index_path", "index.asmk", "Index from build_asmk_index.py.")
_DATASET_FILE_PATH = flags.DEFINE_string(
    "dataset_file_path", "",
    "Revisited-format dataset file (.mat): its query list names the queries (--image_set=query) "
    "and its ground truth gives metrics.txt; or give --list_images_path.")
_IMAGE_SET = flags.DEFINE_enum(
    "image_set", "query", list(asmk_search.IMAGE_SETS),
    "Which list of --dataset_file_path are the queries (metrics need 'query').")
_LIST_IMAGES_PATH = flags.DEFINE_string(
    "list_images_path", "", "Text file with one query name per line (instead of a dataset file).")
_FEATURES_DIR = flags.DEFINE_string(
    "features_dir", "", "Directory of the queries' local feature files.")
_FEATURE_EXTENSION = flags.DEFINE_string(
    "feature_extension", ".delf", "Extension of the local feature files (DelfFeatures).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "asmk_results", "Where ranks.npy, scores.npy, results.csv, metrics.txt and "
    "predictions.csv are written.")
_TOP_K = flags.DEFINE_integer("top_k", 100, "Database images kept per query (<= 0: all).")
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


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    names = asmk_search.ReadImageNames(
        _DATASET_FILE_PATH.value, _IMAGE_SET.value, _LIST_IMAGES_PATH.value)
    result = asmk_search.QueryIndexWithFeatures(
        _INDEX_PATH.value, names, _FEATURES_DIR.value, _FEATURE_EXTENSION.value,
        _OUTPUT_DIR.value, top_k=_TOP_K.value,
        dataset_file_path=_DATASET_FILE_PATH.value if _IMAGE_SET.value == "query" else "",
        index_labels_path=_INDEX_LABELS_PATH.value, classifier=_CLASSIFIER.value,
        query_num_assignments=_QUERY_NUM_ASSIGNMENTS.value or None)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    app.run(main)
