"""HOW's ASMK*: compact persistent index, faiss codebook, agreement with the
authors' `asmk` package."""

import numpy as np
import pytest

from delf_tf.aggregation import compression
from delf_tf.aggregation.asmk_index import AsmkIndex, AsmkParams, TrainAsmkCodebook
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.similarity import SimilarityAggregatedRepresentation
from delf_tf.io import feature_io


def _images(rng, num_images, dim, centers):
    # Descriptors clustered around a few "objects", so images share words.
    images = []
    for i in range(num_images):
        num = 0 if i == 2 else int(rng.integers(5, 60))
        picks = centers[rng.integers(0, len(centers), size=num)]
        images.append((picks + 0.3 * rng.normal(size=picks.shape)).astype(np.float32))
    return images


def test_varint_and_delta_coding_round_trip():
    values = np.array([0, 1, 127, 128, 16383, 16384, 2**31 - 1, 2**40, 5], dtype=np.int64)
    codes = compression.varint_encode(values)
    # 1 + 1 + 1 + 2 + 2 + 3 + 5 + 6 + 1 bytes.
    assert codes.size == 22
    np.testing.assert_array_equal(compression.varint_decode(codes), values)
    assert compression.varint_decode(compression.varint_encode(np.zeros([0], int))).size == 0
    with pytest.raises(ValueError, match="Truncated"):
        compression.varint_decode(compression.varint_encode(np.array([128]))[:1])
    lists = np.array([3, 7, 7, 100, 1, 2, 50], dtype=np.int64)
    offsets = np.array([0, 4, 4, 7])
    gaps = compression.delta_encode_lists(lists, offsets)
    np.testing.assert_array_equal(gaps, [3, 4, 0, 93, 1, 1, 48])
    np.testing.assert_array_equal(compression.delta_decode_lists(gaps, offsets), lists)
    with pytest.raises(ValueError, match="non-decreasing"):
        compression.delta_encode_lists(np.array([5, 2]), np.array([0, 2]))


def test_build_searches_many_images_at_once_as_one_by_one():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=[20, 32])
    database = _images(rng, 40, 32, centers)  # image 2 has no descriptors
    codebook = rng.normal(size=[64, 32]).astype(np.float32)
    index = AsmkIndex(codebook).Build(database)
    one_by_one = AsmkIndex(codebook).BuildFromRepresentations(
        [index.AggregateIndexImage(d) for d in database])
    for key, value in index.inverted_file.state_dict().items():
        np.testing.assert_array_equal(value, one_by_one.inverted_file.state_dict()[key], key)
    assert index.inverted_file.num_entries > 40


def test_index_save_load_gives_identical_scores(tmp_path):
    rng = np.random.default_rng(0)
    dim = 32
    centers = rng.normal(size=[20, dim])
    database = _images(rng, 40, dim, centers)
    queries = _images(rng, 5, dim, centers)
    codebook = rng.normal(size=[64, dim]).astype(np.float32)
    index = AsmkIndex(codebook).Build(database, [f"img{i}" for i in range(40)])
    path = str(tmp_path / "index.asmk")
    index.Save(path)
    loaded = AsmkIndex.Load(path)
    assert loaded.image_names == index.image_names
    assert loaded.params == AsmkParams()
    for query in queries:
        np.testing.assert_array_equal(loaded.ComputeSimilarities(query),
                                      index.ComputeSimilarities(query))
    stats = loaded.Stats()
    assert stats["images"] == 40
    assert stats["vectors_per_image"] == index.inverted_file.num_entries / 40
    # 4 bytes of sign bits per vector plus about one byte of coded image id.
    assert 4.0 < stats["bytes_per_image"] / stats["vectors_per_image"] < 6.5
    assert stats["image_id_bytes_per_vector"] <= 1.5

    # The same scores as comparing representations one pair at a time, with
    # queries on 5 words and database images on 1.
    similarity = SimilarityAggregatedRepresentation(index.params.aggregation_config(64, dim, False))
    query_data, query_words = index.AggregateQuery(queries[0])
    expected = [similarity.ComputeSimilarity(query_data, d, query_words, w)
                for d, w in map(index.AggregateIndexImage, database)]
    np.testing.assert_allclose(index.ComputeSimilarities(queries[0]), expected, atol=1e-12)
    assert len(query_words) > len(index.AggregateIndexImage(queries[0])[1])

    corrupt = str(tmp_path / "bad.asmk")
    with open(corrupt, "wb") as f:
        f.write(b"not an index")
    with pytest.raises(ValueError):
        AsmkIndex.Load(corrupt)


