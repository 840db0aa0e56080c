"""Extraction overhead: MakeExtractor on an exported DELG model vs the bare backbone.

Times, per image and in one process:
  baseline   the bare ResNet backbone (no attention / autoencoder / heads) run once
             per pyramid scale on the pre-resized images (resizing not counted), one
             scale after another;
  extraction MakeExtractor(config)(image) on a SavedModel exported from a DELG
             model with the same weights: ResizeImage, the in-graph pyramid,
             selection, post-processing, everything a user pays for;
  all-scale  the same with global descriptors requested at every scale (what the
             original computed whatever image_scales_ind said).
and prints extraction/baseline ratios (target <= 1.15) and images/s.

Weights are random (no pretrained weights here); the attention threshold is 0 so
every cell passes it and the top-k selection sees the worst case.

Usage: .venv/bin/python benchmarks/extraction_overhead.py [--max_image_size 1024]
       [--backbone resnet50] [--repeats 3]
"""

import os
import tempfile

import numpy as np
import tensorflow as tf
from _results import flag_parser, interleaved, print_and_write

from delf_tf import config as config_lib
from delf_tf import utils
from delf_tf.extraction import export, extractor
from delf_tf.models import Delg, normalize_images

_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "r50delg_gld_config.pbtxt")
_RESULT = os.path.join(os.path.dirname(__file__), "results", "extraction_overhead.json")


def main() -> None:
    parser = flag_parser(__doc__, max_image_size=1024, backbone="resnet50", repeats=3)
    parser.add_argument("--image_height", type=int, default=768,
                        help="test image is image_height x 4/3 image_height before resizing")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of the three measurements")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    config = config_lib.ReadDelfConfig(_CONFIG)
    config.max_image_size = args.max_image_size
    config.delf_local_config.score_threshold = 0.0
    height = args.image_height
    image = np.random.RandomState(0).randint(0, 256, [height, height * 4 // 3, 3], np.uint8)
    resized, _ = utils.ResizeImage(image, config)
    scales = list(config.image_scales)

    model = Delg(backbone=args.backbone)
    model.build_for_input(64)

    normalized = normalize_images(resized)
    pyramid_images = [
            tf.image.resize(normalized, [round(resized.shape[0] * s), round(resized.shape[1] * s)])
            [tf.newaxis] for s in scales]

    # Scale by scale, as the exported graph runs them (parallel_iterations=1);
    # one traced function for every size.
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def backbone_forward(images):
        return model.backbone(images, training=False)[0]

    def baseline():
        for images in pyramid_images:
            backbone_forward(images).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        config.model_path = os.path.join(tmp, "delg")
        export.save_module(export.LocalAndGlobalFeatureModule(model), config.model_path)
        extract = extractor.MakeExtractor(config)
        all_scales_config = type(config)()
        all_scales_config.CopyFrom(config)
        del all_scales_config.delf_global_config.image_scales_ind[:]
        extract_all_scales = extractor.MakeExtractor(all_scales_config)

        best, cpu = interleaved({"baseline": baseline, "extraction": lambda: extract(image),
                                 "all_scale": lambda: extract_all_scales(image)},
                                args.rounds, args.repeats, warmup=True)
        num_features = len(extract(image)["local_features"]["locations"])

    report = {
            "backbone": args.backbone,
            "max_image_size": args.max_image_size,
            "resized_image": list(resized.shape[:2]),
            "scales": scales,
            "global_scales_ind": list(config.delf_global_config.image_scales_ind),
            "num_local_features": num_features,
            "baseline_s_per_image": best["baseline"],
            "extraction_s_per_image": best["extraction"],
            "all_scale_extraction_s_per_image": best["all_scale"],
            "ratio_extraction_vs_backbone": best["extraction"] / best["baseline"],
            "ratio_all_scale_extraction_vs_backbone": best["all_scale"] / best["baseline"],
            "baseline_cpu_s_per_image": cpu["baseline"],
            "extraction_cpu_s_per_image": cpu["extraction"],
            "all_scale_extraction_cpu_s_per_image": cpu["all_scale"],
            "cpu_ratio_extraction_vs_backbone": cpu["extraction"] / cpu["baseline"],
            "cpu_ratio_all_scale_extraction_vs_backbone": cpu["all_scale"] / cpu["baseline"],
            "extraction_images_per_s": 1.0 / best["extraction"],
            "cpu_threads": os.cpu_count(),
            "load_average_at_start": load,
    }
    print_and_write(_RESULT, report)


if __name__ == "__main__":
    main()
