"""Draws the ELFM local match map of an image pair (as the paper's Fig. 2) next to the
L2-norm map: rows query / target, columns image | match map | L2-norm map. The match map
shows, per location, the share of S(q, c) its cluster contributes.

  python tools/draw_elfm_match_map.py --model_path=/tmp/delg/delf_weights \\
      --query_image=q.jpg --target_image=t.jpg --output_path=match_map.png
"""

import numpy as np
from absl import app, flags

from delf_tf import utils
from delf_tf.elfm import extraction, visualization
from delf_tf.elfm import functional as F
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("model_path", "/tmp/delg/delf_weights",
                    "DELG checkpoint prefix or ELFM SavedModel directory.")
flags.DEFINE_string("query_image", "", "Query image path.")
flags.DEFINE_string("target_image", "", "Target (database) image path.")
flags.DEFINE_string("output_path", "/tmp/elfm_match_map.png", "PNG to write.")
flags.DEFINE_integer("num_features", F.DEFAULT_NUM_FEATURES, "N: local vectors kept.")
flags.DEFINE_integer("num_clusters", F.DEFAULT_NUM_CLUSTERS, "K: clusters per image.")
flags.DEFINE_integer("max_image_size", extraction.DEFAULT_MAX_IMAGE_SIZE,
                     "Longer image side limit (-1: none).")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        extractor = extraction.ElfmExtractor(
                FLAGS.model_path, num_features=FLAGS.num_features,
                num_clusters=FLAGS.num_clusters, max_image_size=FLAGS.max_image_size)
        query = np.asarray(utils.RgbLoader(FLAGS.query_image))
        target = np.asarray(utils.RgbLoader(FLAGS.target_image))
        score = visualization.save_match_map(extractor, query, target, FLAGS.output_path)
    print(f"S(q, c) = {score:.4f} -> {FLAGS.output_path}")


if __name__ == "__main__":
    app.run(main)
