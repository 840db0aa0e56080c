"""One DELG training step under MirroredStrategy over two logical CPU devices.

Run as a script (logical devices must be configured before TensorFlow initialises, so not
inside the pytest process). Prints one JSON line with what changed.
"""

import json
import sys

import numpy as np
import tensorflow as tf


def main() -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from delf_tf.models import delg, losses

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    global_batch = 4
    num_classes = 3
    with strategy.scope():
        model = delg.Delg(backbone="resnet_tiny", reduced_dimension=16)
        model.init_classifiers(num_classes)
        model.build_for_input(32)
        optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        optimizer.build(model.trainable_variables)

    images = tf.random.stateless_uniform([global_batch, 64, 64, 3], seed=[1, 2], minval=-1,
                                         maxval=1)
    labels = tf.constant([0, 1, 2, 1])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(global_batch)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    @tf.function
    def step(batch):
        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                outputs = model.forward(images, labels=labels, training=True)
                terms = losses.compute_losses(outputs, labels, global_batch_size=global_batch)
            grads = tape.gradient(terms["total"], model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return terms["total"]

        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    groups = model.variable_groups()
    before = {name: [v.numpy().copy() for v in variables] for name, variables in groups.items()}
    loss = float(step(batch).numpy())
    changed = {name: any(not np.array_equal(b, v.numpy()) for b, v in zip(before[name], variables))
               for name, variables in groups.items()}
    return {"replicas": strategy.num_replicas_in_sync, "loss": loss, "changed": changed}


if __name__ == "__main__":
    print(json.dumps(main()))
    sys.stdout.flush()
