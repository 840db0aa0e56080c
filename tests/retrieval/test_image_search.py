"""delf-search on a folder of demo images, and its library (image lists, ranking, result and
GLDv2 predictions files)."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from delf_tf import config as config_lib
from delf_tf.aggregation.asmk_index import TrainAsmkCodebook
from delf_tf.protos import delf_config_pb2
from delf_tf.retrieval import gldv2, image_search

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_list_images_folder_list_and_glob(tmp_path):
    for rel in ("b/2.jpg", "a/1.PNG", "a/notes.txt", "c.jpeg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert image_search.ListImages(str(tmp_path)) == [
        str(tmp_path / "c.jpeg"), str(tmp_path / "a" / "1.PNG"), str(tmp_path / "b" / "2.jpg")]
    (tmp_path / "list.txt").write_text("b/2.jpg\n\n# comment\n" + str(tmp_path / "c.jpeg") + "\n")
    assert image_search.ListImages(str(tmp_path / "list.txt")) == [
        str(tmp_path / "b" / "2.jpg"), str(tmp_path / "c.jpeg")]
    assert image_search.ListImages(str(tmp_path / "*" / "*.jpg")) == [str(tmp_path / "b" / "2.jpg")]
    with pytest.raises(FileNotFoundError, match="No images found for"):
        image_search.ListImages(str(tmp_path / "nothing_*.jpg"))


def test_image_names_must_be_unique():
    assert image_search.ImageNames(["x/a.jpg", "y/b.png"]) == ["a", "b"]
    with pytest.raises(ValueError, match="Two images have the name 'a': x/a.jpg and y/a.png"):
        image_search.ImageNames(["x/a.jpg", "y/a.png"])


def test_gldv2_predictions_round_trip(tmp_path):
    path = tmp_path / "predictions.csv"
    ranked = {"q1": [f"i{k}" for k in range(150)], "q2": ["i3", "i1"]}
    gldv2.WriteRetrievalPredictions(str(path), ranked)
    public, private = gldv2.ReadPredictions(str(path), ["q1"], ["q2"], [], gldv2.RETRIEVAL_TASK_ID)
    assert public == {"q1": ranked["q1"][:100]} and private == {"q2": ["i3", "i1"]}
    with pytest.raises(ValueError, match="contains a space"):
        gldv2.WriteRetrievalPredictions(str(path), {"q 1": ["i1"]})
    gldv2.WriteRecognitionPredictions(str(path), {"q1": {"class": 7, "score": 0.5}, "q2": {}})
    public, private = gldv2.ReadPredictions(str(path), ["q1"], ["q2"], [],
                                            gldv2.RECOGNITION_TASK_ID)
    assert public == {"q1": {"class": 7, "score": 0.5}} and private == {}


@pytest.fixture(scope="module")
def demo_folders(tmp_path_factory):
    """Demo queries, and a database of the demo index images plus an exact copy of one query
    under another name (its top result whatever the model's training)."""
    from delf_tf.data import demo

    root = tmp_path_factory.mktemp("search")
    dataset = demo.GenerateDemoDataset(str(root / "demo"), demo.DemoConfig(
        num_landmarks=3, image_size=160, train_per_landmark=1, noisy_per_landmark=0,
        queries_per_landmark=1, easy_per_landmark=2, hard_per_landmark=0, junk_per_landmark=0,
        num_distractors=2), log=lambda *_: None)
    jpg = root / "demo" / "jpg"
    queries, database = root / "queries", root / "database"
    queries.mkdir()
    database.mkdir()
    for name in sorted(os.listdir(jpg)):
        shutil.copy(jpg / name, (queries if "_query_" in name else database) / name)
    first_query = sorted(os.listdir(queries))[0]
    shutil.copy(queries / first_query, database / ("copy_of_" + first_query))
    del dataset
    return queries, database, os.path.splitext(first_query)[0]


@pytest.fixture(scope="module")
def delg_config(tmp_path_factory, tiny_delg_export):
    """A DelfConfig of a tiny untrained DELG export (every local feature kept)."""
    root = tmp_path_factory.mktemp("model")
    config = delf_config_pb2.DelfConfig(
        use_local_features=True, use_global_features=True, model_path=tiny_delg_export,
        image_scales=[0.70710677, 1.0], max_image_size=160, is_tf2_exported=True)
    config.delf_local_config.use_pca = False
    config.delf_global_config.use_pca = False
    config.delf_local_config.max_feature_num = 200
    config.delf_local_config.score_threshold = -1e9
    path = str(root / "delg_config.pbtxt")
    config_lib.WriteConfig(path, config)
    return path


def test_delf_search_ranks_the_copy_of_the_query_first(demo_folders, delg_config, tmp_path):
    queries, database, first_query = demo_folders
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, os.path.join(_REPO, "tools", "search.py"),
         f"--query_images={queries}", f"--index_images={database}",
         f"--delf_config_path={delg_config}", f"--output_dir={out}", "--method=delg",
         "--num_to_rerank=5", f"--gldv2_predictions_path={tmp_path / 'predictions.csv'}"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=_REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    num_database = len(os.listdir(database))

    with open(out / "results.json") as f:
        payload = json.load(f)
    assert payload["method"] == "delg"
    assert sorted(payload["queries"]) == sorted(os.path.splitext(q)[0] for q in os.listdir(queries))
    top = payload["queries"][first_query]["results"]
    assert top[0]["name"] == "copy_of_" + first_query and top[0]["rank"] == 1
    assert top[0]["score"] == pytest.approx(1.0, abs=1e-4)  # identical global descriptor
    assert top[0]["inliers"] == max(r["inliers"] or 0 for r in top) > 0
    assert len(top) == num_database and sum(r["inliers"] is not None for r in top) == 5

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    first = [r for r in rows if r["query"] == first_query]
    assert first[0]["image"] == "copy_of_" + first_query and first[0]["rank"] == "1"
    assert first[0]["image_path"] == str(database / ("copy_of_" + first_query + ".jpg"))
    with open(tmp_path / "predictions.csv") as f:
        lines = f.read().splitlines()
    assert lines[0] == "id,images" and len(lines) == 1 + len(payload["queries"])
    assert f"{first_query},copy_of_{first_query} " in "\n".join(lines)

    # Other methods rank from the cached features; an index image named like the query
    # (the query itself, when searching a folder against itself) is left out.
    features = out / "features"
    query_names = sorted(payload["queries"])
    index_paths = image_search.ListImages(str(database))
    index_names = image_search.ImageNames(index_paths)
    codebook = image_search.TrainCodebook(index_names, str(features / "index"), 64)
    assert 2 <= len(codebook) <= 64
    # The descriptors read once are clustered as train_asmk_codebook clusters the files.
    np.testing.assert_array_equal(codebook, TrainAsmkCodebook(
        [str(features / "index" / (n + image_search.LOCAL_EXTENSION)) for n in index_names],
        num_words=len(codebook), num_images=len(index_names)))
    for method in ("delg_global", "delf", "asmk"):
        ranked = image_search.Rank(method, query_names, index_names, index_paths,
                                   str(features / "query"), str(features / "index"),
                                   num_results=3, codebook=codebook)
        assert ranked[first_query][0].name == "copy_of_" + first_query, method
    itself = image_search.Rank("delg_global", ["copy_of_" + first_query], index_names,
                               index_paths, str(features / "index"), str(features / "index"),
                               num_results=100)["copy_of_" + first_query]
    assert len(itself) == len(index_names) - 1
    assert "copy_of_" + first_query not in [m.name for m in itself]


def test_elfm_search_ranks_the_copy_of_the_query_first(demo_folders, tiny_delg_export, tmp_path):
    from delf_tf.elfm.extraction import ElfmExtractor

    queries, database, first_query = demo_folders
    checkpoint = os.path.join(os.path.dirname(tiny_delg_export), "delf_weights")
    extractor = ElfmExtractor(checkpoint, num_clusters=4, num_features=50, max_image_size=160)
    query_paths = image_search.ListImages(str(queries))
    index_paths = image_search.ListImages(str(database))
    query_names = image_search.ImageNames(query_paths)
    index_names = image_search.ImageNames(index_paths)
    assert image_search.ExtractElfmFeatures(extractor, query_paths, query_names,
                                            str(tmp_path / "query")) == []
    assert image_search.ExtractElfmFeatures(extractor, index_paths, index_names,
                                            str(tmp_path / "index")) == []
    ranked = image_search.Rank("elfm", query_names, index_names, index_paths,
                               str(tmp_path / "query"), str(tmp_path / "index"), num_results=3)
    best = ranked[first_query][0]
    assert best.name == "copy_of_" + first_query and best.score == pytest.approx(1.0)
    assert best.inliers is None


def test_search_request_feature_folders_and_missing_models(tmp_path):
    request = image_search.SearchRequest(query_images="q", index_images="i",
                                         output_dir=str(tmp_path), method="delg_star",
                                         delf_config_path="c.pbtxt")
    assert request.feature_dirs() == (str(tmp_path / "features" / "binarized" / "query"),
                                      str(tmp_path / "features" / "binarized" / "index"))
    with pytest.raises(ValueError, match="elfm needs an elfm_model_path"):
        image_search.SearchRequest(query_images="q", index_images="i", output_dir="o",
                                   method="elfm").feature_dirs()
    with pytest.raises(ValueError, match="delg needs a delf_config_path"):
        image_search.SearchRequest(query_images="q", index_images="i",
                                   output_dir="o").feature_dirs()
