"""Training-step overhead of DELG's local heads: full DELG step vs a bare backbone+classifier.

Times, in one process, with the same backbone, batch and image size:
  baseline  ResNet backbone (GeM + embedding, as DELG) + cosine/ArcFace classifier,
            cross-entropy loss, SGD-momentum update of every trainable variable;
  delg      the full DELG step: the same plus attention, autoencoder and the three losses
            from delf_tf.models.compute_losses.
Both are tf.functions; steps are interleaved (baseline, delg, baseline, ...) so load from other
processes hits both alike. Prints delg/baseline (target <= 1.25) of the median and of the best
wall time per step, and of the median process CPU time per step (the least sensitive to other
processes on a shared machine), and writes benchmarks/results/train_step_overhead.json.

Usage: .venv/bin/python benchmarks/train_step_overhead.py [--backbone resnet50]
       [--batch_size 8] [--image_size 224] [--steps 5] [--num_classes 1000]
"""

import os
import statistics

import keras
import tensorflow as tf
from _results import flag_parser, timed, write_result

from delf_tf.models import Delg, compute_losses, resnet
from delf_tf.models import layers as delf_layers

_RESULT = os.path.join(os.path.dirname(__file__), "results", "train_step_overhead.json")


class _Baseline(keras.Model):
    """The DELG global branch alone: backbone + cosine classifier with ArcFace margin."""

    def __init__(self, backbone: str, num_classes: int):
        super().__init__(name="baseline")
        self.backbone = resnet.ResNet(backbone, pooling="gem", embedding_layer=True)
        self.cosine_weights = self.add_weight(name="cosine_weights", shape=(2048, num_classes),
                                              initializer="glorot_uniform")

    def logits(self, images, labels):
        embedding, _ = self.backbone(images, training=True)
        cosine = delf_layers.cosine_logits(embedding, self.cosine_weights)
        return delf_layers.arcface_logits(cosine, labels, 0.1, 45.25)


def _make_step(model, loss_fn, batch_size):
    optimizer = keras.optimizers.SGD(learning_rate=0.001, momentum=0.9)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(images, labels)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def main() -> None:
    parser = flag_parser(__doc__, batch_size=8, image_size=224, num_classes=1000)
    parser.add_argument("--backbone", default="resnet50", choices=sorted(resnet.BACKBONES))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model")
    args = parser.parse_args()

    images = tf.random.stateless_uniform([args.batch_size, args.image_size, args.image_size, 3],
                                         seed=[1, 2], minval=-1.0, maxval=1.0)
    labels = tf.random.stateless_uniform([args.batch_size], seed=[3, 4], maxval=args.num_classes,
                                         dtype=tf.int32)

    baseline = _Baseline(args.backbone, args.num_classes)
    baseline.logits(images[:1], labels[:1])

    def baseline_loss(images, labels):
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, baseline.logits(images, labels))
        return tf.reduce_sum(per_example) / args.batch_size

    delg = Delg(backbone=args.backbone)
    delg.init_classifiers(args.num_classes)
    delg.build_for_input(64)

    def delg_loss(images, labels):
        outputs = delg.forward(images, labels=labels, training=True)
        return compute_losses(outputs, labels, global_batch_size=args.batch_size)["total"]

    steps = {"baseline": _make_step(baseline, baseline_loss, args.batch_size),
             "delg": _make_step(delg, delg_loss, args.batch_size)}
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    for name, step in steps.items():  # warm-up: tracing and allocation
        print(f"tracing {name} ...", flush=True)
        step(images, labels).numpy()
    for i in range(args.steps):
        for name, step in steps.items():
            run = timed(lambda s=step: s(images, labels).numpy())
            times[name].append(run.wall)
            cpu_times[name].append(run.cpu)
        print(f"step {i + 1}/{args.steps}: " + ", ".join(
                f"{name} {t[-1]:.3f}s" for name, t in times.items()), flush=True)

    medians = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    result = {
            "backbone": args.backbone, "batch_size": args.batch_size,
            "image_size": args.image_size, "num_classes": args.num_classes,
            "steps": args.steps, "device": "GPU" if tf.config.list_physical_devices("GPU")
            else "CPU",
            "baseline_step_s": medians["baseline"], "delg_step_s": medians["delg"],
            "ratio": medians["delg"] / medians["baseline"],
            "ratio_best": best["delg"] / best["baseline"],
            "ratio_cpu_time": cpu["delg"] / cpu["baseline"], "target_ratio": 1.25,
            "all_times_s": times, "all_cpu_times_s": cpu_times,
    }
    print(f"DELG step {medians['delg']:.3f}s vs baseline {medians['baseline']:.3f}s (median): "
          f"ratio {result['ratio']:.3f}; best {result['ratio_best']:.3f}; "
          f"CPU time {result['ratio_cpu_time']:.3f} (target <= 1.25)")
    write_result(_RESULT, result)


if __name__ == "__main__":
    main()
