r"""Extracts DELF / DELG / DELG* features of many images as an Apache Beam pipeline:
the same per-image files as tools/extract_features.py and tools/extract_delg_features.py,
written atomically, on the DirectRunner (this machine) or any Beam runner.

Images come from one of: --list_images_path (one image path per line; outputs named by
file name), --dataset_file_path with --images_dir and --image_set (Revisited .mat; query
images cropped to their boxes), or --gldv2_csv_path with --images_dir (column id;
<id>.jpg or the nested a/b/c/<id>.jpg layout). Images whose files all exist are skipped,
so a killed or failed run is finished by running it again. A JSON report of done,
skipped and failed images goes to --report_path; the exit status is 1 if any failed.

--runner picks the Beam runner (default DirectRunner, in this process); every argument
after a lone `--` is a Beam pipeline option and passes through unchanged:
--direct_num_workers, --direct_running_mode, or a distributed runner's options (Dataflow:
--project, --region, --temp_location, ...; Flink: --flink_master, ...). On a distributed
runner the image and output paths must be reachable by the workers, and the workers need
delf_tf installed.

Example:
  python tools/beam_extract_features.py --method=delg \
    --delf_config_path=configs/r50delg_gldv2clean_config.pbtxt \
    --dataset_file_path=gnd_roxford5k.mat --images_dir=oxford5k/jpg --image_set=index \
    --output_dir=features/index -- --direct_num_workers=4 --direct_running_mode=multi_processing
"""

import json
import os
import sys

from absl import app, flags

from delf_tf.extraction import per_image

_METHOD = flags.DEFINE_enum(
    "method", "delg", sorted(per_image.JOBS),
    "delf: .delf local features; delg: .delg_global/.delg_local as the config enables; "
    "delg_star: as delg with binarized local descriptors.")
_DELF_CONFIG_PATH = flags.DEFINE_string(
    "delf_config_path", None, "DelfConfig pbtxt whose model_path is the exported SavedModel.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Directory of the feature files.")
_LIST_IMAGES_PATH = flags.DEFINE_string(
    "list_images_path", "", "Text file with one image path per line.")
_DATASET_FILE_PATH = flags.DEFINE_string(
    "dataset_file_path", "", "Revisited-format dataset file (.mat).")
_IMAGE_SET = flags.DEFINE_enum("image_set", "index", ["query", "index"],
                               "With --dataset_file_path: which images.")
_IMAGE_EXTENSION = flags.DEFINE_string(
    "image_extension", ".jpg", "With --dataset_file_path: image file extension.")
_GLDV2_CSV_PATH = flags.DEFINE_string(
    "gldv2_csv_path", "", "Google Landmarks v2 CSV with an id column.")
_IMAGES_DIR = flags.DEFINE_string(
    "images_dir", "", "With --dataset_file_path or --gldv2_csv_path: the images' directory.")
_RUNNER = flags.DEFINE_string(
    "runner", "", "Beam runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...); "
    "empty: the DirectRunner.")
_REPORT_PATH = flags.DEFINE_string(
    "report_path", "", "JSON report of done/skipped/failed images "
    "(default <output_dir>/beam_extraction_report.json).")


def _tasks() -> list[per_image.ImageTask]:
    sources = [bool(_LIST_IMAGES_PATH.value), bool(_DATASET_FILE_PATH.value),
               bool(_GLDV2_CSV_PATH.value)]
    if sum(sources) != 1:
        raise app.UsageError(
            "give exactly one of --list_images_path, --dataset_file_path, --gldv2_csv_path")
    if _LIST_IMAGES_PATH.value:
        return per_image.TasksFromImageList(_LIST_IMAGES_PATH.value)
    if not _IMAGES_DIR.value:
        raise app.UsageError("--images_dir is required with --dataset_file_path/--gldv2_csv_path")
    if _DATASET_FILE_PATH.value:
        return per_image.TasksFromRevisited(_DATASET_FILE_PATH.value, _IMAGES_DIR.value,
                                            _IMAGE_SET.value, _IMAGE_EXTENSION.value)
    return per_image.TasksFromGldv2Csv(_GLDV2_CSV_PATH.value, _IMAGES_DIR.value)


def main(argv):
    if not _DELF_CONFIG_PATH.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--delf_config_path and --output_dir are required")
    from delf_tf.beam import extraction  # needs the 'beam' extra

    job = per_image.MakeJob(_METHOD.value, _DELF_CONFIG_PATH.value, _OUTPUT_DIR.value)
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    report_path = _REPORT_PATH.value or os.path.join(
        _OUTPUT_DIR.value, "beam_extraction_report.json")
    pipeline_args = ([f"--runner={_RUNNER.value}"] if _RUNNER.value else []) + argv[1:]
    report = extraction.RunExtraction(_tasks(), job, report_path, pipeline_args)
    print(json.dumps({key: report[key] for key in ("done", "skipped", "failed")}))
    if report["failed"]:
        print("Failed images:\n" + "\n".join(f"  {r['name']}: {r['error']}"
                                              for r in report["failed_images"]),
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
