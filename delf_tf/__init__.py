"""delf_tf: DELF and DELG landmark retrieval on TensorFlow 2 / Keras 3.

Importing the package is cheap (no TensorFlow). The original's module names are
available here so user code ports by changing an import, e.g.
``from delf_tf import feature_io`` or ``from delf_tf import delf_config_pb2``.
"""

import importlib
from typing import Any

__all__: list[str] = []

__version__ = "0.1.0"

# Public name -> module path, resolved on first attribute access.
_LAZY_MODULES = {
        "datum_io": "delf_tf.io.datum_io",
        "feature_io": "delf_tf.io.feature_io",
        "box_io": "delf_tf.io.box_io",
        "utils": "delf_tf.utils",
        "config": "delf_tf.config",
    "extractor": "delf_tf.extraction.extractor",
    "feature_extractor": "delf_tf.extraction.feature_extractor",
    "feature_aggregation_extractor": "delf_tf.aggregation.extractor",
    "feature_aggregation_similarity": "delf_tf.aggregation.similarity",
        "datum_pb2": "delf_tf.protos.datum_pb2",
        "feature_pb2": "delf_tf.protos.feature_pb2",
        "box_pb2": "delf_tf.protos.box_pb2",
        "delf_config_pb2": "delf_tf.protos.delf_config_pb2",
        "aggregation_config_pb2": "delf_tf.protos.aggregation_config_pb2",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        module = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'delf_tf' has no attribute {name!r}")
