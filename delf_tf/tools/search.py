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
from delf_tf.tools import common, config_flags, retrieval_flags

__all__ = ["main"]

# One flag per SearchRequest field: its name, type, default and help (the class's docstring);
# the verification settings are a group of their own, with DELG retrieval's thresholds (1.0,
# 20 pixels).
_REQUEST = config_flags.define_config_flags(
    image_search.SearchRequest, exclude=("verification",),
    choices={"method": image_search.METHODS},
    defaults={"query_images": None, "index_images": None, "output_dir": "search_results"})
_VERIFICATION = retrieval_flags.define_verification_flags(
    descriptor_matching_threshold=1.0, ransac_residual_threshold=20.0)

flags.mark_flags_as_required(["query_images", "index_images"])


def _print_outcome(outcome: image_search.SearchOutcome, method: str) -> None:
    for name in outcome.query_names[:5]:
        best = outcome.results[name][0] if outcome.results[name] else None
        print(f"{name}: " + (f"{best.name} (score {best.score:.4g}"
                             + (f", {best.inliers} inliers" if best.inliers is not None else "")
                             + ")" if best else "no results"))
    print(f"Wrote {', '.join(outcome.written.values())} ({len(outcome.query_names)} queries, "
          f"{len(outcome.index_names)} database images, method {method})")


@common.tool_main
def main():
    request = _REQUEST.config(verification=_VERIFICATION.params())
    outcome = image_search.Search(request)
    _print_outcome(outcome, request.method)
    if outcome.failed:
        sys.exit(f"Error: {len(outcome.failed)} images could not be read: "
                 f"{', '.join(outcome.failed)}")


if __name__ == "__main__":
    app.run(main)
