"""Codebook training, aggregation to files and ASMK* / VLAD retrieval on a small
synthetic Revisited-format dataset, through the library and the tools."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from delf_tf.aggregation import aggregation_extraction, codebook, retrieval
from delf_tf.aggregation.extractor import ExtractAggregatedRepresentation
from delf_tf.io import feature_io
from delf_tf.protos import aggregation_config_pb2
from delf_tf.retrieval import dataset

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Config = aggregation_config_pb2.AggregationConfig
DIM = 16
NUM_WORDS = 32


def _write_features(path, descriptors):
    n = len(descriptors)
    feature_io.WriteToFile(str(path), np.zeros([n, 2]), np.ones([n]), descriptors, np.ones([n]))


@pytest.fixture(scope="module")
def synthetic_dataset(tmp_path_factory):
    """3 landmarks of 20 base descriptors each; per landmark 2 easy + 1 hard
    index images (noisy subsets) and 1 query; 3 distractors of random ones."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    landmarks = rng.normal(size=[3, 20, DIM])
    index_names, gnd = [], []
    features_dir = root / "features"
    features_dir.mkdir()

    def image(landmark, keep, noise):
        chosen = rng.choice(20, keep, replace=False)
        return landmarks[landmark, chosen] + noise * rng.normal(size=[keep, DIM])

    for landmark in range(3):
        ids = []
        for kind, keep, noise in (("easy", 16, 0.02), ("easy", 16, 0.02), ("hard", 10, 0.05)):
            name = f"l{landmark}_{kind}{len(ids)}"
            _write_features(features_dir / f"{name}.delg_local", image(landmark, keep, noise))
            index_names.append(name)
            ids.append(len(index_names))  # 1-based, as in the .mat file
        gnd.append({"bbx": [0, 0, 10, 10], "easy": ids[:2], "hard": ids[2:], "junk": []})
    for i in range(3):
        index_names.append(f"distractor{i}")
        _write_features(features_dir / f"distractor{i}.delg_local", rng.normal(size=[15, DIM]))
    query_names = [f"query{landmark}" for landmark in range(3)]
    for landmark, name in enumerate(query_names):
        _write_features(features_dir / f"{name}.delg_local", image(landmark, 14, 0.02))
    dataset_path = str(root / "gnd_synthetic.mat")
    dataset.WriteDatasetFile(dataset_path, index_names, query_names, gnd)

    codebook_path = codebook.ClusterDatasetFeatures(
        dataset_path, str(features_dir), str(root / "codebook"), num_clusters=NUM_WORDS,
        num_iterations=20, feature_extension=".delg_local")
    configs = {}
    for name, aggregation_type, regional in (
            ("query", Config.ASMK_STAR, False), ("index", Config.ASMK_STAR, True),
            ("vlad", Config.VLAD, False)):
        config = Config(codebook_size=NUM_WORDS, feature_dimensionality=DIM,
                        aggregation_type=aggregation_type, codebook_path=codebook_path,
                        use_regional_aggregation=regional)
        configs[name] = str(root / f"{name}_aggregation_config.pbtxt")
        with open(configs[name], "w") as f:
            f.write(text_format.MessageToString(config))
    return {"root": root, "dataset": dataset_path, "features": str(features_dir),
            "configs": configs, "codebook": codebook_path, "index": index_names,
            "queries": query_names}


def _metrics(output_dir):
    return dataset.ReadMetricsFile(os.path.join(output_dir, "metrics.txt"))


def test_codebook_from_dataset(synthetic_dataset):
    centers = codebook.ReadCodebook(synthetic_dataset["codebook"])
    assert centers.shape == (NUM_WORDS, DIM)
    assert os.path.basename(synthetic_dataset["codebook"]) == "codebook.datum"


