r"""Builds a persistent global-descriptor index from .delg_global files: exact, or
approximate through faiss (IVF, IVF with 8-bit vectors, or HNSW). Build once, then
query many times with tools/query_global_index.py.

Images come from a Revisited dataset file (--dataset_file_path, --image_set), a list
file (--list_images_path, one name per line), or else every <name><feature_extension>
in --features_dir. Prints the index statistics (images, dimension, build time, bytes
per image on disk) as JSON.

Example:
  python tools/build_global_index.py --features_dir=features/index \
    --dataset_file_path=gnd_roxford5k.mat --kind=hnsw --output_dir=indexes/roxford5k
"""

import json
import os

from absl import app, flags

from delf_tf.retrieval import global_index
from delf_tf.tools import common, retrieval_flags

__all__ = ["main"]

_IMAGES = retrieval_flags.define_image_flags(
    image_set="index", features_dir=None, feature_extension=".delg_global",
    every_file_by_default=True)
_SEARCH = retrieval_flags.define_search_flags(when_querying=False)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Index directory (created; an index already there is replaced).")
_KIND = flags.DEFINE_enum(
    "kind", "exact", list(global_index.KINDS),
    "exact: exhaustive matrix products; ivf: faiss IVF-Flat; ivf_sq8: IVF with 8-bit "
    "vectors (4x smaller); hnsw: faiss HNSW-Flat graph.")
_NLIST = flags.DEFINE_integer(
    "nlist", 0,
    "Number of IVF cells (0: 4 sqrt(N), at most N / 39).")
_HNSW_M = flags.DEFINE_integer(
    "hnsw_m", 32,
    "HNSW links per node.")
_EF_CONSTRUCTION = flags.DEFINE_integer(
    "ef_construction", 80,
    "HNSW beam width when building.")
_TRAIN_SIZE = flags.DEFINE_integer(
    "train_size", 0,
    "Size of the IVF k-means training sample (0: min(N, 256 nlist)).")
_SEED = flags.DEFINE_integer(
    "seed", 0,
    "Seed of the training sample and k-means.")


def main(argv):
    common.configure_logging()
    common.check_no_arguments(argv)
    if not _IMAGES.features_dir.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--features_dir and --output_dir are required")
    with common.reported_errors():
        params = global_index.GlobalIndexParams(
            kind=_KIND.value, nlist=_NLIST.value, hnsw_m=_HNSW_M.value,
            ef_construction=_EF_CONSTRUCTION.value, train_size=_TRAIN_SIZE.value,
            seed=_SEED.value, **_SEARCH.options())
        index, stats = global_index.BuildFromFiles(
            _IMAGES.names(), _IMAGES.features_dir.value, _IMAGES.feature_extension.value, params)
        index.Save(_OUTPUT_DIR.value)
    stats["bytes_per_image"] = index.BytesPerImage(_OUTPUT_DIR.value)
    stats["output_dir"] = os.path.abspath(_OUTPUT_DIR.value)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    app.run(main)
