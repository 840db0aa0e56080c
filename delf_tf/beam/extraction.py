"""Feature extraction as an Apache Beam pipeline.

    tasks (image list / Revisited .mat / GLDv2 CSV, read on the launching machine)
      -> Reshuffle (spread over workers)
      -> ParDo(extract): the SavedModel is loaded once per worker (DoFn.setup);
         each image is skipped if all its files exist, else extracted and its
         files written atomically (the same files as the single-machine tools);
      -> one report: done / skipped / failed image names (JSON, atomic).

A retried bundle rewrites identical files under the same names, and a killed run
leaves complete files only, so running the pipeline again finishes the set without
duplicates or truncated files. Runner and options pass through: `pipeline_args`
such as ["--runner=DataflowRunner", "--project=...", ...]; none gives the DirectRunner.
"""

import json
import logging
from collections.abc import Sequence

from delf_tf.extraction import per_image
from delf_tf.io import atomic
from delf_tf.optional import import_optional

__all__ = [
    # The original's names (the compatibility surface).
    "Report", "ExtractionPipeline", "RunExtraction",
    # delf_tf's own API.
    "ExtractDoFn",
]

beam = import_optional("apache_beam", "beam")
pipeline_options = import_optional("apache_beam.options.pipeline_options", "beam")

logger = logging.getLogger(__name__)


class ExtractDoFn(beam.DoFn):
    """Runs an ExtractionJob on each ImageTask, yielding TaskResults."""

    def __init__(self, job: per_image.ExtractionJob):
        super().__init__()
        self._job = job

    def setup(self):
        self._job.setup()

    def process(self, task: per_image.ImageTask):
        result = self._job.run(task)
        if result.status == "failed":
            logger.error("Skipping %s: %s", result.name, result.error)
        yield result


def Report(results: Sequence[per_image.TaskResult]) -> dict:
    """{done, skipped, failed: counts; done_names, skipped_names: sorted names;
    failed_images: [{name, error}]}."""
    by_status = {"done": [], "skipped": [], "failed": []}
    for result in results:
        by_status[result.status].append(result)
    report = {status: len(items) for status, items in by_status.items()}
    report["done_names"] = sorted(r.name for r in by_status["done"])
    report["skipped_names"] = sorted(r.name for r in by_status["skipped"])
    report["failed_images"] = sorted(({"name": r.name, "error": r.error}
                                      for r in by_status["failed"]), key=lambda r: r["name"])
    return report


def _write_report(results, report_path: str) -> dict:
    report = Report(results)
    atomic.write_bytes_atomic(report_path, json.dumps(report, indent=1).encode())
    return report


def ExtractionPipeline(root, tasks: Sequence[per_image.ImageTask],
                       job: per_image.ExtractionJob, report_path: str):
    """Adds the extraction steps to pipeline `root`; returns the report PCollection."""
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two images would write the same files: {duplicate}")
    return (root
            | "Tasks" >> beam.Create(list(tasks))
            | "Spread" >> beam.Reshuffle()
            | "Extract" >> beam.ParDo(ExtractDoFn(job))
            | "Collect" >> beam.combiners.ToList()
            | "Report" >> beam.Map(_write_report, report_path))


def RunExtraction(tasks: Sequence[per_image.ImageTask], job: per_image.ExtractionJob,
                  report_path: str, pipeline_args: Sequence[str] = ()) -> dict:
    """Runs the pipeline to the end and returns the report (also in `report_path`).

    pipeline_args: Beam pipeline options (--runner, --direct_num_workers, Dataflow
    or Flink options, ...); without --runner the DirectRunner runs it here.
    """
    # Temporary files of writes a killed run interrupted (no worker runs yet).
    removed = atomic.remove_stale_temporaries(
        [path for task in tasks for path in job.outputs(task)])
    if removed:
        logger.info("Removed %d temporary file(s) left by an interrupted run", removed)
    job.record_source()
    options = pipeline_options.PipelineOptions(list(pipeline_args))
    # The job's paths and config travel to the workers; the main session does not.
    options.view_as(pipeline_options.SetupOptions).save_main_session = False
    with beam.Pipeline(options=options) as root:
        ExtractionPipeline(root, tasks, job, report_path)
    with open(report_path, encoding="utf-8") as f:
        return json.load(f)
