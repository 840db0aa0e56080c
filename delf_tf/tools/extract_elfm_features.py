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

from absl import app, flags

from delf_tf.elfm import batch
from delf_tf.tools import common, extraction_flags, retrieval_flags

__all__ = ["main"]

_MODEL = retrieval_flags.define_elfm_model_flags()
_IMAGES = extraction_flags.define_revisited_set_flags(
    "/tmp/elfm_features", "<name>.elfm (and <name>.elfm_float).")
_SAVE_FLOAT_DESCRIPTORS = flags.DEFINE_boolean(
    "save_float_descriptors", False,
    "Also write <name>.elfm_float (float representatives, ~8 KB per cluster).")
_SHARDS = extraction_flags.define_shard_flags()


@common.tool_main
def main():
    options = _MODEL.options()
    _SHARDS.extract_with(batch.ExtractElfmFeatures, _MODEL.model_path.value,
                         *_IMAGES.arguments(), failed="could not be read",
                         save_float=_SAVE_FLOAT_DESCRIPTORS.value, **options)


if __name__ == "__main__":
    app.run(main)
