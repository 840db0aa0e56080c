"""Similarity of two aggregated representations (the original's
`feature_aggregation_similarity`): VLAD dot product, ASMK / ASMK* kernels."""

import numpy as np

from delf_tf.aggregation import functional
from delf_tf.aggregation.params import AggregationParams
from delf_tf.protos import aggregation_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "ReshapeAsmkData", "AsmkWordSimilarities",
    # delf_tf's own API.
    "SimilarityAggregatedRepresentation",
]


def ReshapeAsmkData(
    data: np.ndarray, visual_words: np.ndarray, aggregation_type: str, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Splits flat ASMK (float [W*D]) or ASMK* (uint8 [W*D/8]) data into one row
    per visual word; returns (rows [W, D] or [W, D/8], words int64 [W]).

    Raises:
      ValueError: the data size does not match W words of dimensionality `dim`,
        or ASMK* data is not uint8.
    """
    data = np.asarray(data).reshape(-1)
    if visual_words is None:
        raise ValueError(f"{aggregation_type} similarity needs visual words")
    words = np.asarray(visual_words).reshape(-1).astype(np.int64)
    if aggregation_type == "ASMK_STAR":
        # uint32 is how a DatumProto file returns the packed bytes.
        if data.size and data.dtype != np.uint8 and (
                not np.issubdtype(data.dtype, np.unsignedinteger) or data.max(initial=0) > 255):
            raise ValueError(f"ASMK_STAR data must be packed uint8 bits, got {data.dtype}")
        data = data.astype(np.uint8)
        row_size = functional.packed_row_size(dim)
    else:
        data = data.astype(np.float32)
        row_size = dim
    if data.size != len(words) * row_size:
        raise ValueError(
            f"{aggregation_type} data has {data.size} values, expected {len(words)} visual "
            f"words x {row_size} (feature_dimensionality {dim})")
    return data.reshape(len(words), row_size), words


def AsmkWordSimilarities(
    rows_1: np.ndarray, rows_2: np.ndarray, aggregation_type: str, dim: int
) -> np.ndarray:
    """u per pair of matching rows: residual inner product (ASMK) or
    1 - 2 * hamming / dim (ASMK*), float64 [M]."""
    if aggregation_type == "ASMK_STAR":
        return functional.hamming_similarity(rows_1, rows_2, dim)
    return np.einsum("md,md->m", rows_1, rows_2, dtype=np.float64)


class SimilarityAggregatedRepresentation:
    """Compares aggregated representations made with the same AggregationConfig
    (the codebook itself is not read)."""

    def __init__(self, aggregation_config: aggregation_config_pb2.AggregationConfig
                 | AggregationParams):
        self._params = AggregationParams.of(aggregation_config)

    def ComputeSimilarity(
        self,
        aggregated_descriptors_1: np.ndarray,
        aggregated_descriptors_2: np.ndarray,
        feature_visual_words_1: np.ndarray | None = None,
        feature_visual_words_2: np.ndarray | None = None,
    ) -> float:
        """Similarity of two images' aggregated data (as `Extract` returns it).

        VLAD: dot product. ASMK / ASMK*: sum over shared visual words of
        sigma(u), divided by sqrt(W1 * W2) with use_l2_normalization; -1.0 when
        either image has no visual words.

        Raises:
          ValueError: the representations' sizes do not match each other or
            the configured dimensionality; visual words missing for ASMK.
        """
        params = self._params
        if params.aggregation_type == "VLAD":
            vlad_1 = np.asarray(aggregated_descriptors_1, dtype=np.float64).reshape(-1)
            vlad_2 = np.asarray(aggregated_descriptors_2, dtype=np.float64).reshape(-1)
            if vlad_1.shape != vlad_2.shape:
                raise ValueError(
                    f"VLAD dimensionality mismatch: {vlad_1.size} vs {vlad_2.size}")
            return float(np.dot(vlad_1, vlad_2))

        rows_1, words_1 = ReshapeAsmkData(
            aggregated_descriptors_1, feature_visual_words_1, params.aggregation_type,
            params.feature_dimensionality)
        rows_2, words_2 = ReshapeAsmkData(
            aggregated_descriptors_2, feature_visual_words_2, params.aggregation_type,
            params.feature_dimensionality)
        if not len(words_1) or not len(words_2):
            return -1.0
        _, index_1, index_2 = np.intersect1d(
            words_1, words_2, assume_unique=True, return_indices=True)
        u = AsmkWordSimilarities(rows_1[index_1], rows_2[index_2], params.aggregation_type,
                                 params.feature_dimensionality)
        similarity = float(functional.selectivity(u, params.alpha, params.tau).sum())
        if params.use_l2_normalization:
            similarity /= np.sqrt(len(words_1) * len(words_2))
        return similarity
