"""Extracts DELG global and local features for a Revisited Oxford/Paris image set.

For each query (cropped to its ground-truth box, with the size limits scaled by
max(crop size) / max(image size)) or index image `<images_dir>/<name>.jpg`,
writes `<name>.delg_global` (DatumProto) and `<name>.delg_local` (DelfFeatures)
into --output_features_dir, as the config enables. Existing outputs are skipped
(--overwrite replaces them); an image that fails is logged and listed at the end
(exit status 1), the others are still written.

  python tools/extract_delg_features.py \\
      --delf_config_path=configs/r50delg_gld_config.pbtxt \\
      --dataset_file_path=gnd_roxford5k.mat --images_dir=roxford5k/jpg \\
      --image_set=query --output_features_dir=features/roxford5k/query
"""

import sys

from absl import app, flags

from delf_tf.extraction import batch
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("delf_config_path", "/tmp/delf_config_example.pbtxt",
                    "Path to the DelfConfig pbtxt of the DELG model.")
flags.DEFINE_string("dataset_file_path", "/tmp/gnd_roxford5k.mat",
                    "Revisited dataset ground-truth file (gnd_roxford5k.mat / gnd_rparis6k.mat).")
flags.DEFINE_string("images_dir", "/tmp/images", "Directory holding the <name>.jpg images.")
flags.DEFINE_enum("image_set", "query", list(batch.IMAGE_SETS),
                  "Which images to extract: query (cropped to their box) or index.")
flags.DEFINE_string("output_features_dir", "/tmp/features",
                    "Directory where the .delg_global / .delg_local files are written.")
flags.DEFINE_boolean("binarize_local_descriptors", False,
                     "DELG*: store local descriptors as sign bits packed into uint8.")
flags.DEFINE_integer("num_shards", 1,
                     "Split the image set into this many shards (one per machine/process).")
flags.DEFINE_integer("shard_index", 0, "Which shard this process extracts, in [0, num_shards).")
flags.DEFINE_boolean("overwrite", False,
                     "Extract every image again and replace existing outputs (atomically). "
                     "Default: images whose outputs exist are skipped (resuming a run); a "
                     "warning says how many.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors(RuntimeError):
        failures = batch.ExtractDelgFeatures(
                FLAGS.delf_config_path, FLAGS.dataset_file_path, FLAGS.images_dir,
                FLAGS.image_set, FLAGS.output_features_dir,
                binarize_local_descriptors=FLAGS.binarize_local_descriptors,
                num_shards=FLAGS.num_shards, shard_index=FLAGS.shard_index,
                overwrite=FLAGS.overwrite)
    if failures:
        sys.exit(f"{len(failures)} image(s) failed (see the log for why):\n"
                 + "\n".join(failures))


if __name__ == "__main__":
    app.run(main)
