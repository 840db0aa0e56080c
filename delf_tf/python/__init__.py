"""The original's module paths, with only the top package renamed.

`from delf_tf.python.datasets.revisited_op import dataset` (and `import
delf_tf.python.datasets.revisited_op.dataset`) give delf_tf's own module for the same
job, here `delf_tf.retrieval.dataset`: each module below `delf_tf.python` replaces itself
in `sys.modules` with the real module, so both names are one object. The layout of
delf_tf itself is elsewhere (see README.md); these are for porting code unchanged.

| original (`delf.python.` ...) | delf_tf module |
|---|---|
| `box_io` | `delf_tf.io.box_io` |
| `datum_io` | `delf_tf.io.datum_io` |
| `feature_io` | `delf_tf.io.feature_io` |
| `utils` | `delf_tf.utils` |
| `feature_extractor` | `delf_tf.extraction.feature_extractor` |
| `feature_aggregation_extractor` | `delf_tf.aggregation.extractor` |
| `feature_aggregation_similarity` | `delf_tf.aggregation.similarity` |
| `examples.extractor` | `delf_tf.extraction.extractor` |
| `datasets.revisited_op.dataset` | `delf_tf.retrieval.dataset` |
| `datasets.google_landmarks_dataset.metrics` | `delf_tf.retrieval.gldv2` |
| `datasets.google_landmarks_dataset.dataset_file_io` | `delf_tf.retrieval.gldv2` |
| `detect_to_retrieve.dataset` | `delf_tf.retrieval.dataset` |
| `detect_to_retrieve.aggregation_extraction` | `delf_tf.aggregation.aggregation_extraction` |
| `detect_to_retrieve.image_reranking` | `delf_tf.matching.reranking` |
| `training.model.delf_model` | `delf_tf.models.delf` |
| `training.model.delg_model` | `delf_tf.models.delg` |
| `training.model.resnet50` | `delf_tf.models.resnet` |
| `training.model.export_model_utils` | `delf_tf.extraction.pyramid` |
| `training.datasets.googlelandmarks` | `delf_tf.data.gld` |
| `training.losses.ranking_losses` | `delf_tf.models.ranking_losses` |
| `pooling_layers.pooling` | `delf_tf.models.pooling` |
| `normalization_layers.normalization` | `delf_tf.models.normalization` |
| `training.model.global_model` | `delf_tf.models.global_model` |
| `datasets.sfm120k.sfm120k` | `delf_tf.global_features.sfm` |
| `datasets.tuples_dataset` | `delf_tf.global_features.tuples` |
| `datasets.generic_dataset` | `delf_tf.global_features.images` |
| `whiten` | `delf_tf.global_features.whitening` |
"""

import importlib
import sys

__all__ = ["alias_module"]


def alias_module(name: str, target: str) -> None:
    """Makes the module being imported as `name` be the module `target`."""
    sys.modules[name] = importlib.import_module(target)
