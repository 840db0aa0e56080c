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

import json
import os
import sys

from absl import app, flags

from delf_tf.tools import common

_LIST_IMAGES_PATH = flags.DEFINE_string(
    "list_images_path", "", "Text file with one image path per line (names: file names "
    "without extension).")
_DATASET_FILE_PATH = flags.DEFINE_string(
    "dataset_file_path", "", "Revisited-format dataset file (.mat).")
_IMAGE_SET = flags.DEFINE_enum("image_set", "index", ["query", "index"],
                               "With --dataset_file_path: which images.")
_FEATURES_DIR = flags.DEFINE_string(
    "features_dir", None, "Directory of the local feature files <name><feature_extension>.")
_FEATURE_EXTENSION = flags.DEFINE_string(
    "feature_extension", ".delf",
    "Extension of the local feature files (.delf for DELF, .delg_local for DELG and HOW).")
_AGGREGATION_CONFIG_PATH = flags.DEFINE_string(
    "aggregation_config_path", None,
    "AggregationConfig pbtxt (whole-image: use_regional_aggregation false); its "
    "codebook_path is read once per worker.")
_OUTPUT_AGGREGATION_DIR = flags.DEFINE_string(
    "output_aggregation_dir", None, "Directory where the aggregated representations go.")
_RUNNER = flags.DEFINE_string(
    "runner", "", "Beam runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...); "
    "empty: the DirectRunner.")
_REPORT_PATH = flags.DEFINE_string(
    "report_path", "", "JSON report of done/skipped/failed images "
    "(default <output_aggregation_dir>/beam_aggregation_report.json).")


def main(argv):
    common.configure_logging()
    for flag in (_FEATURES_DIR, _AGGREGATION_CONFIG_PATH, _OUTPUT_AGGREGATION_DIR):
        if not flag.value:
            raise app.UsageError(f"--{flag.name} is required")
    from delf_tf.beam import aggregation  # needs the 'beam' extra

    try:
        names = aggregation.ImageNames(_LIST_IMAGES_PATH.value, _DATASET_FILE_PATH.value,
                                       _IMAGE_SET.value)
        job = aggregation.AggregationJob(_AGGREGATION_CONFIG_PATH.value, _FEATURES_DIR.value,
                                         _OUTPUT_AGGREGATION_DIR.value, _FEATURE_EXTENSION.value)
    except (OSError, ValueError) as e:
        sys.exit(f"Error: {e}")
    os.makedirs(_OUTPUT_AGGREGATION_DIR.value, exist_ok=True)
    report_path = _REPORT_PATH.value or os.path.join(
        _OUTPUT_AGGREGATION_DIR.value, "beam_aggregation_report.json")
    pipeline_args = ([f"--runner={_RUNNER.value}"] if _RUNNER.value else []) + argv[1:]
    report = aggregation.RunAggregation(names, job, report_path, pipeline_args)
    print(json.dumps({key: report[key] for key in ("done", "skipped", "failed")}))
    if report["failed"]:
        print("Failed images:\n" + "\n".join(f"  {r['name']}: {r['error']}"
                                              for r in report["failed_images"]),
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
