"""HOW's Table 1 in miniature, as demo stages: HOW-ASMK* against the demo's DELF-ASMK* row.

As the paper starts from ImageNet weights, the demo's HOW starts from a pretrained backbone:
the demo's trained DELG model's (cross-entropy on the same training images). Its whitening
o(u) = P (u - m) is learned by PCA on training images, then the network is fine-tuned with
the contrastive loss on tuples for a short budget (BatchNorm frozen, as in the paper). The
DELF-ASMK* baseline is the DELG model's own attention-selected local features with the same
ASMK* stages, so the two rows differ in the local features only: same backbone start, same
extraction scales, same codebook size rule, same ASMK* (alpha 3, tau 0).

Every stage runs a delf_tf tool as a subprocess (the stage runner of
`delf_tf.demo_workflow`), except the in-process |C_X| / bytes count.
"""

import dataclasses
import os
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class HowDemoConfig:
    """Fine-tuning budget of the demo's HOW (epochs x query_size tuples of 2 + neg_num
    images at image_size px, hard negatives mined from pool_size images per epoch) and its
    extraction (the demo's pyramid scales, the max_feature_num strongest by ||u||)."""

    backbone: str = "resnet_tiny"
    image_size: int = 128
    epochs: int = 2
    query_size: int = 24
    pool_size: int = 72
    neg_num: int = 5
    lr: float = 1e-5
    whitening_images: int = 48
    image_scales: tuple[float, ...] = (0.70710677, 1.0, 1.4142135, 2.0)
    max_feature_num: int = 1000
    seed: int = 0


def WriteHowExtractionConfig(path: str, model_path: str, image_scales: Sequence[float],
                             max_feature_num: int) -> None:
    """A local-only DelfConfig for a HOW export: the given scales, the `max_feature_num`
    strongest features over all of them, no attention threshold, no PCA (HOW's
    descriptors are whitened in the network)."""
    from delf_tf import config as config_lib
    from delf_tf.protos import delf_config_pb2

    # max_image_size is HOW's 1024 (delf_tf.how.extraction.HOW_MAX_IMAGE_SIZE, not imported:
    # it would load TensorFlow into the demo's own process).
    delf_config = delf_config_pb2.DelfConfig(
        model_path=os.path.abspath(model_path), use_local_features=True,
        use_global_features=False, max_image_size=1024)
    delf_config.image_scales.extend(float(s) for s in image_scales)
    delf_config.delf_local_config.use_pca = False
    delf_config.delf_local_config.max_feature_num = max_feature_num
    delf_config.delf_local_config.score_threshold = 0.0
    config_lib.WriteConfig(path, delf_config)


def TrainAndExportHow(stages: Any, sfm_root: str, initial_weights: str, root: str,
                      config: HowDemoConfig = HowDemoConfig()) -> str:
    """Fine-tunes HOW from the backbone of the checkpoint `initial_weights` on the SfM-style
    database at `sfm_root` (name demo-SfM), exports it to <root>/export and writes its
    extraction config; returns the config's path."""
    stages.run_tool(
        f"HOW: fine-tune from the DELG backbone ({config.epochs} epochs of "
        f"{config.query_size} tuples, contrastive)", "train_how",
        data_root=sfm_root, training_dataset="demo-SfM", directory=os.path.join(root, "train"),
        arch=config.backbone, initial_weights=initial_weights, image_size=config.image_size,
        query_size=config.query_size, pool_size=config.pool_size, neg_num=config.neg_num,
        epochs=config.epochs, lr=config.lr, whitening_images=config.whitening_images,
        test_datasets="", seed=config.seed)
    stages.run_tool("HOW: export", "export_how_model",
                    ckpt_path=os.path.join(root, "train", "model_weights"),
                    export_path=os.path.join(root, "export"), overwrite=True)
    config_path = os.path.join(root, "how_config.pbtxt")
    WriteHowExtractionConfig(config_path, os.path.join(root, "export"), config.image_scales,
                             config.max_feature_num)
    return config_path


def AsmkStats(codebook_path: str, features_dir: str, image_names: Sequence[str],
              feature_extension: str = ".delg_local") -> dict[str, float]:
    """|C_X| (ASMK* vectors per database image, features on their nearest word) and bytes
    per image of the compact inverted file, for the features of `image_names` in
    `features_dir` over the DatumProto codebook at `codebook_path`."""
    from delf_tf.aggregation.asmk_index import AsmkIndex, ReadDescriptors
    from delf_tf.io import datum_io

    index = AsmkIndex(datum_io.ReadFromFile(codebook_path))
    index.Build([ReadDescriptors(os.path.join(features_dir, name + feature_extension))
                 for name in image_names], image_names)
    stats = index.Stats()
    return {"vectors_per_image": float(stats["vectors_per_image"]),
            "bytes_per_image": float(stats["bytes_per_image"])}


def FormatHowTable(rows: dict[str, dict[str, float]]) -> str:
    """HOW's Table 1 rows for the demo: {"HOW" | "DELF": {medium, hard (0-1),
    vectors_per_image, bytes_per_image}}."""
    lines = ["HOW Table 1 rows (same backbone start, scales, codebook rule and ASMK*)",
             f"{'method':<32}{'loss':<6}{'medium mAP':>11}{'hard mAP':>10}{'|C_X|':>8}"
             f"{'bytes/img':>11}", "-" * 78]
    labels = {"HOW": ("HOW-ASMK* (fixed attention)", "CO"),
              "DELF": ("DELF-ASMK* (learned attention)", "CE")}
    for key, (label, loss) in labels.items():
        if key in rows:
            r = rows[key]
            lines.append(f"{label:<32}{loss:<6}{100 * r['medium']:>11.2f}"
                         f"{100 * r['hard']:>10.2f}{r['vectors_per_image']:>8.1f}"
                         f"{r['bytes_per_image']:>11.0f}")
    return "\n".join(lines)
