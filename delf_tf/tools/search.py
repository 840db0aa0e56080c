r"""Searches a folder of database images for each query image: features -> ranked results.

Extracts features of the query and database images with an exported model (the DelfConfig's
model_path; cached under --output_dir/features, so a second run only ranks), ranks the
database for every query and writes --output_dir/results.csv and results.json (image names,
paths, scores and inlier counts), optionally a Google Landmarks v2 retrieval predictions CSV.

Methods (--method):
  delg_global  global descriptors only (cosine similarity).
  delg         global ranking, top --num_to_rerank re-ranked by geometric verification
               (RANSAC inliers of the local features) [default].
  delg_star    as delg with binarized local descriptors (DELG*).
  delf         local features only: every database image verified, ranked by inliers.
  asmk         local features aggregated with ASMK* (HOW's retrieval, e.g. with
               --delf_config_path=how_r18_config): --codebook_path, or a codebook of
               --asmk_num_words trained on the database features.
  elfm         ELFM binary cluster codes of --elfm_model_path (a DELG checkpoint or an ELFM
               export), ranked by ELFM similarity; no DelfConfig needed.

Images are named by file name without extension; a database image named like the query is
left out of that query's results, so queries may come from the database folder itself.

Example:
  delf-search --query_images=my_queries/ --index_images=my_photos/ \
      --delf_config_path=my_delg_config.pbtxt --output_dir=search_results
  python tools/search.py --query_images='queries/*.jpg' --index_images=index_list.txt ...
"""

import sys

from absl import app, flags

from delf_tf.retrieval import image_search
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_QUERY_IMAGES = flags.DEFINE_string(
    "query_images", None,
    "Query images: a folder (searched recursively), a text file with one image path per "
    "line, or a glob pattern in quotes.")
_INDEX_IMAGES = flags.DEFINE_string(
    "index_images", None,
    "Database images: a folder (searched recursively), a text file with one image path per "
    "line, or a glob pattern in quotes.")
_DELF_CONFIG_PATH = flags.DEFINE_string(
    "delf_config_path", None,
    "DelfConfig pbtxt (path, or the name of a shipped config) whose model_path is the "
    "exported model; set its score_threshold from the training job's attention_stats.json "
    "(delf-write-config). Every method but elfm needs it.")
_ELFM_MODEL_PATH = flags.DEFINE_string(
    "elfm_model_path", None,
    "For elfm: a DELG checkpoint prefix (with its .json sidecar) or an ELFM SavedModel "
    "(delf-export-elfm-model).")
_METHOD = flags.DEFINE_enum(
    "method", "delg", list(image_search.METHODS),
    "Ranking method (see the description above).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "search_results",
    "Where results.csv, results.json and the feature cache go.")
_FEATURES_DIR = flags.DEFINE_string(
    "features_dir", None,
    "Feature cache (default <output_dir>/features); images whose feature files exist there "
    "are not extracted again: delete it after changing the model or config.")
_NUM_RESULTS = flags.DEFINE_integer(
    "num_results", 100,
    "Results written per query.")
_NUM_TO_RERANK = flags.DEFINE_integer(
    "num_to_rerank", image_search.DEFAULT_NUM_TO_RERANK,
    "Database images verified per query (delg, delg_star).")
# DELG retrieval's thresholds (1.0, 20 pixels).
_VERIFICATION = retrieval_flags.define_verification_flags(
    descriptor_matching_threshold=1.0, ransac_residual_threshold=20.0)
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", None,
    "For asmk: visual-word codebook (DatumProto, e.g. from delf-train-asmk-codebook); "
    "default: train one on the database features and save it as <output_dir>/codebook.datum.")
_ASMK_NUM_WORDS = flags.DEFINE_integer(
    "asmk_num_words", 65536,
    "For asmk without --codebook_path: words of the codebook trained on the database (at "
    "most a tenth of its descriptors).")
_GLDV2_PREDICTIONS_PATH = flags.DEFINE_string(
    "gldv2_predictions_path", None,
    "Also write a Google Landmarks v2 retrieval predictions CSV (id,images with the best 100 "
    "database ids) here, for delf-compute-retrieval-metrics.")

flags.mark_flags_as_required(["query_images", "index_images"])


def _print_outcome(outcome: image_search.SearchOutcome) -> None:
    for name in outcome.query_names[:5]:
        best = outcome.results[name][0] if outcome.results[name] else None
        print(f"{name}: " + (f"{best.name} (score {best.score:.4g}"
                             + (f", {best.inliers} inliers" if best.inliers is not None else "")
                             + ")" if best else "no results"))
    print(f"Wrote {', '.join(outcome.written.values())} ({len(outcome.query_names)} queries, "
          f"{len(outcome.index_names)} database images, method {_METHOD.value})")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        outcome = image_search.Search(image_search.SearchRequest(
            query_images=_QUERY_IMAGES.value, index_images=_INDEX_IMAGES.value,
            output_dir=_OUTPUT_DIR.value, method=_METHOD.value,
            delf_config_path=_DELF_CONFIG_PATH.value, elfm_model_path=_ELFM_MODEL_PATH.value,
            features_dir=_FEATURES_DIR.value, num_results=_NUM_RESULTS.value,
            num_to_rerank=_NUM_TO_RERANK.value, verification=_VERIFICATION.params(),
            codebook_path=_CODEBOOK_PATH.value, asmk_num_words=_ASMK_NUM_WORDS.value,
            gldv2_predictions_path=_GLDV2_PREDICTIONS_PATH.value))
    _print_outcome(outcome)
    if outcome.failed:
        sys.exit(f"Error: {len(outcome.failed)} images could not be read: "
                 f"{', '.join(outcome.failed)}")


if __name__ == "__main__":
    app.run(main)
