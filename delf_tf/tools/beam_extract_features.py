r"""Extracts DELF / DELG / DELG* / HOW / ELFM features of many images as an Apache Beam
pipeline: the same per-image files as tools/extract_features.py,
tools/extract_delg_features.py (DELG, DELG*, and HOW with a HOW config) and
tools/extract_elfm_features.py, written atomically, on the DirectRunner (this machine) or
any Beam runner. delf, delg, delg_star and how read --delf_config_path (its model_path is
the SavedModel); elfm reads --model_path and the ELFM flags instead.

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
  python tools/beam_extract_features.py --method=elfm --model_path=exports/elfm \
    --dataset_file_path=gnd_roxford5k.mat --images_dir=oxford5k/jpg --image_set=index \
    --output_dir=elfm/index
"""

import json
import os
import sys

from absl import app, flags

from delf_tf.elfm import extraction as elfm_extraction
from delf_tf.elfm import functional as elfm_functional
from delf_tf.extraction import per_image
from delf_tf.tools import common

_METHOD = flags.DEFINE_enum(
    "method", "delg", sorted(per_image.JOBS),
    "delf: .delf local features; delg: .delg_global/.delg_local as the config enables; "
    "delg_star: as delg with binarized local descriptors; how: .delg_local from a HOW "
    "SavedModel with a local-only config (configs/how_r18_config.pbtxt); elfm: .elfm binary "
    "codes (and .elfm_float with --save_float_descriptors) from --model_path.")
_DELF_CONFIG_PATH = flags.DEFINE_string(
    "delf_config_path", None, "delf/delg/delg_star/how: DelfConfig pbtxt whose model_path is "
    "the exported SavedModel.")
_MODEL_PATH = flags.DEFINE_string(
    "model_path", None, "elfm: DELG checkpoint prefix (with its .json sidecar) or an ELFM "
    "SavedModel directory written by export_elfm_model.py.")
_IMAGE_SCALES = flags.DEFINE_list(
    "image_scales", [f"{s:.6f}" for s in elfm_extraction.DEFAULT_SCALES],
    "elfm: pyramid scales whose local vectors are merged (the paper's five).")
_NUM_FEATURES = flags.DEFINE_integer(
    "num_features", elfm_functional.DEFAULT_NUM_FEATURES,
    "elfm: N, local vectors kept, by largest L2 norm over all scales.")
_NUM_CLUSTERS = flags.DEFINE_integer(
    "num_clusters", elfm_functional.DEFAULT_NUM_CLUSTERS, "elfm: K, k-means clusters per image.")
_GEM_POWER = flags.DEFINE_float(
    "gem_power", elfm_functional.DEFAULT_GEM_POWER, "elfm: GeM power p pooling each cluster.")
_MAX_IMAGE_SIZE = flags.DEFINE_integer(
    "max_image_size", elfm_extraction.DEFAULT_MAX_IMAGE_SIZE,
    "elfm: images are shrunk so their longer side is at most this (-1: never); "
    "query crops use this times crop size / image size.")
_SAVE_FLOAT = flags.DEFINE_boolean(
    "save_float_descriptors", False,
    "elfm: also write <name>.elfm_float (float representatives, ~8 KB per cluster).")
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


def _job() -> per_image.ExtractionJob:
    if not _OUTPUT_DIR.value:
        raise app.UsageError("--output_dir is required")
    if _METHOD.value != "elfm":
        if not _DELF_CONFIG_PATH.value:
            raise app.UsageError(f"--method={_METHOD.value} needs --delf_config_path")
        return per_image.MakeJob(_METHOD.value, _DELF_CONFIG_PATH.value, _OUTPUT_DIR.value)
    if not _MODEL_PATH.value:
        raise app.UsageError("--method=elfm needs --model_path")
    try:
        scales = [float(s) for s in _IMAGE_SCALES.value]
    except ValueError as e:
        raise app.UsageError(f"--image_scales: {e}") from e
    return per_image.MakeJob(
        "elfm", _MODEL_PATH.value, _OUTPUT_DIR.value, save_float=_SAVE_FLOAT.value,
        scales=scales, num_features=_NUM_FEATURES.value, num_clusters=_NUM_CLUSTERS.value,
        gem_power=_GEM_POWER.value, max_image_size=_MAX_IMAGE_SIZE.value)


def main(argv):
    common.configure_logging()
    job = _job()
    from delf_tf.beam import extraction  # needs the 'beam' extra

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
