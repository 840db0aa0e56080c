"""Input pipeline images/s against training images/s: the pipeline must not be the bottleneck.

Builds TFRecords of GLD-sized JPEGs (640x480) with the dataset builder, then measures in one
process:
  - the training input pipeline (`gld.CreateDataset`, augmentation on) at 321 px;
  - training steps (forward, backward, update) on in-memory batches for DELG with ResNet-50
    and with the tiny backbone at 321 px, default strategy.
Prints pipeline/training ratios (> 1 means the pipeline keeps up) and writes
benchmarks/results/input_pipeline.json.

  python benchmarks/input_pipeline.py [--batch_size 8] [--train_steps 3] [--mixed_precision]
"""

import os
import platform
import tempfile

import numpy as np
import tensorflow as tf
from _results import flag_parser, timed, write_result
from PIL import Image

from delf_tf.data import builder, gld
from delf_tf.training import trainer

_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                        "input_pipeline.json")


def _make_records(directory: str, num_images: int) -> str:
    rng = np.random.default_rng(0)
    images = os.path.join(directory, "images")
    os.makedirs(images)
    with open(os.path.join(directory, "train.csv"), "w") as f:
        f.write("id,url,landmark_id\n")
        for i in range(num_images):
            # Smooth content compresses like a photo (noise would make huge JPEGs).
            base = rng.integers(0, 256, size=(15, 20, 3), dtype=np.uint8)
            image = Image.fromarray(base).resize((640, 480), Image.BILINEAR)
            image.save(os.path.join(images, f"im{i}.jpg"), quality=90)
            f.write(f"im{i},http://x,{i % 10}\n")
    builder.BuildImageDataset(train_directory=images, output_directory=os.path.join(
            directory, "data"), train_csv_path=os.path.join(directory, "train.csv"),
            num_shards=4, progress=lambda message: None)
    return os.path.join(directory, "data", "train-*")


def pipeline_images_per_second(pattern: str, image_size: int, batch_size: int,
                               num_batches: int) -> float:
    dataset = gld.CreateDataset(pattern, image_size=image_size, batch_size=batch_size,
                                augmentation=True, seed=0)
    iterator = iter(dataset)
    for _ in range(3):  # warm-up: threads start, buffers fill
        next(iterator)

    def read_batches():
        for _ in range(num_batches):
            images, _ = next(iterator)
        images.numpy()

    return num_batches * batch_size / timed(read_batches).wall


def training_images_per_second(pattern: str, backbone: str, image_size: int, batch_size: int,
                               num_steps: int, mixed_precision: bool) -> float:
    config = trainer.TrainConfig(
            logdir=tempfile.mkdtemp(), train_file_pattern=pattern,
            validation_file_pattern="", num_classes=1000, backbone=backbone,
            image_size=image_size, batch_size=batch_size, delg_global_features=True,
            mixed_precision=mixed_precision, max_iters=1000)
    import keras

    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        run = trainer._Trainer(config, tf.distribute.get_strategy(), lambda message: None)
        images = tf.random.uniform([batch_size, image_size, image_size, 3], -1.0, 1.0)
        labels = tf.range(batch_size, dtype=tf.int32)
        result, _ = run._train_step(images, labels)  # trace + first step
        float(result["total"])

        def train_steps():
            for _ in range(num_steps):
                result, _ = run._train_step(images, labels)
            float(result["total"])

        return num_steps * batch_size / timed(train_steps).wall
    finally:
        keras.mixed_precision.set_global_policy(previous)


def main() -> None:
    parser = flag_parser(__doc__, batch_size=8, image_size=321, pipeline_batches=20, train_steps=3,
                         mixed_precision=False)
    parser.add_argument("--output", default=_RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        pattern = _make_records(directory, 96)
        pipeline = pipeline_images_per_second(pattern, args.image_size, args.batch_size,
                                              args.pipeline_batches)
        print(f"input pipeline (640x480 JPEG -> augmented {args.image_size} px): "
              f"{pipeline:.1f} images/s")
        results = {
                "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                "machine": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "mixed_precision": args.mixed_precision,
                "pipeline_images_per_s": pipeline,
                "training": {},
        }
        for backbone in ("resnet50", "resnet_tiny"):
            training = training_images_per_second(pattern, backbone, args.image_size,
                                                  args.batch_size, args.train_steps,
                                                  args.mixed_precision)
            ratio = pipeline / training
            print(f"DELG {backbone} training: {training:.2f} images/s; pipeline/training "
                  f"ratio {ratio:.1f} ({'pipeline keeps up' if ratio > 1 else 'BOTTLENECK'})")
            results["training"][backbone] = {"images_per_s": training, "ratio": ratio}
    write_result(args.output, results)


if __name__ == "__main__":
    main()
