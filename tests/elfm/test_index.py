"""ELFM search equals a brute-force loop over image pairs."""

import numpy as np
import pytest

from delf_tf.elfm import functional as F
from delf_tf.elfm import index as elfm_index

BACKENDS = (["numpy"] + (["faiss"] if elfm_index._faiss is not None else [])
            + (["numba"] if elfm_index._numba is not None else []))


def _random_codes(rng, count, dim=128, max_clusters=4):
    codes = []
    for _ in range(count):
        k = int(rng.integers(0, max_clusters + 1))
        # Few distinct bit patterns so equal scores (ties) occur.
        codes.append(F.pack_codes(rng.random([k, dim]) > rng.choice([0.3, 0.5, 0.7])))
    return codes


def _brute_force(queries, database, dim):
    return np.array([[F.elfm_similarity(q, c, dim) for c in database] for q in queries])


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_equals_brute_force(backend):
    rng = np.random.default_rng(0)
    database = _random_codes(rng, 57)
    queries = _random_codes(rng, 5)
    queries[0] = database[3].copy()
    index = elfm_index.ElfmIndex.from_codes(database, 128, num_clusters=4)
    reference = _brute_force(queries, database, 128)
    # A tiny batch bound forces many database chunks.
    results = index.search(queries, backend=backend, max_batch_elements=100)
    for expected, (ids, scores) in zip(reference, results):
        order = np.lexsort((np.arange(len(expected)), -expected))
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_allclose(scores, expected[order], rtol=0, atol=1e-12)
    top = index.search(queries, top_k=7, backend=backend)
    for (ids, scores), (all_ids, all_scores) in zip(top, results):
        np.testing.assert_array_equal(ids, all_ids[:7])
        np.testing.assert_array_equal(scores, all_scores[:7])


def test_shortlist_scores_only_candidates():
    rng = np.random.default_rng(1)
    database = _random_codes(rng, 30)
    queries = _random_codes(rng, 2)
    index = elfm_index.ElfmIndex.from_codes(database, 128, num_clusters=4)
    reference = _brute_force(queries, database, 128)
    shortlist = np.array([[5, 2, 9, 20], [0, 1, 2, 3]])
    for q, (ids, scores) in enumerate(index.search(queries, shortlist=shortlist)):
        assert sorted(ids) == sorted(shortlist[q])
        np.testing.assert_allclose(scores, reference[q][ids], atol=1e-12)
        assert list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, mmap):
    rng = np.random.default_rng(2)
    database = _random_codes(rng, 12, dim=2048, max_clusters=10)
    index = elfm_index.ElfmIndex.from_codes(database, 2048, [f"img{i}" for i in range(12)], 10)
    path = str(tmp_path / "db.elfmidx")
    index.save(path)
    loaded = elfm_index.ElfmIndex.load(path, mmap=mmap)
    assert loaded.names == index.names and loaded.dim == 2048
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.counts, index.counts)
    # 10 * 2048 bits + the cluster count + the name per image.
    assert index.bytes_per_image() <= 2560 + 1 + 8
    import os
    assert os.path.getsize(path) <= 12 * (2560 + 1 + 8) + 40


def test_load_rejects_bad_files(tmp_path):
    index = elfm_index.ElfmIndex.from_codes(_random_codes(np.random.default_rng(3), 4), 128,
                                            num_clusters=4)
    path = tmp_path / "db.elfmidx"
    index.save(str(path))
    (tmp_path / "short").write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="truncated"):
        elfm_index.ElfmIndex.load(str(tmp_path / "short"))
    (tmp_path / "other").write_bytes(b"not an index at all, clearly")
    with pytest.raises(ValueError, match="bad magic"):
        elfm_index.ElfmIndex.load(str(tmp_path / "other"))
