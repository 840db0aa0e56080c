"""Tuple-training overhead and mining cost of the global-features training job.

Times, in one process, on the same 7 images (a tuple: query, positive, 5 negatives; sizes
differ as in SfM-120k, so each image is its own forward pass, as in training):
  baseline  bare backbone: per-image forward + backward of the feature map's mean, one AdamW
            update of every backbone variable;
  tuple     the training job's step (delf_tf.global_features.training.TupleStep): per-image
            forward, GeM, L2, contrastive loss over the tuple, backward, gradient accumulation,
            then one AdamW update (batch_size = 1: the update is not amortised over tuples).
Steps are interleaved (baseline, tuple, baseline, ...) so load from other processes hits both
alike. Prints tuple/baseline (target <= 1.2) of the median and best wall time and of the median
process CPU time.

Mining: time to describe one image at --image_size (the per-image cost of mining, which
describes query_size + pool_size images per epoch) and the nearest-negative search itself for
--query_size x --pool_size random 2048-D descriptors; prints the projected mining time per
epoch at the original's sizes (2000 queries, 20000 pool images).

Writes benchmarks/results/global_tuple_step.json.

Usage: .venv/bin/python benchmarks/global_tuple_step.py [--arch resnet50] [--image_size 512]
       [--steps 5] [--query_size 2000] [--pool_size 20000]
"""

import json
import os
import statistics

import keras
import numpy as np
import tensorflow as tf
from _results import flag_parser, timed, write_result

from delf_tf.global_features import extraction, training, tuples
from delf_tf.models import global_model
from delf_tf.models.preprocessing import normalize_images

_RESULT = os.path.join(os.path.dirname(__file__), "results", "global_tuple_step.json")


def _images(image_size: int) -> list[tf.Tensor]:
    """7 images whose longer side is image_size, with differing aspect ratios."""
    rng = np.random.default_rng(0)
    shapes = [(1.0, 0.75), (0.75, 1.0), (1.0, 0.66), (0.8, 1.0), (1.0, 1.0), (0.6, 1.0),
              (1.0, 0.7)]
    return [tf.constant(rng.integers(0, 256, [int(image_size * h), int(image_size * w), 3],
                                     dtype=np.uint8)) for h, w in shapes]


def _baseline_step(model: global_model.GlobalFeatureNet):
    variables = model.backbone.trainable_variables
    optimizer = keras.optimizers.AdamW(learning_rate=1e-6, weight_decay=1e-6)
    optimizer.build(variables)
    forward = tf.function(lambda x: model.backbone(x, training=False)[0],
                          input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    spec = [tf.TensorSpec([None, None, 3], tf.uint8)] * 7

    @tf.function(input_signature=spec)
    def step(*images):
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_mean(forward(normalize_images(image)[None]))
                             for image in images])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def main() -> None:
    parser = flag_parser(__doc__, arch="resnet50", image_size=512, steps=5, query_size=2000,
                         pool_size=20000)
    args = parser.parse_args()

    model = global_model.GlobalFeatureNet(args.arch, "gem")
    model.build_for_input()
    images = _images(args.image_size)
    baseline = _baseline_step(model)
    config = training.TrainGlobalConfig(lr=1e-6)
    tuple_step = training.TupleStep(model, training.make_optimizer(config), "contrastive",
                                    0.7, neg_num=5)

    def ours(*tuple_images):
        loss = tuple_step.accumulate(*tuple_images)
        tuple_step.apply()
        return loss

    def run(function):
        # The result fetched to the host, so the timing covers the work.
        return lambda: np.asarray(function(*images))

    for function in (baseline, ours):  # trace and warm up
        run(function)()
    times = {"baseline": [], "tuple": []}
    for _ in range(args.steps):
        for name, function in (("baseline", baseline), ("tuple", ours)):
            times[name].append(timed(run(function)).best)
    summary = {}
    for name, samples in times.items():
        walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
        summary[name] = {"median_wall_s": statistics.median(walls), "best_wall_s": min(walls),
                         "median_cpu_s": statistics.median(cpus)}
    ratios = {key: summary["tuple"][key] / summary["baseline"][key]
              for key in ("median_wall_s", "best_wall_s", "median_cpu_s")}

    # Mining: per-image description cost (one image per pass, as mining runs) ...
    describe = extraction._describe_function(model, (1.0,), 1.0)
    describe(images[0])
    per_image = timed(lambda: [describe(image).numpy() for image in images]).wall / len(images)
    # ... and the nearest-negative search over random descriptors.
    rng = np.random.default_rng(0)
    queries = rng.normal(size=[args.query_size, 2048]).astype(np.float32)
    pool = rng.normal(size=[args.pool_size, 2048]).astype(np.float32)
    query_clusters = rng.integers(0, 500, args.query_size)
    pool_clusters = rng.integers(0, 500, args.pool_size)
    search = timed(lambda: tuples.mine_hard_negatives(queries, pool, query_clusters,
                                                      pool_clusters, neg_num=5)).wall
    mining = {"describe_seconds_per_image": per_image, "search_seconds": search,
              "projected_epoch_seconds": per_image * (args.query_size + args.pool_size) + search,
              "query_size": args.query_size, "pool_size": args.pool_size}

    result = {"arch": args.arch, "image_size": args.image_size, "steps": args.steps,
              "devices": [d.device_type for d in tf.config.list_logical_devices()],
              "step": summary, "tuple_over_baseline": ratios, "mining": mining}
    print(json.dumps(result, indent=2))
    print(f"tuple/baseline: median wall {ratios['median_wall_s']:.3f}, best wall "
          f"{ratios['best_wall_s']:.3f}, median CPU {ratios['median_cpu_s']:.3f} (target <= 1.2)")
    print(f"mining: {per_image * 1000:.1f} ms per image described, search {search:.2f} s; "
          f"projected {mining['projected_epoch_seconds']:.0f} s per epoch at "
          f"{args.query_size} queries + {args.pool_size} pool images")
    write_result(_RESULT, result, announce=False)


if __name__ == "__main__":
    main()
