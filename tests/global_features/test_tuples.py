"""Hard-negative mining and the tuples / images-from-list pipelines."""

import numpy as np
import pytest
from PIL import Image

from delf_tf.global_features import images, sfm, tuples


def test_mining_picks_nearest_negatives_of_other_clusters_one_per_cluster():
    # 1-D descriptors on the unit circle: angle = similarity order.
    angles = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    pool = np.stack([np.cos(angles), np.sin(angles)], 1)
    pool_clusters = np.array([7, 1, 1, 2, 3, 3, 4])   # pool[0] shares the query's cluster
    query = pool[:1]
    negatives = tuples.mine_hard_negatives(query, pool, np.array([7]), pool_clusters, neg_num=3)
    # nearest first; cluster 7 skipped; pool[2] skipped (cluster 1 used by pool[1]).
    assert negatives.tolist() == [[1, 3, 4]]
    with pytest.raises(ValueError, match="neg_num=5"):
        tuples.mine_hard_negatives(query, pool, np.array([7]), pool_clusters, neg_num=5)


def _reference_mining(queries, pool, query_clusters, pool_clusters, neg_num):
    out = []
    for q in range(len(queries)):
        expected, used = [], {query_clusters[q]}
        for position in np.argsort(-(pool @ queries[q]), kind="stable"):
            if pool_clusters[position] not in used:
                expected.append(position)
                used.add(pool_clusters[position])
            if len(expected) == neg_num:
                break
        out.append(expected)
    return out


def test_mining_shortlist_matches_a_full_sort():
    rng = np.random.default_rng(5)
    pool = rng.normal(size=[500, 8])
    queries = rng.normal(size=[30, 8])
    pool_clusters = rng.integers(0, 40, 500)
    query_clusters = rng.integers(0, 40, 30)
    got = tuples.mine_hard_negatives(queries, pool, query_clusters, pool_clusters, neg_num=5)
    assert got.tolist() == _reference_mining(queries, pool, query_clusters, pool_clusters, 5)
    # The 300 nearest images share the query's cluster: the shortlist holds no negative and
    # the whole pool is walked.
    pool[:300] = queries[0] * 10 + rng.normal(size=[300, 8]) * 0.01
    pool_clusters[:300] = query_clusters[0]
    got = tuples.mine_hard_negatives(queries[:1], pool, query_clusters[:1], pool_clusters, 5)
    assert got.tolist() == _reference_mining(queries[:1], pool, query_clusters[:1],
                                             pool_clusters, 5)
    assert got.min() >= 300


def _write_images(tmp_path, count):
    rng = np.random.default_rng(0)
    cids = [f"{i:08x}" for i in range(count)]
    for cid in cids:
        path = tmp_path / sfm.cid2filename(cid, "ims")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:   # no extension, as SfM images
            Image.fromarray(rng.integers(0, 255, [40, 60, 3], dtype=np.uint8)).save(f, "PNG")
    return cids


def test_images_from_list_crops_and_shrinks(tmp_path):
    cids = _write_images(tmp_path, 2)
    paths = [sfm.cid2filename(c, str(tmp_path / "ims")) for c in cids]
    out = list(images.ImagesFromList(paths, image_size=30, bbxs=[None, [10, 5, 30, 25]]))
    assert out[0].shape == (20, 30, 3)     # 40x60 shrunk to max side 30
    assert out[1].shape == (20, 20, 3)     # crop 20x20 already fits
    original = np.asarray(Image.open(paths[1]))
    np.testing.assert_array_equal(out[1].numpy(), original[5:25, 10:30])
    assert next(iter(images.ImagesFromList(paths, image_size=100))).shape == (40, 60, 3)


def test_images_from_list_clips_boxes_and_names_one_outside(tmp_path):
    import tensorflow as tf

    from delf_tf.global_features import extraction

    cids = _write_images(tmp_path, 1)
    paths = [sfm.cid2filename(c, str(tmp_path / "ims")) for c in cids]
    original = np.asarray(Image.open(paths[0]))
    clipped = next(iter(images.ImagesFromList(paths, image_size=100, bbxs=[[40, -5, 90, 20]])))
    np.testing.assert_array_equal(clipped.numpy(), original[0:20, 40:60])  # no padding
    outside = [[70.0, 5.0, 90.0, 20.0]]  # the image is 60 wide
    with pytest.raises(tf.errors.InvalidArgumentError, match=images.BOX_OUTSIDE_TAG):
        list(images.ImagesFromList(paths, image_size=100, bbxs=outside))
    never_called = lambda image: pytest.fail("described an image with no pixels")  # noqa: E731
    model = type("Model", (), {"meta": {"outputdim": 4}})()
    extraction._DESCRIBE_FUNCTIONS[model] = {((1.0,), 1.0): never_called}
    with pytest.raises(ValueError, match=f"{cids[0]}: bounding box \\[70, 5, 90, 20\\] lies "
                                         "outside the 60x40 image"):
        extraction.extract_vectors(model, paths, 100, outside)


def test_tuples_dataset_mines_with_the_describer(tmp_path):
    cids = _write_images(tmp_path, 8)
    split = sfm.SfmSplit(cids, np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.array([0, 2]),
                         np.array([1, 3]))
    data = tuples.TuplesDataset(split, str(tmp_path / "ims"),
                                tuples.TuplesConfig(neg_num=2, query_size=5, pool_size=8,
                                                    image_size=32))
    # A fake network: one-hot of the image's position plus a shared component that makes
    # image 4 (then 6, then the other query) nearest to each query.
    index = {p: i for i, p in enumerate(data.paths)}

    def describe(paths, bbxs):
        out = np.zeros([len(paths), 9], np.float32)
        for row, p in enumerate(paths):
            i = index[p]
            out[row, i] = 1.0
            out[row, 8] = {0: 1.0, 2: 1.0, 4: 5.0, 6: 4.0}.get(i, 0.0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    data.create_epoch_tuples(describe)
    by_query = {int(t[0]): t.tolist() for t in data.tuples}
    assert by_query[0] == [0, 1, 4, 6] and by_query[2] == [2, 3, 4, 6]
    elements = list(data.dataset(shuffle=False))
    assert len(elements) == 2 and len(elements[0]) == 4
    assert all(image.shape == (21, 32, 3) for image in elements[0])
