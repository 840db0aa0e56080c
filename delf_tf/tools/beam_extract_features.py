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

import os

from absl import app, flags

from delf_tf.extraction import per_image
from delf_tf.tools import common, extraction_flags, retrieval_flags

__all__ = ["main"]

_METHOD = flags.DEFINE_enum(
    "method", "delg", sorted(per_image.JOBS),
    "delf: .delf local features; delg: .delg_global/.delg_local as the config enables; delg_star: "
    "as delg with binarized local descriptors; how: .delg_local from a HOW SavedModel with a "
    "local-only config (configs/how_r18_config.pbtxt); elfm: .elfm binary codes (and .elfm_float "
    "with --save_float_descriptors) from --model_path.")
_DELF_CONFIG_PATH = flags.DEFINE_string(
    "delf_config_path", None,
    "delf/delg/delg_star/how: DelfConfig pbtxt whose model_path is the exported SavedModel.")
# --method=elfm only: the ELFM model and its settings.
_ELFM = retrieval_flags.define_elfm_model_flags(model_path=None)
_SAVE_FLOAT_DESCRIPTORS = flags.DEFINE_boolean(
    "save_float_descriptors", False,
    "With --method=elfm: also write <name>.elfm_float (float representatives, ~8 KB per "
    "cluster).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None,
    "Directory of the feature files.")
_IMAGES = extraction_flags.define_beam_image_flags(with_features=False)
_IMAGE_EXTENSION = flags.DEFINE_string(
    "image_extension", ".jpg",
    "With --dataset_file_path: image file extension.")
_GLDV2_CSV_PATH = flags.DEFINE_string(
    "gldv2_csv_path", "",
    "Google Landmarks v2 CSV with an id column.")
_IMAGES_DIR = flags.DEFINE_string(
    "images_dir", "",
    "With --dataset_file_path or --gldv2_csv_path: the images' directory.")
_BEAM = extraction_flags.define_beam_flags("beam_extraction_report.json", "output_dir")


def _tasks() -> list[per_image.ImageTask]:
    list_images_path, dataset_file_path = (_IMAGES.list_images_path.value,
                                           _IMAGES.dataset_file_path.value)
    if sum(map(bool, (list_images_path, dataset_file_path, _GLDV2_CSV_PATH.value))) != 1:
        raise app.UsageError(
            "give exactly one of --list_images_path, --dataset_file_path, --gldv2_csv_path")
    if list_images_path:
        return per_image.TasksFromImageList(list_images_path)
    if not _IMAGES_DIR.value:
        raise app.UsageError("--images_dir is required with --dataset_file_path/--gldv2_csv_path")
    if dataset_file_path:
        return per_image.TasksFromRevisited(dataset_file_path, _IMAGES_DIR.value,
                                            _IMAGES.image_set.value, _IMAGE_EXTENSION.value)
    return per_image.TasksFromGldv2Csv(_GLDV2_CSV_PATH.value, _IMAGES_DIR.value)


def _job() -> per_image.ExtractionJob:
    extraction_flags.require(_OUTPUT_DIR)
    if _METHOD.value != "elfm":
        if not _DELF_CONFIG_PATH.value:
            raise app.UsageError(f"--method={_METHOD.value} needs --delf_config_path")
        return per_image.MakeJob(_METHOD.value, _DELF_CONFIG_PATH.value, _OUTPUT_DIR.value)
    if not _ELFM.model_path.value:
        raise app.UsageError("--method=elfm needs --model_path")
    try:
        options = _ELFM.options()
    except ValueError as e:
        raise app.UsageError(f"--image_scales: {e}") from e
    return per_image.MakeJob("elfm", _ELFM.model_path.value, _OUTPUT_DIR.value,
                             save_float=_SAVE_FLOAT_DESCRIPTORS.value, **options)


def main(argv):
    common.configure_logging()
    job = _job()
    from delf_tf.beam import extraction  # needs the 'beam' extra

    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    report = extraction.RunExtraction(_tasks(), job, _BEAM.report_file(_OUTPUT_DIR.value),
                                      _BEAM.pipeline_args(argv))
    _BEAM.finish(report)


if __name__ == "__main__":
    app.run(main)
