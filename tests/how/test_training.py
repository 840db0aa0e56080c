"""HOW training on the embedded demo set's tuples: whitening learned then
frozen, the backbone trained, the final network a HowNet, resume."""

import os

import numpy as np
import tensorflow as tf

from delf_tf.how import model as how_model
from delf_tf.how import training


def _config(data_root, directory, **kwargs):
    return training.TrainHowConfig(
            data_root=data_root, directory=directory, training_dataset="demo-SfM",
            test_datasets="", arch="resnet18", image_size=48, neg_num=2, query_size=4,
            pool_size=12, batch_size=4, lr=1e-3, output_dim=8, whitening_images=6,
            whitening_features=20, **kwargs)


def test_defaults_are_hows():
    config = training.TrainHowConfig()
    assert (config.arch, config.loss, config.loss_margin, config.weight_decay) == (
        "resnet18", "contrastive", 0.8, 1e-4)
    assert (config.neg_num, config.batch_size, config.image_size) == (5, 5, 1024)
    assert (config.query_size, config.pool_size, config.optimizer) == (2000, 20000, "adam")
    assert (config.output_dim, config.smoothing_size) == (128, 3)


def test_trains_with_frozen_whitening_and_resumes(demo_tuples_root, tmp_path):
    directory = str(tmp_path / "run")
    config = _config(demo_tuples_root, directory, epochs=1)
    tf.keras.utils.set_random_seed(config.seed)
    initial = training.build_how_model(config)
    kernel = initial.whitening.kernel.numpy()
    assert np.abs(kernel).sum() > 0  # learned by PCA, not the zero/random init

    first = training.TrainHow(config)
    assert np.isfinite(first["epochs"][0]["train_loss"])
    trained = how_model.load_how_model(first["model_weights"])
    # The whitening is the PCA one, unchanged by training; the backbone moved.
    np.testing.assert_array_equal(trained.whitening.kernel.numpy(), kernel)
    np.testing.assert_array_equal(trained.whitening.bias.numpy(), initial.whitening.bias.numpy())
    assert not np.allclose(trained.backbone.conv1.kernel.numpy(),
                           initial.backbone.conv1.kernel.numpy())

    resumed = training.TrainHow(_config(demo_tuples_root, directory, epochs=2, resume=True))
    assert [r["epoch"] for r in resumed["epochs"]] == [0, 1]
    final = how_model.load_how_model(resumed["model_weights"])
    np.testing.assert_array_equal(final.whitening.kernel.numpy(), kernel)
    assert any(name.startswith("events")
               for name in os.listdir(os.path.join(directory, "train_logs")))
