"""Apache Beam pipelines: the single-machine jobs spread over any Beam runner.

`delf_tf.beam.extraction` runs per-image feature extraction (delf_tf.extraction.per_image)
as a pipeline: the DirectRunner by default, or Dataflow, Flink, Spark through the usual
pipeline options. Beam is the optional extra `beam` (pip install 'delf_tf[beam]').
"""

__all__: list[str] = []
