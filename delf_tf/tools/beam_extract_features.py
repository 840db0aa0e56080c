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

from absl import app

from delf_tf.extraction import per_image
from delf_tf.tools import common, config_flags, extraction_flags, retrieval_flags

__all__ = ["main"]

# One flag per ExtractionParams field: its name, type, default and help (the class docstring).
_PARAMS = config_flags.define_config_flags(per_image.ExtractionParams,
                                           choices={"method": sorted(per_image.JOBS)})
# --method=elfm only: the ELFM model and its settings.
_ELFM = retrieval_flags.define_elfm_model_flags(model_path=None)
_IMAGES = extraction_flags.define_beam_image_flags(with_features=False)
_BEAM = extraction_flags.define_beam_flags("beam_extraction_report.json", "output_dir")


def _job(params: per_image.ExtractionParams) -> per_image.ExtractionJob:
    """The job of the flags; app.UsageError when they do not name one."""
    extraction_flags.require(_PARAMS.fields["output_dir"].holder)
    try:
        elfm_options = _ELFM.options() if params.method == "elfm" else {}
    except ValueError as e:
        raise app.UsageError(f"--image_scales: {e}") from e
    try:
        return params.job(_ELFM.model_path.value, **elfm_options)
    except ValueError as e:
        raise app.UsageError(str(e)) from e


def main(argv):
    common.configure_logging()
    params = _PARAMS.config()
    job = _job(params)
    from delf_tf.beam import extraction  # needs the 'beam' extra

    with common.reported_errors():
        tasks = params.tasks(_IMAGES.list_images_path.value, _IMAGES.dataset_file_path.value,
                             _IMAGES.image_set.value)
    os.makedirs(params.output_dir, exist_ok=True)
    report = extraction.RunExtraction(tasks, job, _BEAM.report_file(params.output_dir),
                                      _BEAM.pipeline_args(argv))
    _BEAM.finish(report)


if __name__ == "__main__":
    app.run(main)
