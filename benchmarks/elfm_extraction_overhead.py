"""ELFM extraction overhead: the whole ELFM extraction vs the bare backbone pyramid.

Times, per image and in one process (interleaved rounds, best of --repeats):
  baseline    the bare ResNet backbone run once per pyramid scale (the paper's five,
              1/(2 sqrt 2) .. sqrt 2) on the pre-resized images, one after another;
  extraction  ElfmExtractor(image): resize, the in-graph pyramid with the top-N selection by
              L2 norm, then k-means (K = 10), GeM per cluster, whitening, bits;
  clustering  the NumPy/TF part after the graph alone (describe on the N features).
Prints extraction/baseline ratios, wall and process CPU time (target <= 1.15).
Weights are random (no pretrained weights here).

Usage: .venv/bin/python benchmarks/elfm_extraction_overhead.py [--max_image_size 1024]
       [--backbone resnet50] [--repeats 2] [--rounds 2]
"""

import os

import numpy as np
import tensorflow as tf
from _results import flag_parser, interleaved, print_and_write

from delf_tf.elfm import extraction
from delf_tf.models import Delg, normalize_images

_RESULT = os.path.join(os.path.dirname(__file__), "results", "elfm_extraction_overhead.json")


def main() -> None:
    parser = flag_parser(__doc__, max_image_size=1024, image_height=768, backbone="resnet50",
                         repeats=2, rounds=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    height = args.image_height
    # Smooth random structure, so feature norms vary across the image.
    rng = np.random.RandomState(0)
    coarse = rng.randint(0, 256, [height // 16, height // 12, 3]).astype(np.float32)
    image = tf.image.resize(coarse, [height, height * 4 // 3]).numpy().astype(np.uint8)

    model = Delg(backbone=args.backbone)
    model.build_for_input(64)
    extractor = extraction.ElfmExtractor(extraction.ElfmModule(model),
                                         max_image_size=args.max_image_size)
    resized = extractor.resize(image)
    normalized = normalize_images(resized)
    pyramid_images = [
            tf.image.resize(normalized, [round(resized.shape[0] * s), round(resized.shape[1] * s)])
            [tf.newaxis] for s in extractor.scales]

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def backbone_forward(images):
        return model.backbone(images, training=False)[1]["block4"]

    def baseline():
        for images in pyramid_images:
            backbone_forward(images).numpy()

    features = extractor.pyramid(resized)["features"]
    best, cpu = interleaved({"baseline": baseline, "extraction": lambda: extractor(image),
                             "clustering": lambda: extractor.describe(features)},
                            args.rounds, args.repeats, warmup=True)
    descriptor = extractor.describe(features)
    report = {
            "backbone": args.backbone,
            "resized_image": list(resized.shape[:2]),
            "scales": extractor.scales,
            "num_local_features": int(len(features)),
            "num_clusters": descriptor.num_clusters,
            "code_bits": descriptor.dim,
            "baseline_s_per_image": best["baseline"],
            "extraction_s_per_image": best["extraction"],
            "clustering_s_per_image": best["clustering"],
            "ratio_extraction_vs_backbone": best["extraction"] / best["baseline"],
            "baseline_cpu_s_per_image": cpu["baseline"],
            "extraction_cpu_s_per_image": cpu["extraction"],
            "clustering_cpu_s_per_image": cpu["clustering"],
            "cpu_ratio_extraction_vs_backbone": cpu["extraction"] / cpu["baseline"],
            "cpu_threads": os.cpu_count(),
            "load_average_at_start": load,
    }
    print_and_write(_RESULT, report)


if __name__ == "__main__":
    main()
