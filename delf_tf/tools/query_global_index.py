r"""Queries a global-descriptor index built by tools/build_global_index.py with the
.delg_global files of query images; writes the best --top_k index images of each query
(names and scores) as JSON, and prints the search time per query. With --report_recall
an approximate (faiss) index is also searched exactly and recall@top_k is reported.

Queries come from a Revisited dataset file (--dataset_file_path, --image_set=query), a
list file (--list_images_path) or else every <name><feature_extension> in
--query_features_dir.

Example:
  python tools/query_global_index.py --index_dir=indexes/roxford5k \
    --query_features_dir=features/query --dataset_file_path=gnd_roxford5k.mat \
    --top_k=100 --report_recall --output_path=results/roxford5k_top100.json
"""

import json

from absl import app, flags

from delf_tf.retrieval import global_index
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_INDEX_DIR = flags.DEFINE_string(
    "index_dir", None,
    "Index directory to query (from build_global_index).")
_IMAGES = retrieval_flags.define_image_flags(
    image_set="query", features_dir_name="query_features_dir", features_dir=None,
    feature_extension=".delg_global", every_file_by_default=True)
_SEARCH = retrieval_flags.define_search_flags()
_TOP_K = flags.DEFINE_integer(
    "top_k", 100,
    "Index images returned per query.")
_EXACT = flags.DEFINE_bool(
    "exact", False,
    "Search exhaustively even if the index is approximate.")
_REPORT_RECALL = flags.DEFINE_bool(
    "report_recall", False,
    "Also search exactly and report recall@top_k of the index.")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", "",
    "JSON file of {query: [[index name, score], ...]} (not written if empty).")


@common.tool_main
def main():
    if not _INDEX_DIR.value or not _IMAGES.features_dir.value:
        raise app.UsageError("--index_dir and --query_features_dir are required")
    if _TOP_K.value < 1:
        raise app.UsageError(f"--top_k must be >= 1, got {_TOP_K.value}")
    names = _IMAGES.names()
    report = global_index.QueryFromFiles(
        _INDEX_DIR.value, names, _IMAGES.paths(names), top_k=_TOP_K.value,
        exact=_EXACT.value, report_recall=_REPORT_RECALL.value,
        output_path=_OUTPUT_PATH.value, **_SEARCH.values())
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    app.run(main)
