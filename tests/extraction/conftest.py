"""Small exported models shared by the extraction tests (exports cost seconds,
so each is made once per session)."""

import numpy as np
import pytest
from PIL import Image

from delf_tf.extraction import export
from delf_tf.models import Delf, Delg, resnet, save_weights


@pytest.fixture(scope="session")
def delg_model():
    """Tiny DELG: stride 32, autoencoder to 128-D local features, 2048-D global."""
    model = Delg(backbone="resnet_tiny")
    model.build_for_input(64)
    return model


@pytest.fixture(scope="session")
def delf_model():
    """Tiny DELF without autoencoder (1024-D local features) and block3 stride 16."""
    model = Delf(backbone="resnet_tiny", block3_strides=False, use_dim_reduction=False)
    model.build_for_input(64)
    return model


@pytest.fixture(scope="session")
def delg_export(tmp_path_factory, delg_model):
    """DELG local+global SavedModel, exported from a checkpoint like the tool does."""
    root = tmp_path_factory.mktemp("delg")
    save_weights(delg_model, str(root / "delf_weights"))
    path = str(root / "export")
    export.ExportLocalAndGlobalModel(str(root / "delf_weights"), path)
    return path


@pytest.fixture(scope="session")
def delf_export(tmp_path_factory, delf_model):
    """DELF local-only SavedModel, with the original's ResNet-50 block3 geometry (stride 16,
    receptive field 291, padding 145) stated explicitly: its test pins those boxes
    (resnet_tiny's own block3 field is 67)."""
    path = str(tmp_path_factory.mktemp("delf") / "export")
    export.save_module(export.LocalFeatureModule(
        delf_model, geometry=resnet.FeatureGeometry(stride=16, receptive_field=291)), path)
    return path


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [height, width, 3] with smooth structure (so attention varies)."""
    rng = np.random.RandomState(seed)
    coarse = rng.randint(0, 256, [max(height // 8, 2), max(width // 8, 2), 3]).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((width, height)))
    noise = rng.randint(-20, 21, [height, width, 3])
    return np.clip(smooth.astype(np.int32) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_image():
    """The random_image function: (height, width, seed=0) -> uint8 [H, W, 3]."""
    return random_image
