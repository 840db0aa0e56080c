r"""Samples local descriptors for codebook training as an Apache Beam pipeline, and
optionally trains the k-means codebook on the sample here.

Every image gives up to --descriptors_per_image of its float local descriptors, drawn without
replacement by a generator seeded with the image's name, so the sample is the same on every
runner and on one machine (delf_tf.beam.aggregation.SampleDescriptors). The sample, float32
[M, D] with the images in name order, is written atomically to --output_path (.npy). With
--codebook_path, k-means (--num_clusters words) runs on the sample and the codebook is
written there as a DatumProto float32 [K, D], the file tools/cluster_delf_features.py writes
and AggregationConfig.codebook_path reads.

Images come from --list_images_path (one image path per line; named by file name without
extension) or --dataset_file_path with --image_set (Revisited .mat). --runner picks the Beam
runner (default DirectRunner); arguments after a lone `--` are Beam pipeline options.

Example:
  python tools/beam_sample_descriptors.py --dataset_file_path=gnd_roxford5k.mat \
    --features_dir=features/index --feature_extension=.delg_local \
    --descriptors_per_image=100 --output_path=codebook_sample.npy \
    --codebook_path=codebook/codebook.datum --num_clusters=1024
"""

import os

from absl import app, flags

from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_IMAGES = extraction_flags.define_beam_image_flags(with_features=True)
_DESCRIPTORS_PER_IMAGE = flags.DEFINE_integer(
    "descriptors_per_image", 100,
    "At most this many descriptors from each image (all of an image with fewer).")
_OUTPUT_PATH = flags.DEFINE_string(
    "output_path", None,
    "Where the sample goes: .npy, float32 [M, D].")
_CODEBOOK_PATH = flags.DEFINE_string(
    "codebook_path", "",
    "If set, train a k-means codebook on the sample and write it here (DatumProto float32 "
    "[num_clusters, D]).")
_NUM_CLUSTERS = flags.DEFINE_integer(
    "num_clusters", 1024,
    "With --codebook_path: codebook size K (at most the sample size).")
_NUM_ITERATIONS = flags.DEFINE_integer(
    "num_iterations", 50,
    "With --codebook_path: maximum k-means iterations.")
_SEED = flags.DEFINE_integer(
    "seed", 0,
    "With --codebook_path: seed of the k-means initialisation.")
_BEAM = extraction_flags.define_beam_flags()


def _sample(names: list[str], pipeline_args: list[str]):
    from delf_tf.beam import aggregation  # needs the 'beam' extra

    features_dir, extension = _IMAGES.features_dir.value, _IMAGES.feature_extension.value
    missing = [n for n in names if not os.path.isfile(os.path.join(features_dir, n + extension))]
    if missing:
        raise FileNotFoundError(f"{len(missing)} feature file(s) missing in {features_dir}, "
                                f"e.g. {missing[0]}{extension}")
    sample = aggregation.RunCodebookSampling(names, features_dir, extension,
                                             _DESCRIPTORS_PER_IMAGE.value, _OUTPUT_PATH.value,
                                             pipeline_args)
    print(f"Sampled {sample.shape[0]} descriptors of dimension {sample.shape[1]} from "
          f"{len(names)} images -> {_OUTPUT_PATH.value}")
    return sample


def main(argv):
    common.configure_logging()
    extraction_flags.require(_IMAGES.features_dir, _OUTPUT_PATH)
    if _DESCRIPTORS_PER_IMAGE.value < 1:
        raise app.UsageError(
            f"--descriptors_per_image must be >= 1, got {_DESCRIPTORS_PER_IMAGE.value}")
    from delf_tf.aggregation import codebook as codebook_lib

    for path in (_OUTPUT_PATH.value, _CODEBOOK_PATH.value):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    with common.reported_errors():
        sample = _sample(_IMAGES.names(), _BEAM.pipeline_args(argv))
        if _CODEBOOK_PATH.value:
            codebook = codebook_lib.TrainCodebook(sample, _NUM_CLUSTERS.value,
                                                  _NUM_ITERATIONS.value, _SEED.value)
            codebook_lib.WriteCodebook(codebook, _CODEBOOK_PATH.value)
            print(f"Codebook of {len(codebook)} words -> {_CODEBOOK_PATH.value}")


if __name__ == "__main__":
    app.run(main)
