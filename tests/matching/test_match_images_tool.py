"""tools/match_images.py on a photo and a warped copy, through feature files."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from delf_tf.io import feature_io

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "match_images.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_match_images_prints_inliers_and_saves_picture(scene, tmp_path):
    warped, view = scene.warped_view(seed=4, num_true=60, num_random=40, num_false=10)
    Image.fromarray(scene.image).save(tmp_path / "image_1.png")
    Image.fromarray(warped).save(tmp_path / "image_2.jpg")
    for name, (locations, descriptors) in {
            "image_1": (scene.locations, scene.descriptors),
            "image_2": (view.locations, view.descriptors)}.items():
        n = len(locations)
        feature_io.WriteToFile(str(tmp_path / f"{name}.delf"), locations, np.ones(n),
                               descriptors, np.ones(n))
    args = [f"--image_1_path={tmp_path / 'image_1.png'}",
            f"--image_2_path={tmp_path / 'image_2.jpg'}",
            f"--features_1_path={tmp_path / 'image_1.delf'}",
            f"--features_2_path={tmp_path / 'image_2.delf'}"]
    done = _run(*args, f"--output_image={tmp_path / 'match.png'}")
    assert done.returncode == 0, done.stderr
    num_inliers = int(done.stdout.split("Found ")[1].split()[0])
    assert num_inliers >= 45
    picture = np.asarray(Image.open(tmp_path / "match.png").convert("RGB"))
    # The two 512 px images side by side under a caption band (names, method, inliers).
    assert picture.shape[1] == 1024 and 512 + 20 < picture.shape[0] < 512 + 80
    band = picture[:picture.shape[0] - 512]
    assert (band == 255).all(axis=-1).mean() > 0.8 and (band < 100).all(axis=-1).any()

    os.remove(tmp_path / "image_2.delf")
    failed = _run(*args, f"--output_image={tmp_path / 'other.png'}")
    assert failed.returncode == 1 and "image_2.delf" in failed.stderr
    assert not (tmp_path / "other.png").exists()


def test_descriptors_of_different_depths_name_both_files(tmp_path):
    from delf_tf.matching import match_images

    rng = np.random.default_rng(0)
    for name, depth in (("a", 16), ("b", 24)):
        feature_io.WriteToFile(str(tmp_path / f"{name}.delf"), rng.uniform(0, 50, [10, 2]),
                               np.ones(10), rng.normal(size=[10, depth]), np.ones(10))
    with pytest.raises(ValueError, match="a.delf holds descriptors of shape \\(16,\\) but "
                                         ".*b.delf of shape \\(24,\\)"):
        match_images.match_images("a.png", "b.png", str(tmp_path / "a.delf"),
                                  str(tmp_path / "b.delf"), None)