def test_asmk_star_retrieval_from_features_and_from_files(synthetic_dataset, tmp_path):
    data = synthetic_dataset
    result = retrieval.PerformAggregatedRetrieval(
        data["dataset"], data["configs"]["query"], data["configs"]["index"],
        str(tmp_path / "from_features"), query_features_dir=data["features"],
        index_features_dir=data["features"])
    assert result["medium"] == 1.0 and result["hard"] == 1.0
    assert 0 < result["index_bytes_per_image"] < NUM_WORDS * (DIM // 8 + 4)
    mean_average_precision, _, _, _ = _metrics(str(tmp_path / "from_features"))
    assert mean_average_precision == {"medium": 1.0, "hard": 1.0}

    for names, config, which in ((data["index"], "index", "index"),
                                 (data["queries"], "query", "query")):
        aggregation_extraction.ExtractAggregatedRepresentationsToFiles(
            names, data["features"], data["configs"][config], "", str(tmp_path / which),
            feature_extension=".delg_local")
    assert os.path.isfile(tmp_path / "index" / f"{data['index'][0]}.rasmk_star")
    assert os.path.isfile(tmp_path / "query" / f"{data['queries'][0]}.asmk_star")
    retrieval.PerformAggregatedRetrieval(
        data["dataset"], data["configs"]["query"], data["configs"]["index"],
        str(tmp_path / "from_files"), query_aggregation_dir=str(tmp_path / "query"),
        index_aggregation_dir=str(tmp_path / "index"))
    np.testing.assert_array_equal(np.load(tmp_path / "from_files" / "ranks.npy"),
                                  np.load(tmp_path / "from_features" / "ranks.npy"))


def test_vlad_retrieval(synthetic_dataset, tmp_path):
    data = synthetic_dataset
    result = retrieval.PerformAggregatedRetrieval(
        data["dataset"], data["configs"]["vlad"], data["configs"]["vlad"], str(tmp_path),
        query_features_dir=data["features"], index_features_dir=data["features"])
    assert result["medium"] == 1.0
    assert result["index_bytes_per_image"] > NUM_WORDS * DIM * 4


def test_missing_files_are_reported_before_work(synthetic_dataset, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="delf_tf")
    data = synthetic_dataset
    with pytest.raises(FileNotFoundError, match="12 feature files are missing: .*nowhere"):
        retrieval.PerformAggregatedRetrieval(
            data["dataset"], data["configs"]["query"], data["configs"]["index"], str(tmp_path),
            query_features_dir=data["features"], index_features_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="aggregation files of the queries"):
        retrieval.PerformAggregatedRetrieval(
            data["dataset"], data["configs"]["query"], data["configs"]["index"], str(tmp_path),
            query_aggregation_dir=str(tmp_path), index_features_dir=data["features"])
    with pytest.raises(ValueError, match="features dir or an aggregation dir"):
        retrieval.PerformAggregatedRetrieval(
            data["dataset"], data["configs"]["query"], data["configs"]["index"], str(tmp_path),
            index_features_dir=data["features"])
    assert "Aggregated" not in capsys.readouterr().out
    assert "Aggregated" not in caplog.text  # the progress lines are logged
    assert not os.listdir(tmp_path)


def test_regional_aggregation_with_box_mapping(tmp_path):
    rng = np.random.default_rng(5)
    image_names = ["a", "b"]
    boxes = {"a_box1": rng.normal(size=[4, 8]), "a_box0": rng.normal(size=[6, 8]),
             "a_box2": np.zeros([0, 8]), "b_box0": rng.normal(size=[3, 8])}
    for name, descriptors in boxes.items():
        _write_features(tmp_path / f"{name}.delf", descriptors)
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("name,index_image_id,box_id\na_box1,0,1\nb_box0,1,0\n"
                       "a_box2,0,2\na_box0,0,0\n")
    box_names = aggregation_extraction.ReadMappingBasenameToBoxNames(str(mapping), image_names)
    assert box_names == {"a": ["a_box0", "a_box1", "a_box2"], "b": ["b_box0"]}

    centers = rng.normal(size=[5, 8]).astype(np.float32)
    config = Config(codebook_size=5, feature_dimensionality=8, aggregation_type=Config.ASMK,
                    use_regional_aggregation=True)
    representations = aggregation_extraction.ComputeAggregatedRepresentations(
        image_names, str(tmp_path), config, ".delf", str(mapping), codebook=centers)
    expected = ExtractAggregatedRepresentation(config, codebook=centers).Extract(
        np.concatenate([boxes["a_box0"], boxes["a_box1"]]), np.array([6, 4, 0]))
    np.testing.assert_array_equal(representations[0][1], expected[1])
    np.testing.assert_allclose(representations[0][0], expected[0], atol=1e-6)

    mapping.write_text("name,index_image_id,box_id\na_box0,7,0\n")
    with pytest.raises(ValueError, match="index_image_id 7"):
        aggregation_extraction.ReadMappingBasenameToBoxNames(str(mapping), image_names)


def test_tools(synthetic_dataset, tmp_path):
    data = synthetic_dataset

    def run(tool, *flags):
        result = subprocess.run([sys.executable, os.path.join(_REPO, "tools", tool), *flags],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    output = run("cluster_delf_features.py", f"--dataset_file_path={data['dataset']}",
                 f"--features_dir={data['features']}", "--feature_extension=.delg_local",
                 "--num_clusters=8", f"--output_cluster_dir={tmp_path / 'codebook'}")
    assert "Wrote codebook (8, 16)" in output
    run("extract_aggregation.py", f"--dataset_file_path={data['dataset']}",
        f"--features_dir={data['features']}", "--feature_extension=.delg_local",
        f"--aggregation_config_path={data['configs']['query']}", "--use_query_images",
        f"--output_aggregation_dir={tmp_path / 'query'}")
    assert sorted(os.listdir(tmp_path / "query")) == [
        f"{name}.asmk_star" for name in data["queries"]]
    output = run("perform_aggregated_retrieval.py", f"--dataset_file_path={data['dataset']}",
                 f"--query_aggregation_config_path={data['configs']['query']}",
                 f"--index_aggregation_config_path={data['configs']['index']}",
                 f"--query_aggregation_dir={tmp_path / 'query'}",
                 f"--index_features_dir={data['features']}",
                 f"--output_dir={tmp_path / 'retrieval'}")
    assert "medium" in output and "100.00" in output
    assert _metrics(str(tmp_path / "retrieval"))[0] == {"medium": 1.0, "hard": 1.0}


@pytest.mark.parametrize("bad", ["../outside", "/tmp/abs"])
def test_aggregation_output_names_stay_in_the_directory(tmp_path, bad):
    with pytest.raises(ValueError, match="image name .* not a relative path"):
        aggregation_extraction.ExtractAggregatedRepresentationsToFiles(
                ["ok", bad], str(tmp_path), "no_config.pbtxt", "", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_perform_aggregated_retrieval_is_the_engine_over_two_sides(synthetic_dataset, tmp_path):
    """PerformAggregatedRetrieval reads each side's config once and runs
    retrieve_aggregated over the two AggregationSides."""
    from delf_tf.aggregation.params import AggregationParams

    data = synthetic_dataset
    wrapper = retrieval.PerformAggregatedRetrieval(
        data["dataset"], data["configs"]["query"], data["configs"]["index"],
        str(tmp_path / "wrapper"), query_features_dir=data["features"],
        index_features_dir=data["features"])
    files = aggregation_extraction.FeatureFiles(data["features"], ".delg_local")
    engine = retrieval.retrieve_aggregated(
        data["dataset"],
        retrieval.AggregationSide(params=AggregationParams.read(data["configs"]["query"]),
                                  files=files),
        retrieval.AggregationSide(params=AggregationParams.read(data["configs"]["index"]),
                                  files=files),
        str(tmp_path / "engine"))
    assert wrapper == engine
    np.testing.assert_array_equal(np.load(tmp_path / "wrapper" / "ranks.npy"),
                                  np.load(tmp_path / "engine" / "ranks.npy"))
