"""Inverted-file search over ASMK / ASMK* representations.

The index keeps, for every visual word, the list of (image, residual code)
entries that contain it, in compressed-sparse-row form. A query touches only
the lists of its own words, so its cost grows with the number of entries
sharing a word with it, not with the number of index images. Scores equal
`SimilarityAggregatedRepresentation.ComputeSimilarity` for every pair (the
same kernel functions are used).
"""

import io
from collections.abc import Sequence

import numpy as np

from delf_tf.aggregation import compression, functional
from delf_tf.aggregation.params import AggregationParams
from delf_tf.aggregation.similarity import AsmkWordSimilarities, ReshapeAsmkData
from delf_tf.io import atomic
from delf_tf.protos import aggregation_config_pb2

__all__ = ["AsmkInvertedFile"]

# Posting entries compared at once in a query (bounds temporary memory).
_ENTRIES_PER_CHUNK = 1 << 16
# Version of the saved layout (delta + variable-byte coded image ids).
_FORMAT = "asmk-ivf-v2"


class AsmkInvertedFile:
    """Index of ASMK / ASMK* images for fast similarity to a query.

    Args:
      aggregation_config: the config (or AggregationParams) of the *index* representations (type,
        codebook_size, feature_dimensionality, alpha, tau, normalisation).
    """

    def __init__(self, aggregation_config: aggregation_config_pb2.AggregationConfig
                 | AggregationParams):
        params = AggregationParams.of(aggregation_config)
        self._type = params.aggregation_type
        if self._type == "VLAD":
            raise ValueError("An inverted file needs ASMK or ASMK_STAR representations, got VLAD")
        self._num_words = params.codebook_size
        self._dim = params.feature_dimensionality
        self._use_l2_normalization = params.use_l2_normalization
        self._alpha = params.alpha
        self._tau = params.tau
        row_size = (functional.packed_row_size(self._dim) if self._type == "ASMK_STAR"
                    else self._dim)
        row_dtype = np.uint8 if self._type == "ASMK_STAR" else np.float32
        # CSR layout: entries of word w are rows offsets[w]:offsets[w + 1].
        self._offsets = np.zeros([self._num_words + 1], dtype=np.int64)
        # int32 ids: a third of an ASMK* entry's memory instead of half.
        self._image_ids = np.zeros([0], dtype=np.int32)
        self._codes = np.zeros([0, row_size], dtype=row_dtype)
        self._words_per_image = np.zeros([0], dtype=np.int64)
        # ASMK* similarities take only dim + 1 values, one per Hamming distance,
        # so the kernel is tabulated once.
        self._kernel_by_hamming = functional.selectivity(
            functional.hamming_to_similarity(np.arange(self._dim + 1), self._dim),
            self._alpha, self._tau)

    @property
    def num_images(self) -> int:
        return len(self._words_per_image)

    @property
    def num_entries(self) -> int:
        return len(self._image_ids)

    def Build(
        self,
        aggregated_descriptors: Sequence[np.ndarray],
        visual_words: Sequence[np.ndarray],
    ) -> "AsmkInvertedFile":
        """Indexes images 0..N-1 from their (data, visual_words) as `Extract`
        returns them; replaces any previous content. Returns self."""
        if len(aggregated_descriptors) != len(visual_words):
            raise ValueError(
                f"{len(aggregated_descriptors)} descriptor arrays but "
                f"{len(visual_words)} visual-word arrays")
        all_rows, all_words, all_images = [], [], []
        words_per_image = np.zeros([len(visual_words)], dtype=np.int64)
        for i, (data, words) in enumerate(zip(aggregated_descriptors, visual_words)):
            rows, words = ReshapeAsmkData(data, words, self._type, self._dim)
            if len(words) and (words.min() < 0 or words.max() >= self._num_words):
                raise ValueError(
                    f"Image {i} has visual words outside [0, {self._num_words})")
            all_rows.append(rows)
            all_words.append(words)
            all_images.append(np.full([len(words)], i, dtype=np.int32))
            words_per_image[i] = len(words)
        words = np.concatenate(all_words) if all_words else np.zeros([0], np.int64)
        order = np.argsort(words, kind="stable")
        self._image_ids = (np.concatenate(all_images) if all_images
                           else np.zeros([0], np.int32))[order]
        if all_rows:
            self._codes = np.concatenate(all_rows)[order]
        else:
            self._codes = self._codes[:0]
        self._offsets = np.r_[0, np.cumsum(np.bincount(words, minlength=self._num_words))]
        self._words_per_image = words_per_image
        return self

    def ComputeSimilarities(self, query_data: np.ndarray, query_words: np.ndarray) -> np.ndarray:
        """Similarity of one query (data, visual_words) to every index image,
        float64 [num_images]; -1 where the query or the image has no words."""
        rows, words = ReshapeAsmkData(query_data, query_words, self._type, self._dim)
        num_query_words = len(words)
        if not num_query_words:
            return np.full([self.num_images], -1.0)
        in_range = (words >= 0) & (words < self._num_words)
        rows, words = rows[in_range], words[in_range]
        starts = self._offsets[words]
        counts = self._offsets[words + 1] - starts
        scores = np.zeros([self.num_images], dtype=np.float64)
        # Query words are scored in groups of about _ENTRIES_PER_CHUNK posting
        # entries, which bounds the temporary [entries, D] arrays.
        ends = np.cumsum(counts)
        splits = np.searchsorted(ends, np.arange(_ENTRIES_PER_CHUNK, ends[-1] if len(ends) else 0,
                                                 _ENTRIES_PER_CHUNK), side="right")
        for chunk in np.split(np.arange(len(words)), np.unique(splits)):
            scores += self._score_posting_lists(rows[chunk], starts[chunk], counts[chunk])
        if self._use_l2_normalization:
            with np.errstate(divide="ignore", invalid="ignore"):
                scores /= np.sqrt(num_query_words * self._words_per_image)
        scores[self._words_per_image == 0] = -1.0
        return scores

    def _score_posting_lists(
        self, rows: np.ndarray, starts: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """Unnormalised kernel sums per image of query rows [M, B] against the
        posting lists entries[starts[m]:starts[m] + counts[m]]."""
        # Positions of all the lists' entries, concatenated, and for each the
        # query row it is compared with.
        query_row = np.repeat(np.arange(len(rows)), counts)
        first_of_list = np.repeat(np.cumsum(counts) - counts, counts)
        entries = np.repeat(starts, counts) + np.arange(counts.sum()) - first_of_list
        if self._type == "ASMK_STAR":
            contributions = self._kernel_by_hamming[
                functional.hamming_distance(rows[query_row], self._codes[entries])]
        else:
            u = AsmkWordSimilarities(rows[query_row], self._codes[entries], self._type, self._dim)
            contributions = functional.selectivity(u, self._alpha, self._tau)
        return np.bincount(self._image_ids[entries], weights=contributions,
                           minlength=self.num_images)

    def Search(
        self, query_data: np.ndarray, query_words: np.ndarray, top_k: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index image ids by decreasing similarity (ties by id) and their scores."""
        scores = self.ComputeSimilarities(query_data, query_words)
        ranking = np.argsort(-scores, kind="stable")
        if top_k is not None:
            ranking = ranking[:top_k]
        return ranking, scores[ranking]

    def state_dict(self) -> dict[str, np.ndarray]:
        """The index as compact arrays (what `Save` writes): posting-list
        lengths, delta- and variable-byte-coded image ids, residual codes,
        variable-byte-coded words per image, and a signature of the config."""
        lengths = np.diff(self._offsets)
        gaps = compression.delta_encode_lists(self._image_ids, self._offsets)
        return {
            "format": np.array([_FORMAT]),
            "signature": np.array(self._signature()),
            "list_lengths": compression.varint_encode(lengths),
            "image_id_gaps": compression.varint_encode(gaps),
            "codes": self._codes,
            "words_per_image": compression.varint_encode(self._words_per_image),
        }

    def initialize_from_state(self, state, source: str = "state") -> "AsmkInvertedFile":
        """Restores an index from `state_dict()` arrays (a mapping of the same
        keys); `source` names them in errors. Returns self."""
        if "format" not in state or [str(f) for f in state["format"]] != [_FORMAT]:
            raise ValueError(f"{source} is not an inverted file of format {_FORMAT}")
        signature = [str(s) for s in state["signature"]]
        if signature != self._signature():
            raise ValueError(
                f"Inverted file {source} was built for (type, codebook_size, "
                f"dimensionality) {signature}, the config says {self._signature()}")
        lengths = compression.varint_decode(state["list_lengths"]).astype(np.int64)
        if len(lengths) != self._num_words:
            raise ValueError(f"{source}: {len(lengths)} posting lists for {self._num_words} words")
        offsets = np.r_[0, np.cumsum(lengths)]
        image_ids = compression.delta_decode_lists(
            compression.varint_decode(state["image_id_gaps"]).astype(np.int64), offsets)
        codes = np.asarray(state["codes"])
        words_per_image = compression.varint_decode(state["words_per_image"]).astype(np.int64)
        if len(image_ids) != offsets[-1] or len(codes) != offsets[-1]:
            raise ValueError(
                f"{source}: {offsets[-1]} posting entries but {len(image_ids)} image ids and "
                f"{len(codes)} codes")
        if len(image_ids) and image_ids.max() >= len(words_per_image):
            raise ValueError(f"{source}: image id {image_ids.max()} of {len(words_per_image)}")
        self._offsets = offsets
        self._image_ids = image_ids.astype(np.int32)
        self._codes = codes
        self._words_per_image = words_per_image
        return self

    def _signature(self) -> list[str]:
        return [self._type, str(self._num_words), str(self._dim)]

    def Save(self, path: str) -> None:
        """Writes the index compactly (NumPy .npz of `state_dict()`) atomically."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.state_dict())
        atomic.write_bytes_atomic(path, buffer.getvalue())

    def Load(self, path: str) -> "AsmkInvertedFile":
        """Reads an index written by `Save` with the same config. Returns self."""
        with np.load(io.BytesIO(atomic.read_bytes(path)), allow_pickle=False) as saved:
            return self.initialize_from_state(saved, source=path)
