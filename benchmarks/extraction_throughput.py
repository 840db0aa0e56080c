"""Extraction tool throughput vs a bare loop of SavedModel calls on the same images.

Times, in one process, on the demo images (JPEG files) with a small exported
DELG model:
  bare       the extractor (MakeExtractor: SavedModel call + post-processing)
             over images already decoded in memory: the model alone;
  tool       batch.ExtractDelgFeatures over the files: reading, JPEG decoding
             (in threads, PREFETCH_IMAGES ahead), the model, writing both files;
  tool, no prefetch   the same with decoding in line (PREFETCH_IMAGES = 0).
Reports images/s of each and tool / bare (goal >= 0.9: the model never waits
on decoding). The model is untrained resnet_tiny at --image_size px, so the
model's share per image is small and decoding matters more than with R50.

Usage: .venv/bin/python benchmarks/extraction_throughput.py [--image_size 512]
       [--num_images 40]
"""

import os
import tempfile

import numpy as np
from _results import flag_parser, interleaved, write_result

from delf_tf import config as config_lib
from delf_tf import utils
from delf_tf.data import demo
from delf_tf.extraction import batch, export, extractor
from delf_tf.models import Delg, save_weights
from delf_tf.protos import delf_config_pb2
from delf_tf.retrieval import dataset

_RESULT = os.path.join(os.path.dirname(__file__), "results", "extraction_throughput.json")


def main() -> None:
    parser = flag_parser(__doc__, image_size=512, num_images=40, repeats=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        demo.GenerateDemoDataset(os.path.join(tmp, "demo"), demo.DemoConfig(
            num_landmarks=4, image_size=args.image_size, train_per_landmark=1,
            noisy_per_landmark=0, queries_per_landmark=1, easy_per_landmark=2,
            hard_per_landmark=0, junk_per_landmark=0,
            num_distractors=max(0, args.num_images - 8)), log=lambda *_: None)
        gnd_path = os.path.join(tmp, "demo", "gnd_demo.mat")
        images_dir = os.path.join(tmp, "demo", "jpg")
        model = Delg(backbone="resnet_tiny")
        model.build_for_input(64)
        save_weights(model, os.path.join(tmp, "delf_weights"))
        export.ExportLocalAndGlobalModel(os.path.join(tmp, "delf_weights"),
                                         os.path.join(tmp, "export"))
        config = delf_config_pb2.DelfConfig(
            model_path=os.path.join(tmp, "export"), image_scales=[0.7071, 1.0, 1.4142],
            use_local_features=True, use_global_features=True, max_image_size=1024)
        config.delf_local_config.use_pca = False
        config.delf_local_config.score_threshold = 0.0
        config.delf_local_config.max_feature_num = 1000
        config.delf_global_config.use_pca = False
        config_path = os.path.join(tmp, "config.pbtxt")
        config_lib.WriteConfig(config_path, config)

        _, index_list, _ = dataset.ReadDatasetFile(gnd_path)
        images = [np.asarray(utils.RgbLoader(os.path.join(images_dir, name + ".jpg")))
                  for name in index_list]
        extract = extractor.MakeExtractor(config)
        extract(images[0])  # warm-up (graph tracing)

        def bare():
            for image in images:
                extract(image)

        def tool(prefetch):
            def run():
                batch.PREFETCH_IMAGES = prefetch
                out = tempfile.mkdtemp(dir=tmp)
                failures = batch.ExtractDelgFeatures(config_path, gnd_path, images_dir,
                                                     "index", out)
                assert not failures, failures
            return run

        default_prefetch = batch.PREFETCH_IMAGES
        runs = {"bare": bare, "tool": tool(default_prefetch), "tool_no_prefetch": tool(0)}
        best, _ = interleaved(runs, args.repeats)
        batch.PREFETCH_IMAGES = default_prefetch

    num = len(images)
    results = {"num_images": num, "image_size": args.image_size,
               "cpu_count": os.cpu_count()}
    for name, seconds in best.items():
        results[f"{name}_images_per_s"] = num / seconds
        print(f"{name:18s} {num / seconds:7.2f} images/s")
    results["tool_over_bare"] = best["bare"] / best["tool"]
    results["tool_no_prefetch_over_bare"] = best["bare"] / best["tool_no_prefetch"]
    print(f"tool / bare: {results['tool_over_bare']:.2f} (goal >= 0.9); without prefetch: "
          f"{results['tool_no_prefetch_over_bare']:.2f}")
    write_result(_RESULT, results)


if __name__ == "__main__":
    main()
