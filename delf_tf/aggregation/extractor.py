"""Aggregated representations of local features (the original's
`feature_aggregation_extractor`): VLAD, ASMK, ASMK* and their regional
variants R-VLAD, R-ASMK, R-ASMK*, driven by an AggregationConfig."""

from collections.abc import Sequence

import numpy as np

from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation import functional
from delf_tf.aggregation.params import AggregationParams
from delf_tf.aggregation.params import AggregationTypeName as AggregationTypeName  # re-exported
from delf_tf.extraction.postprocess import l2_normalize
from delf_tf.protos import aggregation_config_pb2

__all__ = ["VLAD_VISUAL_WORDS", "ExtractAggregatedRepresentation"]

# Extract's second output for VLAD, which has no visual words (as the original).
VLAD_VISUAL_WORDS = -1


class ExtractAggregatedRepresentation:
    """Aggregates local descriptors of one image against a codebook.

    Args:
      aggregation_config: AggregationConfig or AggregationParams; the codebook is read from
        `codebook_path` and must be [codebook_size, feature_dimensionality].
      codebook: optional float [K, D] codebook to use instead of reading
        `codebook_path` (saves re-reading a large file per extractor).
    """

    def __init__(
        self,
        aggregation_config: aggregation_config_pb2.AggregationConfig | AggregationParams,
        codebook: np.ndarray | None = None,
    ):
        params = AggregationParams.of(aggregation_config)
        self._type = params.aggregation_type
        self._num_words = params.codebook_size
        self._dim = params.feature_dimensionality
        self._use_l2_normalization = params.use_l2_normalization
        self._num_assignments = params.num_assignments
        self._use_regional_aggregation = params.use_regional_aggregation
        self._batch_size = params.feature_batch_size
        if not 1 <= self._num_assignments <= self._num_words:
            raise ValueError(
                f"num_assignments must be in [1, codebook_size={self._num_words}], "
                f"got {self._num_assignments}")
        if codebook is None:
            codebook = codebook_lib.ReadCodebook(params.codebook_path)
        codebook = np.asarray(codebook, dtype=np.float32)
        if codebook.shape != (self._num_words, self._dim):
            raise ValueError(
                f"Codebook shape {codebook.shape} does not match the config "
                f"(codebook_size={self._num_words}, feature_dimensionality={self._dim})")
        self._codebook = codebook
        self._word_search = functional.WordSearch(codebook)

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
            VLAD: float32 [K*D], -1 (visual words do not apply);
            ASMK: float32 [W*D] per-word L2-normalised residual sums, int32 [W];
            ASMK*: uint8 [W*ceil(D/8)] sign bits packed per word (each word's bits
              padded with zeros to whole bytes), int32 [W];
          with the W words ascending.

        Regional aggregation (num_features_per_region): each region's VLAD is
        L2-normalised (an empty region's is zero). R-VLAD is their sum divided by
        the number of regions, empty ones included, then L2-normalised if
        configured; R-ASMK / R-ASMK* sum the normalised regional VLADs per word
        (so each region is weighted by its whole-VLAD norm, not per word) and then
        select and normalise the words as ASMK does.
        """
        features = self._check_features(features)
        region_sizes = self._check_regions(num_features_per_region, len(features))
        assignments = self._word_search.words(features, self._num_assignments, self._batch_size)
        return self._aggregate(features, assignments, region_sizes)

    def ExtractMany(self, features: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`Extract` of each image's float features [N_i, D] (no regional aggregation),
        with the nearest-word search run over all images' features together, in
        products of up to 4096 features (fewer, larger products than one per image).
        """
        if self._use_regional_aggregation:
            raise ValueError("ExtractMany does not take regions; call Extract per image")
        features = [self._check_features(f) for f in features]
        if not features:
            return []
        assignments = self._word_search.words(np.concatenate(features), self._num_assignments)
        ends = np.cumsum([len(f) for f in features])
        return [self._aggregate(f, a, None)
                for f, a in zip(features, np.split(assignments, ends[:-1]))]

    def _aggregate(self, features: np.ndarray, assignments: np.ndarray,
                   region_sizes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Extract's aggregation of features [N, D] given their words int [N, A]."""
        if region_sizes is None:
            words, sums = functional.sum_residuals_by_word(features, self._codebook, assignments)
        else:
            words, sums = self._regional_word_sums(features, assignments, region_sizes)
        if self._type == "VLAD":
            vlad = functional.vlad_from_word_sums(words, sums, self._num_words, False)
            if region_sizes is not None and len(region_sizes):
                vlad /= len(region_sizes)
            if self._use_l2_normalization:
                vlad = l2_normalize(vlad)
            return vlad, VLAD_VISUAL_WORDS
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

    def _regional_word_sums(self, features, assignments, region_sizes):
        """Per word, the sum over regions of the region's residual sum divided by the
        norm of the region's whole VLAD: (words int64 [W] ascending, float32 [W, D])."""
        words, vectors = functional.residuals(features, self._codebook, assignments)
        regions = np.repeat(np.arange(len(region_sizes)), region_sizes * self._num_assignments)
        # One key per (region, word) pair aggregates all regions in one pass.
        keys, sums = functional.sum_by_key(regions * self._num_words + words, vectors)
        region_of_key = keys // self._num_words
        squared_norms = np.bincount(region_of_key, weights=np.einsum("kd,kd->k", sums, sums),
                                    minlength=len(region_sizes))
        norms = np.sqrt(squared_norms)[region_of_key]
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return functional.sum_by_key(keys % self._num_words,
                                     (sums * scale[:, None]).astype(np.float32))
