"""The ELFM baseline's training options: cosine decay, weight decay, learnable scale."""

import dataclasses

import numpy as np
import pytest

from delf_tf.training import trainer


def test_learning_rate_schedules():
    config = trainer.TrainConfig(initial_lr=0.05, max_iters=100)
    linear = trainer.LearningRateSchedule(config)
    cosine = trainer.LearningRateSchedule(dataclasses.replace(config, lr_schedule="cosine"))
    for step, linear_lr, cosine_lr in ((0, 0.05, 0.05), (50, 0.025, 0.025),
                                       (25, 0.0375, 0.025 * (1 + np.cos(np.pi / 4))),
                                       (100, 0.0, 0.0)):
        assert float(linear(step)) == pytest.approx(linear_lr, abs=1e-7)
        assert float(cosine(step)) == pytest.approx(cosine_lr, abs=1e-7)
    with pytest.raises(ValueError, match="lr_schedule"):
        trainer.LearningRateSchedule(dataclasses.replace(config, lr_schedule="step"))


def test_weight_decay_shrinks_weights():
    import keras
    import tensorflow as tf

    config = trainer.TrainConfig(initial_lr=0.1, max_iters=10, weight_decay=1e-2)
    assert trainer.BuildOptimizer(trainer.TrainConfig()).weight_decay is None
    optimizer = trainer.BuildOptimizer(config)
    variable = keras.Variable(np.ones([3], np.float32))
    optimizer.apply_gradients([(tf.zeros([3]), variable)])
    # Zero gradient: only the decay moves the weights, by lr * wd * w.
    np.testing.assert_allclose(variable.numpy(), 1 - 0.1 * 1e-2, rtol=1e-6)


def test_learnable_scale_flag():
    config = trainer.TrainConfig(delg_global_features=True, backbone="resnet_tiny",
                                 use_autoencoder=False)
    fixed = trainer.BuildModel(config, 3)
    assert not fixed.scale_factor.trainable
    learnable = trainer.BuildModel(dataclasses.replace(
            config, delg_learnable_scale=True, delg_arcface_margin=0.15), 3)
    assert learnable.scale_factor.trainable and learnable.arcface_margin == 0.15
    assert any(v is learnable.scale_factor for v in learnable.variable_groups()["desc_fc"])
