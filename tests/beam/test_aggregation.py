"""Beam aggregation and codebook sampling: the single-machine tool's files and sample."""


import numpy as np
import pytest

from delf_tf import config as config_lib
from delf_tf.aggregation import aggregation_extraction
from delf_tf.io import datum_io, feature_io
from delf_tf.protos import aggregation_config_pb2
from tests.conftest import read_files

pytest.importorskip("apache_beam")

_NAMES = [f"img_{i}" for i in range(6)]


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    features_dir = tmp_path / "features"
    features_dir.mkdir()
    for i, name in enumerate(_NAMES):
        num = 0 if i == 3 else 20 + 5 * i  # one image without features
        descriptors = rng.normal(size=(num, 16))
        descriptors /= np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-9)
        feature_io.WriteToFile(str(features_dir / f"{name}.delf"), rng.random((num, 2)),
                               np.ones(num), descriptors, np.ones(num))
    codebook_path = str(tmp_path / "codebook.datum")
    datum_io.WriteToFile(rng.normal(size=(8, 16)).astype(np.float32), codebook_path)
    config = aggregation_config_pb2.AggregationConfig(
        codebook_size=8, feature_dimensionality=16, codebook_path=codebook_path,
        aggregation_type=aggregation_config_pb2.AggregationConfig.ASMK_STAR,
        use_l2_normalization=True, num_assignments=2)
    config_path = str(tmp_path / "aggregation.pbtxt")
    config_lib.WriteConfig(config_path, config)
    return str(features_dir), config_path


def test_aggregation_pipeline_writes_the_tools_files(tmp_path, features):
    from delf_tf.beam import aggregation

    features_dir, config_path = features
    aggregation_extraction.ExtractAggregatedRepresentationsToFiles(
        _NAMES, features_dir, config_path, "", str(tmp_path / "tool"))
    job = aggregation.AggregationJob(config_path, features_dir, str(tmp_path / "beam"))
    report = aggregation.RunAggregation(_NAMES + ["missing"], job, str(tmp_path / "r.json"))
    assert report["done"] == 6 and [r["name"] for r in report["failed_images"]] == ["missing"]
    assert read_files(tmp_path / "beam") == read_files(tmp_path / "tool")
    assert aggregation.RunAggregation(_NAMES, job, str(tmp_path / "r.json"))["skipped"] == 6


def test_codebook_sample_is_the_same_on_beam_and_one_machine(tmp_path, features):
    from delf_tf.beam import aggregation

    features_dir, _ = features
    expected = aggregation.SampleDescriptors(_NAMES, features_dir, ".delf", 25)
    assert expected.shape == (20 + 25 * 4, 16)  # img_0: all 20; img_3: none; others: 25
    sample = aggregation.RunCodebookSampling(
        list(reversed(_NAMES)), features_dir, ".delf", 25, str(tmp_path / "sample.npy"))
    np.testing.assert_array_equal(sample, expected)
