"""ASMK* search as HOW uses it: a codebook, database images aggregated with
one visual word per descriptor, queries with several, and a persistent
inverted file — built once, saved, loaded and queried many times.

The aggregation, kernel and inverted file are the library's ASMK* ones
(`extractor`, `functional`, `inverted_file`); this module only fixes HOW's
parameters and keeps the pieces (codebook, parameters, image names, inverted
file) together in one file.
"""

import dataclasses
import io
import logging
import os
from collections.abc import Callable, Sequence

import numpy as np

from delf_tf.aggregation import codebook as codebook_lib
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.params import AggregationParams
from delf_tf.io import atomic, feature_io
from delf_tf.protos import aggregation_config_pb2

__all__ = [
    # The original's names (the compatibility surface).
    "TrainAsmkCodebook", "ReadDescriptors",
    # delf_tf's own API.
    "AsmkParams", "KMEANS_ALGORITHMS", "APPROXIMATE_MIN_WORDS", "CodebookParams",
    "train_codebook", "cluster_descriptors", "AsmkIndex", "IMAGES_PER_SEARCH",
]

logger = logging.getLogger(__name__)

_FORMAT = "delf_tf-asmk-index-v1"
# Build searches the nearest words of this many images' descriptors together.
IMAGES_PER_SEARCH = 16


@dataclasses.dataclass(frozen=True)
class AsmkParams:
    """ASMK* hyper-parameters of both sides of a search (HOW's defaults; the flags of
    tools/build_asmk_index.py); `side` gives each side's AggregationParams. The selectivity
    is sigma(u) = u^alpha for u > tau, else 0.

    Attributes:
      alpha: Selectivity exponent: a word pair adds u^alpha.
      tau: Similarity threshold: word pairs with u <= tau add 0.
      query_num_assignments: Visual words per query descriptor (stored in the index as the
        query default).
      index_num_assignments: Visual words per database descriptor.
      binary: ASMK* (binarised residuals); --nobinary keeps float residuals (ASMK).
    """

    alpha: float = 3.0
    tau: float = 0.0
    query_num_assignments: int = 5
    index_num_assignments: int = 1
    binary: bool = True

    def side(self, codebook_size: int, dim: int, query: bool) -> AggregationParams:
        """The aggregation settings of query (query=True) or database images."""
        return AggregationParams(
            codebook_size=codebook_size, feature_dimensionality=dim,
            aggregation_type="ASMK_STAR" if self.binary else "ASMK",
            use_l2_normalization=True, alpha=self.alpha, tau=self.tau,
            num_assignments=self.query_num_assignments if query else self.index_num_assignments,
            # Large batches: one big matrix product per image against the codebook.
            feature_batch_size=1000)

    def aggregation_config(self, codebook_size: int, dim: int, query: bool
                           ) -> aggregation_config_pb2.AggregationConfig:
        """`side` as an AggregationConfig."""
        return self.side(codebook_size, dim, query).to_config()


# ASMK* codebooks: k-means choices, and the codebook size from which "auto" approximates.
KMEANS_ALGORITHMS = ("auto", "converge", "approximate", "faiss")
APPROXIMATE_MIN_WORDS = 32768


@dataclasses.dataclass(frozen=True, kw_only=True)
class CodebookParams:
    """How an ASMK* codebook is trained (HOW's settings; the flags of
    tools/train_asmk_codebook.py): k-means with `num_words` words and at most
    `num_iterations` iterations over the descriptors of at most `num_images` images drawn at
    random (all of them if fewer), everything seeded by `seed`; `kmeans` chooses among
    codebook.TrainCodebook's algorithms ('auto': 'approximate' from APPROXIMATE_MIN_WORDS
    words on).

    Attributes:
      num_words: Codebook size (visual words); HOW uses 65536.
      num_images: Descriptors of at most this many images, drawn at random, are clustered;
        HOW uses 20000 training images extracted at a single scale.
      num_iterations: Most k-means iterations (the asmk package's HOW setting is 10).
      max_num_descriptors: At most this many of the drawn images' descriptors are clustered
        (None: all).
      seed: Seed of the image draw and of k-means.
      kmeans: k-means: 'faiss' runs all --num_iterations of faiss's k-means (as the asmk
        package); 'converge' the same iterations, stopped once one lowers the mean squared
        distance by less than 1%; 'approximate' as 'converge', but each assignment after the
        first only among the previous word and its 32 nearest words (Philbin et al.'s
        approximate k-means idea, for large codebooks); 'auto' is 'approximate' from 32768 words
        on, 'converge' below.
    """

    num_words: int = 65536
    num_images: int = 20000
    num_iterations: int = 10
    max_num_descriptors: int | None = None
    seed: int = 0
    kmeans: str = "auto"

    def __post_init__(self) -> None:
        if self.num_images <= 0:
            raise ValueError(f"num_images must be positive, got {self.num_images}")
        if self.kmeans not in KMEANS_ALGORITHMS:
            raise ValueError(f"kmeans must be one of {KMEANS_ALGORITHMS}, got {self.kmeans!r}")

    def algorithm(self) -> str:
        """codebook.TrainCodebook's algorithm for `kmeans`."""
        if self.kmeans != "auto":
            return self.kmeans
        return "approximate" if self.num_words >= APPROXIMATE_MIN_WORDS else "converge"


