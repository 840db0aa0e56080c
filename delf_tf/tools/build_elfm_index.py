"""Builds an ELFM search index file from per-image `.elfm` files.

The images are the index list of a Revisited dataset file (--dataset_file_path) or the
lines of --list_path. The index file holds K * D / 8 bytes of codes, one byte (the cluster
count) and the name per image; it is written atomically.

  python tools/build_elfm_index.py --features_dir=elfm/roxford5k/index \\
      --dataset_file_path=gnd_roxford5k.mat --output_path=elfm/roxford5k.elfmidx
"""

import sys

from absl import app, flags

from delf_tf.elfm import batch
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("features_dir", "/tmp/elfm_features/index",
                    "Directory holding the <name>.elfm files.")
flags.DEFINE_string("dataset_file_path", "",
                    "Revisited dataset file whose index list names the images (or --list_path).")
flags.DEFINE_string("list_path", "", "Text file with one image name per line.")
flags.DEFINE_string("output_path", "/tmp/elfm.elfmidx", "Index file to write.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    if bool(FLAGS.dataset_file_path) == bool(FLAGS.list_path):
        sys.exit("Error: give exactly one of --dataset_file_path and --list_path")
    with common.reported_errors():
        if FLAGS.dataset_file_path:
            from delf_tf.retrieval import dataset

            names = dataset.ReadDatasetFile(FLAGS.dataset_file_path)[1]
        else:
            with open(FLAGS.list_path, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        index = batch.BuildElfmIndex(FLAGS.features_dir, names, FLAGS.output_path)
    print(f"{len(index)} images, K={index.num_clusters}, D={index.dim}, "
          f"{index.bytes_per_image():.0f} bytes per image -> {FLAGS.output_path}")


if __name__ == "__main__":
    app.run(main)
