"""The aggregation settings of one image set as one frozen group: the
AggregationConfig's fields, typed, built once (from a pbtxt by `read`, or by a
tool from its flags) and passed whole to aggregation, the inverted file and
similarity. Every function that took an AggregationConfig takes either."""

import dataclasses

import numpy as np

from delf_tf import config as config_lib
from delf_tf.protos import aggregation_config_pb2

__all__ = ["AggregationParams", "AggregationTypeName", "AGGREGATION_TYPES"]

_CONFIG = aggregation_config_pb2.AggregationConfig
_TYPE_NAMES = {_CONFIG.VLAD: "VLAD", _CONFIG.ASMK: "ASMK", _CONFIG.ASMK_STAR: "ASMK_STAR"}
AGGREGATION_TYPES = tuple(_TYPE_NAMES.values())


def _invalid_type(aggregation_type) -> ValueError:
    return ValueError(f"Invalid aggregation_type {aggregation_type} "
                      "(expected VLAD, ASMK or ASMK_STAR)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AggregationParams:
    """How one image set's local descriptors are aggregated.

    aggregation_type: 'VLAD', 'ASMK' or 'ASMK_STAR' (binarized ASMK).
    codebook_size, feature_dimensionality: the codebook's shape [K, D].
    codebook_path: DatumProto file of the codebook float32 [K, D].
    use_l2_normalization: L2-normalise VLAD / the per-word ASMK residuals.
    num_assignments: visual words per descriptor (multiple assignment).
    use_regional_aggregation: R-VLAD / R-ASMK / R-ASMK* over regions.
    alpha, tau: ASMK selectivity sigma(u) = u^alpha for u > tau (stored as
      float32, as in the config, so both forms give the same numbers).
    feature_batch_size: descriptors assigned per matrix product.
    """

    aggregation_type: str = "ASMK_STAR"
    codebook_size: int = 65536
    feature_dimensionality: int = 128
    codebook_path: str = ""
    use_l2_normalization: bool = True
    num_assignments: int = 1
    use_regional_aggregation: bool = False
    alpha: float = 3.0
    tau: float = 0.0
    feature_batch_size: int = 100

    def __post_init__(self) -> None:
        if self.aggregation_type not in AGGREGATION_TYPES:
            raise _invalid_type(self.aggregation_type)
        for name in ("alpha", "tau"):
            object.__setattr__(self, name, float(np.float32(getattr(self, name))))

    @classmethod
    def from_config(cls, config: aggregation_config_pb2.AggregationConfig) -> "AggregationParams":
        return cls(aggregation_type=AggregationTypeName(config),
                   **{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)
                      if f.name != "aggregation_type"})

    @classmethod
    def of(cls, config: "aggregation_config_pb2.AggregationConfig | AggregationParams"
           ) -> "AggregationParams":
        """`config` itself if it is already an AggregationParams."""
        return config if isinstance(config, cls) else cls.from_config(config)

    @classmethod
    def read(cls, path: str) -> "AggregationParams":
        """The settings of an AggregationConfig pbtxt file."""
        return cls.from_config(config_lib.ReadAggregationConfig(path))

    def to_config(self) -> aggregation_config_pb2.AggregationConfig:
        fields = dataclasses.asdict(self)
        fields["aggregation_type"] = getattr(_CONFIG, self.aggregation_type)
        return _CONFIG(**fields)


def AggregationTypeName(
        aggregation_config: "aggregation_config_pb2.AggregationConfig | AggregationParams") -> str:
    """'VLAD', 'ASMK' or 'ASMK_STAR'; ValueError for INVALID / unknown types."""
    if isinstance(aggregation_config, AggregationParams):
        return aggregation_config.aggregation_type
    try:
        return _TYPE_NAMES[aggregation_config.aggregation_type]
    except KeyError:
        raise _invalid_type(aggregation_config.aggregation_type) from None
