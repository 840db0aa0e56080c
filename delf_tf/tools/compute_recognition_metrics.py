r"""Google Landmarks v2 recognition metrics of a predictions CSV against a solution CSV.

Prints, for the Public and Private splits: GAP (micro average precision), GAP
over landmark images only (non-landmark queries ignored) and top-1 accuracy.

Example:
  python tools/compute_recognition_metrics.py --solution_path=recognition_solution.csv \
      --predictions_path=my_predictions.csv
"""

from absl import app

from delf_tf.retrieval import gldv2
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_FILES = retrieval_flags.define_metric_file_flags(
    solution_columns="id,landmarks,Usage (landmarks space separated, empty for non-landmark "
    "images; Usage Public/Private/Ignored)",
    predictions_columns="id,landmarks with '<landmark_id> <score>'")


@common.tool_main
def main():
    print(gldv2.recognition_report(_FILES.solution_path.value, _FILES.predictions_path.value))


if __name__ == "__main__":
    app.run(main)
