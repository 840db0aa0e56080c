r"""Aggregates local features (VLAD, ASMK or ASMK*, whole image) of many images as an
Apache Beam pipeline: the same `<name><ext>` DatumPairProto files as
tools/extract_aggregation.py (ext .vlad, .asmk or .asmk_star), written atomically, with the
codebook read once per worker. Regional aggregation stays on one machine
(tools/extract_aggregation.py).

Images come from --list_images_path (one image path per line; named by file name without
extension, as tools/beam_extract_features.py names its files) or --dataset_file_path with
--image_set (Revisited .mat). Images whose file exists are skipped, so a killed or failed run
is finished by running it again. A JSON report of done, skipped and failed images (e.g. a
missing feature file) goes to --report_path; the exit status is 1 if any failed.

--runner picks the Beam runner (default DirectRunner, in this process); every argument after
a lone `--` is a Beam pipeline option and passes through unchanged (--direct_num_workers,
Dataflow, Flink or Spark options). On a distributed runner the paths must be reachable by the
workers, and the workers need delf_tf installed.

Example:
  python tools/beam_extract_aggregation.py --dataset_file_path=gnd_roxford5k.mat \
    --image_set=index --features_dir=features/index --feature_extension=.delg_local \
    --aggregation_config_path=configs/index_aggregation_config.pbtxt \
    --output_aggregation_dir=aggregation/index -- --direct_num_workers=4
"""

import os

from absl import app, flags

from delf_tf.tools import common, extraction_flags

__all__ = ["main"]

_IMAGES = extraction_flags.define_beam_image_flags(with_features=True)
_AGGREGATION_CONFIG_PATH = flags.DEFINE_string(
    "aggregation_config_path", None,
    "AggregationConfig pbtxt (whole-image: use_regional_aggregation false); its codebook_path is "
    "read once per worker.")
_OUTPUT_AGGREGATION_DIR = flags.DEFINE_string(
    "output_aggregation_dir", None,
    "Directory where the aggregated representations go.")
_BEAM = extraction_flags.define_beam_flags("beam_aggregation_report.json",
                                           "output_aggregation_dir")


def main(argv):
    common.configure_logging()
    extraction_flags.require(_IMAGES.features_dir, _AGGREGATION_CONFIG_PATH,
                             _OUTPUT_AGGREGATION_DIR)
    from delf_tf.beam import aggregation  # needs the 'beam' extra

    with common.reported_errors():
        names = _IMAGES.names()
        job = aggregation.AggregationJob(_AGGREGATION_CONFIG_PATH.value,
                                         _IMAGES.features_dir.value,
                                         _OUTPUT_AGGREGATION_DIR.value,
                                         _IMAGES.feature_extension.value)
    os.makedirs(_OUTPUT_AGGREGATION_DIR.value, exist_ok=True)
    report = aggregation.RunAggregation(names, job,
                                        _BEAM.report_file(_OUTPUT_AGGREGATION_DIR.value),
                                        _BEAM.pipeline_args(argv))
    _BEAM.finish(report)


if __name__ == "__main__":
    app.run(main)
