"""Aggregated representations of local features (the original's
`feature_aggregation_extractor`): VLAD, ASMK, ASMK* and their regional
variants R-VLAD, R-ASMK, R-ASMK*, driven by an AggregationConfig."""

import itertools

import numpy as np

from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation import functional
from delf_tf.extraction.postprocess import l2_normalize
from delf_tf.protos import aggregation_config_pb2

_CONFIG = aggregation_config_pb2.AggregationConfig
_TYPE_NAMES = {_CONFIG.VLAD: "VLAD", _CONFIG.ASMK: "ASMK", _CONFIG.ASMK_STAR: "ASMK_STAR"}


def AggregationTypeName(aggregation_config: aggregation_config_pb2.AggregationConfig) -> str:
    """'VLAD', 'ASMK' or 'ASMK_STAR'; ValueError for INVALID / unknown types."""
    try:
        return _TYPE_NAMES[aggregation_config.aggregation_type]
    except KeyError:
        raise ValueError(
            f"Invalid aggregation_type {aggregation_config.aggregation_type} "
            "(expected VLAD, ASMK or ASMK_STAR)") from None


class ExtractAggregatedRepresentation:
    """Aggregates local descriptors of one image against a codebook.

    Args:
      aggregation_config: AggregationConfig; the codebook is read from
        `codebook_path` and must be [codebook_size, feature_dimensionality].
      codebook: optional float [K, D] codebook to use instead of reading
        `codebook_path` (saves re-reading a large file per extractor).
    """

    def __init__(
        self,
        aggregation_config: aggregation_config_pb2.AggregationConfig,
        codebook: np.ndarray | None = None,
    ):
        self._type = AggregationTypeName(aggregation_config)
        self._num_words = aggregation_config.codebook_size
        self._dim = aggregation_config.feature_dimensionality
        self._use_l2_normalization = aggregation_config.use_l2_normalization
        self._num_assignments = aggregation_config.num_assignments
        self._use_regional_aggregation = aggregation_config.use_regional_aggregation
        self._batch_size = aggregation_config.feature_batch_size
        if not 1 <= self._num_assignments <= self._num_words:
            raise ValueError(
                f"num_assignments must be in [1, codebook_size={self._num_words}], "
                f"got {self._num_assignments}")
        if self._type == "ASMK_STAR" and self._dim % 8:
            raise ValueError(
                f"ASMK_STAR needs feature_dimensionality divisible by 8, got {self._dim}")
        if codebook is None:
            codebook = codebook_lib.ReadCodebook(aggregation_config.codebook_path)
        codebook = np.asarray(codebook, dtype=np.float32)
        if codebook.shape != (self._num_words, self._dim):
            raise ValueError(
                f"Codebook shape {codebook.shape} does not match the config "
                f"(codebook_size={self._num_words}, feature_dimensionality={self._dim})")
        self._codebook = codebook

    @property
    def codebook(self) -> np.ndarray:
        return self._codebook

    def Extract(
        self,
        features: np.ndarray,
        num_features_per_region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Aggregates float features [N, D] (N may be 0).

        Args:
          features: float [N, D] local descriptors.
          num_features_per_region: int [R] with sum N, the features of region r
            being the next num_features_per_region[r] rows; required with
            use_regional_aggregation, must be None without it.

        Returns:
          (data, visual_words):
            VLAD: float32 [K*D], int32 [0];
            ASMK: float32 [W*D] per-word L2-normalised residual sums, int32 [W];
            ASMK*: uint8 [W*D/8] packed sign bits, int32 [W];
          with the W words ascending.
        """
        features = self._check_features(features)
        region_sizes = self._check_regions(num_features_per_region, len(features))
        assignments = functional.assign(
            features, self._codebook, self._num_assignments, self._batch_size)

        if self._type == "VLAD":
            data = self._vlad(features, assignments, region_sizes)
            return data, np.zeros([0], dtype=np.int32)

        if region_sizes is None:
            words, sums = functional.sum_residuals_by_word(features, self._codebook, assignments)
        else:
            words, sums = self._regional_asmk_sums(features, assignments, region_sizes)
        words, descriptors = functional.select_and_normalize_words(words, sums)
        if self._type == "ASMK_STAR":
            descriptors = functional.binarize(descriptors)
        return descriptors.reshape(-1), words.astype(np.int32)

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features)
        if features.size == 0:
            return np.zeros([0, self._dim], dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self._dim:
            raise ValueError(
                f"features must be [N, {self._dim}] (feature_dimensionality), "
                f"got shape {features.shape}")
        if not np.issubdtype(features.dtype, np.floating):
            raise ValueError(f"features must be float descriptors, got dtype {features.dtype}")
        return features

    def _check_regions(self, num_features_per_region, num_features: int) -> np.ndarray | None:
        if not self._use_regional_aggregation:
            if num_features_per_region is not None:
                raise ValueError(
                    "num_features_per_region was given but use_regional_aggregation is false")
            return None
        if num_features_per_region is None:
            raise ValueError("Regional aggregation requires num_features_per_region")
        sizes = np.asarray(num_features_per_region).reshape(-1)
        if sizes.size and not np.issubdtype(sizes.dtype, np.integer):
            raise ValueError(f"num_features_per_region must be integers, got {sizes.dtype}")
        sizes = sizes.astype(np.int64)
        if np.any(sizes < 0):
            raise ValueError(f"num_features_per_region has negative counts: {sizes}")
        if sizes.sum() != num_features:
            raise ValueError(
                f"num_features_per_region sums to {sizes.sum()} but there are "
                f"{num_features} features")
        return sizes

    def _vlad(self, features, assignments, region_sizes) -> np.ndarray:
        if region_sizes is None:
            words, sums = functional.sum_residuals_by_word(features, self._codebook, assignments)
            return functional.vlad_from_word_sums(
                words, sums, self._num_words, self._use_l2_normalization)
        # R-VLAD: VLAD per region (normalised if configured), summed, and the
        # sum normalised again; empty regions contribute nothing.
        total = np.zeros([self._num_words * self._dim], dtype=np.float32)
        bounds = np.r_[0, np.cumsum(region_sizes)]
        for start, end in itertools.pairwise(bounds):
            if start == end:
                continue
            words, sums = functional.sum_residuals_by_word(
                features[start:end], self._codebook, assignments[start:end])
            total += functional.vlad_from_word_sums(
                words, sums, self._num_words, self._use_l2_normalization)
        if self._use_l2_normalization:
            total = l2_normalize(total)
        return total

    def _regional_asmk_sums(self, features, assignments, region_sizes):
        # R-ASMK: each region's ASMK descriptors (per-word normalised residual
        # sums) are summed per word over regions; the caller selects and
        # normalises the sums again.
        words, vectors = functional.residuals(features, self._codebook, assignments)
        regions = np.repeat(np.arange(len(region_sizes)), region_sizes * self._num_assignments)
        # One key per (region, word) pair aggregates all regions in one pass.
        keys, sums = functional.sum_by_key(regions * self._num_words + words, vectors)
        keys, region_descriptors = functional.select_and_normalize_words(keys, sums)
        return functional.sum_by_key(keys % self._num_words, region_descriptors)
