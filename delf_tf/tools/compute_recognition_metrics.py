r"""Google Landmarks v2 recognition metrics of a predictions CSV against a solution CSV.

Prints, for the Public and Private splits: GAP (micro average precision), GAP
over landmark images only (non-landmark queries ignored) and top-1 accuracy.

Example:
  python tools/compute_recognition_metrics.py --solution_path=recognition_solution.csv \
      --predictions_path=my_predictions.csv
"""

import sys

from absl import app, flags

from delf_tf.retrieval import gldv2

flags.DEFINE_string("solution_path", "/tmp/solution.csv",
                    "Solution CSV: id,landmarks,Usage (landmarks space separated, empty "
                    "for non-landmark images; Usage Public/Private/Ignored).")
flags.DEFINE_string("predictions_path", "/tmp/predictions.csv",
                    "Predictions CSV: id,landmarks with '<landmark_id> <score>'.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        print(gldv2.recognition_report(FLAGS.solution_path, FLAGS.predictions_path))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"Error: {e}")


if __name__ == "__main__":
    app.run(main)
