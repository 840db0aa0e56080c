"""AggregationParams: the AggregationConfig's fields as one typed group, the
same numbers whichever form drives aggregation, the inverted file and ASMK*."""

import dataclasses
import os

import numpy as np
import pytest

from delf_tf import config as config_lib
from delf_tf.aggregation.asmk_index import AsmkParams
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.aggregation.inverted_file import AsmkInvertedFile
from delf_tf.aggregation.params import AggregationParams
from delf_tf.protos import aggregation_config_pb2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Config = aggregation_config_pb2.AggregationConfig


def test_read_once_from_the_pbtxt_and_back():
    path = os.path.join(REPO, "configs", "index_aggregation_config.pbtxt")
    params = AggregationParams.read(path)
    assert params.to_config() == config_lib.ReadAggregationConfig(path)
    assert AggregationParams.of(params) is params
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.alpha = 1.0
    with pytest.raises(ValueError, match="Invalid aggregation_type"):
        AggregationParams(aggregation_type="BOW")
    # alpha and tau as the config stores them (float32).
    assert AggregationParams(tau=0.1).tau == Config(tau=0.1).tau != 0.1


@pytest.mark.parametrize("aggregation_type", ["VLAD", "ASMK", "ASMK_STAR"])
def test_params_and_config_aggregate_alike(aggregation_type):
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=[16, 8]).astype(np.float32)
    features = rng.normal(size=[40, 8])
    params = AggregationParams(aggregation_type=aggregation_type, codebook_size=16,
                               feature_dimensionality=8, num_assignments=2, alpha=2.5, tau=0.1)
    by_params = ExtractAggregatedRepresentation(params, codebook=codebook).Extract(features)
    by_config = ExtractAggregatedRepresentation(params.to_config(), codebook=codebook).Extract(
        features)
    for a, b in zip(by_params, by_config):
        np.testing.assert_array_equal(a, b)
    if aggregation_type != "VLAD":
        scores = [AsmkInvertedFile(side).Build([by_params[0]], [by_params[1]])
                  .ComputeSimilarities(*by_params) for side in (params, params.to_config())]
        np.testing.assert_array_equal(scores[0], scores[1])


def test_asmk_params_give_each_sides_aggregation_params():
    asmk = AsmkParams(alpha=2.0, tau=0.2, query_num_assignments=3, binary=False)
    query = asmk.side(64, 32, query=True)
    assert (query.aggregation_type, query.num_assignments, query.codebook_size) == ("ASMK", 3, 64)
    assert asmk.side(64, 32, query=False).num_assignments == 1
    assert asmk.aggregation_config(64, 32, query=True) == query.to_config()


def test_codebook_wrappers_are_the_engine(tmp_path):
    pytest.importorskip("faiss")
    from delf_tf.aggregation import asmk_index, asmk_search
    from delf_tf.aggregation.aggregation_extraction import FeatureFiles
    from delf_tf.io import feature_io
    from delf_tf.local_features import LocalFeatures

    rng = np.random.default_rng(0)
    names = [f"img{i}" for i in range(3)]
    for name in names:
        feature_io.write_features(str(tmp_path / f"{name}.delf"), LocalFeatures.from_arrays(
            np.zeros([30, 2]), rng.normal(size=[30, 8]).astype(np.float32)))
    params = asmk_index.CodebookParams(num_words=4, num_images=2, num_iterations=5, seed=1)
    engine = asmk_search.train_codebook_from_features(
        names, FeatureFiles(str(tmp_path)), str(tmp_path / "engine.datum"), params)
    wrapper = asmk_search.TrainCodebookFromFeatures(
        names, str(tmp_path), ".delf", str(tmp_path / "wrapper.datum"), num_words=4,
        num_images=2, num_iterations=5, seed=1)
    np.testing.assert_array_equal(engine, wrapper)
    paths = [str(tmp_path / f"{name}.delf") for name in names]
    np.testing.assert_array_equal(
        asmk_index.TrainAsmkCodebook(paths, 4, 2, 5, seed=1),
        asmk_index.train_codebook(paths, params))
    with pytest.raises(ValueError, match="num_images must be positive"):
        asmk_index.CodebookParams(num_images=0)
