"""Extracts DELF local features for a list of images.

Reads image paths (one per line) from --list_images_path and writes
`<output_dir>/<basename>.delf` (DelfFeatures) for each; two images with the same
basename stop the tool before anything is written. Existing outputs are skipped
(--overwrite replaces them). An image that fails is logged and listed at the end
(exit status 1); the others are still written.

  python tools/extract_features.py --config_path=configs/delf_config_example.pbtxt \\
      --list_images_path=list_images.txt --output_dir=features
"""

import sys

from absl import app, flags

from delf_tf.extraction import batch
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("config_path", "delf_config_example.pbtxt",
                    "Path to the DelfConfig pbtxt (model_path, scales, thresholds, PCA).")
flags.DEFINE_string("list_images_path", "list_images.txt",
                    "Text file with one image path per line.")
flags.DEFINE_string("output_dir", "test_features",
                    "Directory where the .delf feature files are written.")
flags.DEFINE_integer("num_shards", 1,
                     "Split the image list into this many shards (one per machine/process).")
flags.DEFINE_integer("shard_index", 0, "Which shard this process extracts, in [0, num_shards).")
flags.DEFINE_boolean("overwrite", False,
                     "Extract every image again and replace existing outputs (atomically). "
                     "Default: images whose outputs exist are skipped (resuming a run); a "
                     "warning says how many.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors(RuntimeError):
        failures = batch.ExtractDelfFeatures(FLAGS.config_path, FLAGS.list_images_path,
                                             FLAGS.output_dir, num_shards=FLAGS.num_shards,
                                             shard_index=FLAGS.shard_index,
                                             overwrite=FLAGS.overwrite)
    if failures:
        sys.exit(f"{len(failures)} image(s) failed (see the log for why):\n"
                 + "\n".join(failures))


if __name__ == "__main__":
    app.run(main)
