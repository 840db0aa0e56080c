"""Extracts ELFM features (expressive local features, Hu & Bors 2022) for a Revisited
Oxford/Paris-style image set.

For each query (cropped to its ground-truth box) or index image `<images_dir>/<name>.jpg`
writes `<name>.elfm` into --output_features_dir: a DatumPairProto whose first datum is the
packed binary codes, uint32 [k, 2 * ceil(D / 64)] (one row per cluster, k <= num_clusters;
bit d of a code is bit d % 32 of word d // 32), and whose second is uint32 [1] = D. With
--save_float_descriptors also `<name>.elfm_float`, a float32 DatumProto [k, D] of the
whitened, L2-normalised cluster representatives (for the cosine ablation).

  python tools/extract_elfm_features.py --model_path=/tmp/delg/delf_weights \\
      --dataset_file_path=gnd_roxford5k.mat --images_dir=roxford5k/jpg \\
      --image_set=index --output_features_dir=elfm/roxford5k/index
"""

import sys

from absl import app, flags

from delf_tf.elfm import batch, extraction
from delf_tf.elfm import functional as F
from delf_tf.tools import common

FLAGS = flags.FLAGS

flags.DEFINE_string("model_path", "/tmp/delg/delf_weights",
                    "DELG checkpoint prefix (with its .json sidecar) or an ELFM SavedModel "
                    "directory written by export_elfm_model.py.")
flags.DEFINE_string("dataset_file_path", "/tmp/gnd_roxford5k.mat",
                    "Revisited dataset ground-truth file (gnd_roxford5k.mat / gnd_rparis6k.mat).")
flags.DEFINE_string("images_dir", "/tmp/images", "Directory holding the <name>.jpg images.")
flags.DEFINE_enum("image_set", "query", ["query", "index"],
                  "Which images to extract: query (cropped to their box) or index.")
flags.DEFINE_string("output_features_dir", "/tmp/elfm_features",
                    "Directory where the .elfm (and .elfm_float) files are written.")
flags.DEFINE_list("image_scales", [f"{s:.6f}" for s in extraction.DEFAULT_SCALES],
                  "Pyramid scales whose local vectors are merged (the paper's five).")
flags.DEFINE_integer("num_features", F.DEFAULT_NUM_FEATURES,
                     "N: local vectors kept, by largest L2 norm over all scales.")
flags.DEFINE_integer("num_clusters", F.DEFAULT_NUM_CLUSTERS, "K: k-means clusters per image.")
flags.DEFINE_float("gem_power", F.DEFAULT_GEM_POWER, "GeM power p pooling each cluster.")
flags.DEFINE_integer("max_image_size", extraction.DEFAULT_MAX_IMAGE_SIZE,
                     "Images are shrunk so their longer side is at most this (-1: never); "
                     "query crops use this times crop size / image size.")
flags.DEFINE_boolean("save_float_descriptors", False,
                     "Also write <name>.elfm_float (float representatives, ~8 KB per cluster).")
flags.DEFINE_integer("num_shards", 1, "Split the image set into this many shards.")
flags.DEFINE_integer("shard_index", 0, "Which shard this process extracts, in [0, num_shards).")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    with common.reported_errors():
        scales = [float(s) for s in FLAGS.image_scales]
        failures = batch.ExtractElfmFeatures(
                FLAGS.model_path, FLAGS.dataset_file_path, FLAGS.images_dir, FLAGS.image_set,
                FLAGS.output_features_dir, save_float=FLAGS.save_float_descriptors,
                num_shards=FLAGS.num_shards, shard_index=FLAGS.shard_index, scales=scales,
                num_features=FLAGS.num_features, num_clusters=FLAGS.num_clusters,
                gem_power=FLAGS.gem_power, max_image_size=FLAGS.max_image_size)
    if failures:
        sys.exit(f"{len(failures)} image(s) could not be read:\n" + "\n".join(failures))


if __name__ == "__main__":
    app.run(main)
