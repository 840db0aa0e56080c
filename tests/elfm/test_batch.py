"""ELFM evaluation with a global-descriptor shortlist, on generated files."""

import os

import numpy as np

from delf_tf.elfm import batch, descriptor
from delf_tf.elfm import functional as F
from delf_tf.io import datum_io
from delf_tf.retrieval import dataset


def test_shortlist_reranks_the_global_top(tmp_path):
    rng = np.random.default_rng(0)
    index_names = [f"i{k}" for k in range(6)]
    gnd = [{"bbx": [0, 0, 10, 10], "easy": [1, 2], "hard": [], "junk": []},
           {"bbx": [0, 0, 10, 10], "easy": [4], "hard": [5], "junk": []}]
    dataset_path = str(tmp_path / "gnd.mat")
    dataset.WriteDatasetFile(dataset_path, index_names, ["q0", "q1"], gnd)
    for side, names in (("query", ["q0", "q1"]), ("index", index_names)):
        os.makedirs(tmp_path / "elfm" / side)
        os.makedirs(tmp_path / "global" / side)
        for name in names:
            codes = F.pack_codes(rng.random([3, 128]) > 0.5)
            descriptor.WriteCodesToFile(codes, 128, str(tmp_path / "elfm" / side / f"{name}.elfm"))
            datum_io.WriteToFile(rng.standard_normal(8).astype(np.float32),
                                 str(tmp_path / "global" / side / f"{name}.delg_global"))

    def ranks(**options):
        out = tmp_path / f"out{len(os.listdir(tmp_path))}"
        batch.EvaluateElfm(dataset_path, str(tmp_path / "elfm" / "query"), str(out),
                           index_features_dir=str(tmp_path / "elfm" / "index"),
                           global_features_dir=str(tmp_path / "global"), log=lambda _: None,
                           **options)
        return np.load(out / "ranks.npy")

    exhaustive = ranks()
    np.testing.assert_array_equal(ranks(shortlist_size=6), exhaustive)
    from delf_tf.retrieval import evaluation, search
    queries = evaluation.read_global_descriptors(
            [str(tmp_path / "global" / "query" / f"q{k}.delg_global") for k in range(2)])
    images = evaluation.read_global_descriptors(
            [str(tmp_path / "global" / "index" / f"{n}.delg_global") for n in index_names])
    global_order = search.global_search(queries, images)[0]
    shortlisted = ranks(shortlist_size=3)
    for q in range(2):
        top = list(global_order[q, :3])
        # ELFM order within the global top 3, then the global order.
        assert list(shortlisted[q, :3]) == [i for i in exhaustive[q] if i in top]
        np.testing.assert_array_equal(shortlisted[q, 3:], global_order[q, 3:])