def test_inverted_file_compact_state_is_smaller_than_plain_ids():
    rng = np.random.default_rng(1)
    from delf_tf.protos import aggregation_config_pb2
    config = AsmkParams().aggregation_config(256, 64, query=False)
    assert config.aggregation_type == aggregation_config_pb2.AggregationConfig.ASMK_STAR
    data, words = [], []
    for _ in range(300):
        w = np.unique(rng.integers(0, 256, size=120))
        words.append(w)
        data.append(rng.integers(0, 256, size=len(w) * 8, dtype=np.uint8))
    inverted_file = AsmkInvertedFile(config).Build(data, words)
    state = inverted_file.state_dict()
    # ~140 entries per list over 300 images: gaps fit one byte, int32 ids need four.
    assert state["image_id_gaps"].nbytes < 1.1 * inverted_file.num_entries
    restored = AsmkInvertedFile(config).initialize_from_state(state)
    np.testing.assert_array_equal(restored.ComputeSimilarities(data[0], words[0]),
                                  inverted_file.ComputeSimilarities(data[0], words[0]))


def test_faiss_codebook_from_feature_files(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    centers = rng.normal(size=[6, 16]) * 5
    paths = []
    for i in range(6):
        # Image i shows only object i.
        descriptors = centers[i] + 0.1 * rng.normal(size=[200, 16])
        path = str(tmp_path / f"{i}.delf")
        feature_io.WriteToFile(path, np.zeros([200, 2]), np.ones([200]),
                               descriptors.astype(np.float32), np.ones([200]))
        paths.append(path)
    codebook = TrainAsmkCodebook(paths, num_words=2, num_images=2, num_iterations=20)
    assert codebook.shape == (2, 16) and codebook.dtype == np.float32
    # Two images drawn: each codeword sits on one of their two objects.
    distances = np.linalg.norm(codebook[:, None] - centers[None], axis=2)
    assert distances.min(axis=1).max() < 0.1
    assert len(set(distances.argmin(axis=1))) == 2


def test_scores_equal_the_asmk_package():
    asmk_method = pytest.importorskip("asmk.asmk_method")
    from asmk import codebook as asmk_codebook
    from asmk import index as asmk_index

    rng = np.random.default_rng(3)
    dim, num_words = 64, 128
    centers = rng.normal(size=[30, dim])
    database = _images(rng, 50, dim, centers)
    database[2] = database[3][:7]  # the asmk package cannot index an image without features
    queries = _images(rng, 6, dim, centers)[3:]
    codebook = rng.normal(size=[num_words, dim]).astype(np.float32)

    params = {
        "index": {"gpu_id": None},
        "train_codebook": {"codebook": {"size": num_words}},
        "build_ivf": {"kernel": {"binary": True}, "ivf": {"use_idf": False},
                      "quantize": {"multiple_assignment": 1}, "aggregate": {}},
        "query_ivf": {"quantize": {"multiple_assignment": 5}, "aggregate": {},
                      "search": {"topk": None},
                      "similarity": {"similarity_threshold": 0.0, "alpha": 3}},
    }
    cdb = asmk_codebook.Codebook(asmk_index.initialize_index(None), size=num_words)
    cdb.index(codebook)
    theirs = asmk_method.ASMKMethod(params, {}, codebook=cdb)
    vectors = np.concatenate(database)
    image_ids = np.repeat(np.arange(len(database)), [len(d) for d in database])
    theirs = theirs.build_ivf(vectors, image_ids)
    query_ids = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
    _, _, their_ranks, their_sorted = theirs.query_ivf(np.concatenate(queries), query_ids)
    their_scores = np.zeros(their_sorted.shape)
    np.put_along_axis(their_scores, their_ranks, their_sorted, axis=1)

    ours = AsmkIndex(codebook, AsmkParams(alpha=3, tau=0, query_num_assignments=5,
                                          index_num_assignments=1)).Build(database)
    assert ours.Stats()["vectors_per_image"] == theirs.inverted_file.stats["vectors_per_image"]
    for i, query in enumerate(queries):
        np.testing.assert_allclose(ours.ComputeSimilarities(query), their_scores[i],
                                   rtol=1e-6, atol=1e-7)