def train_codebook(
    feature_paths: Sequence[str],
    params: CodebookParams = CodebookParams(),
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """k-means codebook of the feature files' float descriptors, as `params`
    says. Returns float32 [K, D]."""
    feature_paths = list(feature_paths)
    if len(feature_paths) > params.num_images:
        rng = np.random.default_rng(params.seed)
        chosen = np.sort(rng.choice(len(feature_paths), params.num_images, replace=False))
        feature_paths = [feature_paths[i] for i in chosen]
    descriptors = codebook_lib.SampleDescriptors(
        feature_paths, params.max_num_descriptors, params.seed, progress=progress)
    return cluster_descriptors(descriptors, params, len(feature_paths))


def cluster_descriptors(descriptors: np.ndarray, params: CodebookParams,
                        num_images: int) -> np.ndarray:
    """The k-means step of `train_codebook`: float descriptors [N, D] (already drawn from
    `num_images` images) into params.num_words words. Returns float32 [K, D]."""
    algorithm = params.algorithm()
    logger.info("k-means (%s) of %d descriptors (%d images) into %d words", algorithm,
                len(descriptors), num_images, params.num_words)
    return codebook_lib.TrainCodebook(
        descriptors, params.num_words, params.num_iterations, params.seed, algorithm=algorithm)


def TrainAsmkCodebook(
    feature_paths: Sequence[str],
    num_words: int = 65536,
    num_images: int = 20000,
    num_iterations: int = 10,
    max_num_descriptors: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """`train_codebook` with the CodebookParams as loose arguments."""
    return train_codebook(feature_paths, CodebookParams(
        num_words=num_words, num_images=num_images, num_iterations=num_iterations,
        max_num_descriptors=max_num_descriptors, seed=seed), progress)


class AsmkIndex:
    """A searchable ASMK* database.

    Args:
      codebook: float32 [K, D].
      params: ASMK* parameters.
    """

    def __init__(self, codebook: np.ndarray, params: AsmkParams = AsmkParams()):
        codebook = np.ascontiguousarray(codebook, dtype=np.float32)
        if codebook.ndim != 2:
            raise ValueError(f"codebook must be [K, D], got shape {codebook.shape}")
        self.codebook = codebook
        self.params = params
        num_words, dim = codebook.shape
        index_side = params.side(num_words, dim, query=False)
        self._index_aggregator = ExtractAggregatedRepresentation(index_side, codebook=codebook)
        self._query_aggregator = ExtractAggregatedRepresentation(
            params.side(num_words, dim, query=True), codebook=codebook)
        self.inverted_file = AsmkInvertedFile(index_side)
        self.image_names: list[str] = []

    @property
    def num_images(self) -> int:
        return self.inverted_file.num_images

    def AggregateIndexImage(self, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(data, visual words) of a database image's float descriptors [N, D]."""
        return self._index_aggregator.Extract(descriptors)

    def AggregateIndexImages(self, descriptors: Sequence[np.ndarray]
                             ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`AggregateIndexImage` of several images, their nearest words searched together."""
        return self._index_aggregator.ExtractMany(descriptors)

    def AggregateQuery(self, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(data, visual words) of a query's float descriptors [N, D]."""
        return self._query_aggregator.Extract(descriptors)

    def Build(
        self,
        descriptors: Sequence[np.ndarray],
        image_names: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> "AsmkIndex":
        """Indexes images 0..N-1 from their float descriptors [N_i, D];
        replaces any previous content. Returns self."""
        if image_names is not None and len(image_names) != len(descriptors):
            raise ValueError(f"{len(image_names)} names for {len(descriptors)} images")
        representations = []
        for start in range(0, len(descriptors), IMAGES_PER_SEARCH):
            chunk = descriptors[start:start + IMAGES_PER_SEARCH]
            representations += self.AggregateIndexImages(chunk)
            if progress is not None:
                progress(len(representations), len(descriptors))
        return self.BuildFromRepresentations(representations, image_names)

    def BuildFromRepresentations(
        self,
        representations: Sequence[tuple[np.ndarray, np.ndarray]],
        image_names: Sequence[str] | None = None,
    ) -> "AsmkIndex":
        """Indexes already aggregated (data, visual words) pairs. Returns self."""
        self.inverted_file.Build([d for d, _ in representations],
                                 [w for _, w in representations])
        self.image_names = ([str(n) for n in image_names] if image_names is not None
                            else [str(i) for i in range(len(representations))])
        return self

    def ComputeSimilarities(self, query_descriptors: np.ndarray) -> np.ndarray:
        """ASMK* similarity of a query's float descriptors [N, D] to every
        database image, float64 [num_images] (-1 where either has no words)."""
        return self.inverted_file.ComputeSimilarities(*self.AggregateQuery(query_descriptors))

    def Search(self, query_descriptors: np.ndarray, top_k: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Database ids by decreasing similarity (ties by id), and their scores."""
        return self.inverted_file.Search(*self.AggregateQuery(query_descriptors), top_k=top_k)

    def Stats(self) -> dict[str, float]:
        """Average ASMK vectors per database image (|C_X|) and stored bytes per
        image of the inverted file (codes + compressed ids, as saved)."""
        state = self.inverted_file.state_dict()
        num_images = max(self.num_images, 1)
        ivf_bytes = sum(state[k].nbytes for k in ("list_lengths", "image_id_gaps", "codes",
                                                   "words_per_image"))
        return {
            "images": self.num_images,
            "vectors_per_image": self.inverted_file.num_entries / num_images,
            "bytes_per_image": ivf_bytes / num_images,
            "image_id_bytes_per_vector": state["image_id_gaps"].nbytes
            / max(self.inverted_file.num_entries, 1),
        }

    def Save(self, path: str) -> None:
        """Writes codebook, parameters, image names and inverted file to one
        .npz file, atomically."""
        arrays = {f"ivf_{k}": v for k, v in self.inverted_file.state_dict().items()}
        buffer = io.BytesIO()
        np.savez(buffer, format=np.array([_FORMAT]), codebook=self.codebook,
                 params=np.array([self.params.alpha, self.params.tau,
                                  self.params.query_num_assignments,
                                  self.params.index_num_assignments,
                                  float(self.params.binary)], dtype=np.float64),
                 image_names=np.array(self.image_names, dtype=np.str_), **arrays)
        atomic.write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def Load(cls, path: str, query_num_assignments: int | None = None) -> "AsmkIndex":
        """Reads an index written by `Save`; `query_num_assignments` overrides
        the saved number of visual words per query descriptor."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such ASMK index file: {path}")
        with np.load(io.BytesIO(atomic.read_bytes(path)), allow_pickle=False) as saved:
            if "format" not in saved or [str(f) for f in saved["format"]] != [_FORMAT]:
                raise ValueError(f"{path} is not an ASMK index ({_FORMAT})")
            alpha, tau, query_ma, index_ma, binary = saved["params"]
            params = AsmkParams(
                alpha=float(alpha), tau=float(tau),
                query_num_assignments=int(query_num_assignments or query_ma),
                index_num_assignments=int(index_ma), binary=bool(binary))
            index = cls(saved["codebook"], params)
            index.inverted_file.initialize_from_state(
                {k[len("ivf_"):]: saved[k] for k in saved.files if k.startswith("ivf_")},
                source=path)
            index.image_names = [str(n) for n in saved["image_names"]]
        if len(index.image_names) != index.num_images:
            raise ValueError(f"{path}: {len(index.image_names)} names for "
                             f"{index.num_images} indexed images")
        return index


def ReadDescriptors(path: str) -> np.ndarray:
    """Float local descriptors float32 [N, D] of a DelfFeatures file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such feature file: {path}")
    descriptors = feature_io.read_features(path).descriptors
    if len(descriptors) and not np.issubdtype(descriptors.dtype, np.floating):
        raise ValueError(f"{path} holds {descriptors.dtype} descriptors; ASMK needs float ones")
    return descriptors
