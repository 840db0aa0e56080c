"""HOW's Table 1 in miniature, as demo stages: HOW-ASMK* (fixed attention,
smoothing, in-network whitening, contrastive loss on tuples) against a
DELF-ASMK* baseline (learned attention, autoencoder reduction, cross-entropy)
of the same backbone, trained from scratch on the same demo images with the
same budget of training images; both extracted with HOW's 7 scales and the
1000 strongest features, searched by the same ASMK* (alpha 3, tau 0, queries
on 5 words, database on 1, codebook from the index features).

Every stage runs a delf_tf tool as a subprocess (the `stages` runner of
`delf_tf.demo_workflow`).
"""

import dataclasses
import os
from typing import Any

from delf_tf.how import extraction


@dataclasses.dataclass(frozen=True)
class HowDemoConfig:
    """backbone: the common backbone; train_image_size: training image side;
    delf_steps x batch_size training images for DELF = how_epochs x
    how_query_size x 7 tuple images for HOW (the common budget)."""

    backbone: str = "resnet_tiny"
    train_image_size: int = 128
    delf_steps: int = 100
    batch_size: int = 16
    delf_lr: float = 0.03
    how_epochs: int = 2
    how_query_size: int = 115
    how_lr: float = 1e-3
    codebook_size: int = 1024
    seed: int = 0


def _write_extraction_config(path: str, model_path: str) -> None:
    from delf_tf import config as config_lib
    from delf_tf.protos import delf_config_pb2

    delf_config = delf_config_pb2.DelfConfig(
        model_path=os.path.abspath(model_path), use_local_features=True,
        use_global_features=False, max_image_size=extraction.HOW_MAX_IMAGE_SIZE)
    delf_config.image_scales.extend(extraction.HOW_SCALES)
    delf_config.delf_local_config.use_pca = False
    delf_config.delf_local_config.max_feature_num = extraction.HOW_MAX_FEATURE_NUM
    # Both models keep their strongest features only (no attention threshold).
    delf_config.delf_local_config.score_threshold = 0.0
    config_lib.WriteConfig(path, delf_config)


def _search_stages(stages: Any, name: str, root: str, data: Any,
                   config: HowDemoConfig) -> dict[str, float]:
    """Extraction + ASMK* codebook, index and query for the model exported at
    <root>/export. Returns mAPs, |C_X| and bytes per image."""
    from delf_tf.aggregation.asmk_index import AsmkIndex
    from delf_tf.io import feature_io

    config_path = os.path.join(root, "extraction_config.pbtxt")
    _write_extraction_config(config_path, os.path.join(root, "export"))
    features = os.path.join(root, "features")
    stages.run_tools(f"{name}: extract query + index (7 scales, 1000 strongest)", [
        (f"{name} extract {side}", "extract_delg_features",
         dict(delf_config_path=config_path, dataset_file_path=data.dataset_file_path,
              images_dir=data.images_dir, image_set=side,
              output_features_dir=os.path.join(features, side)))
        for side in ("query", "index")])
    index_dir = os.path.join(features, "index")
    num_descriptors = sum(len(feature_io.ReadFromFile(os.path.join(index_dir, n))[0])
                          for n in os.listdir(index_dir) if n.endswith(".delg_local"))
    num_words = max(2, min(config.codebook_size, num_descriptors // 4))
    codebook = os.path.join(root, "asmk", "codebook.datum")
    index_path = os.path.join(root, "asmk", "index.asmk")
    common = dict(dataset_file_path=data.dataset_file_path, feature_extension=".delg_local")
    stages.run_tool(f"{name}: ASMK* codebook ({num_words} words, faiss)", "train_asmk_codebook",
                    image_set="index", features_dir=index_dir, num_words=num_words,
                    output_path=codebook, seed=config.seed, **common)
    stages.run_tool(f"{name}: ASMK* index", "build_asmk_index", image_set="index",
                    features_dir=index_dir, codebook_path=codebook, output_path=index_path,
                    **common)
    results_dir = os.path.join(root, "retrieval_asmk_star")
    stages.run_tool(f"{name}: ASMK* query", "query_asmk_index", index_path=index_path,
                    image_set="query", features_dir=os.path.join(features, "query"),
                    output_dir=results_dir, **common)
    from delf_tf.retrieval import dataset as revisited

    mean_ap = revisited.ReadMetricsFile(os.path.join(results_dir, "metrics.txt"))[0]
    stats = AsmkIndex.Load(index_path).Stats()
    return {"medium": float(mean_ap["medium"]), "hard": float(mean_ap["hard"]),
            "vectors_per_image": stats["vectors_per_image"],
            "bytes_per_image": stats["bytes_per_image"], "codebook_size": num_words}


def RunHowDemoStages(stages: Any, data: Any, tfrecord_dir: str, output_dir: str,
                     config: HowDemoConfig = HowDemoConfig()) -> dict[str, dict[str, float]]:
    """Trains both models, extracts, searches. Returns {"HOW": ..., "DELF": ...}
    with medium/hard mAP (0-1), vectors_per_image (|C_X|), bytes_per_image."""
    from delf_tf.data import demo

    root = os.path.join(output_dir, "how_table")
    results = {}

    # DELF: learned attention + autoencoder to 128-D, cross-entropy, no global head.
    delf_root = os.path.join(root, "delf")
    stages.run_tool(
        f"DELF ({config.backbone}, CE): train {config.delf_steps} steps of "
        f"{config.batch_size}", "train",
        train_file_pattern=os.path.join(tfrecord_dir, "train-*"),
        validation_file_pattern=os.path.join(tfrecord_dir, "validation-*"),
        num_classes=len(data.landmarks), delg_global_features=False, use_autoencoder=True,
        backbone=config.backbone, image_size=config.train_image_size,
        batch_size=config.batch_size, max_iters=config.delf_steps,
        initial_lr=config.delf_lr, seed=config.seed, report_interval=config.delf_steps // 2,
        eval_interval=config.delf_steps, num_eval_batches=2, save_interval=config.delf_steps,
        logdir=os.path.join(delf_root, "train"))
    stages.run_tool("DELF: export", "export_local_model",
                    ckpt_path=os.path.join(delf_root, "train", "delf_weights"),
                    export_path=os.path.join(delf_root, "export"), backbone=config.backbone,
                    overwrite=True)
    results["DELF"] = _search_stages(stages, "DELF", delf_root, data, config)

    # HOW: the same images as SfM-style tuples (clusters = landmarks).
    how_root = os.path.join(root, "how")
    sfm_root = os.path.join(root, "sfm")
    stages.run_function("HOW: tuples database", demo.WriteSfmTuplesDatabase, data.root,
                        sfm_root, pairs_per_landmark=max(1, config.how_query_size
                                                         // len(data.landmarks) + 1),
                        seed=config.seed)
    stages.run_tool(
        f"HOW ({config.backbone}, contrastive): train {config.how_epochs} epochs of "
        f"{config.how_query_size} tuples", "train_how",
        data_root=sfm_root, training_dataset="demo-SfM", directory=os.path.join(how_root,
                                                                                "train"),
        arch=config.backbone, image_size=config.train_image_size,
        query_size=config.how_query_size, pool_size=1000, epochs=config.how_epochs,
        lr=config.how_lr, whitening_images=100, test_datasets="", seed=config.seed)
    stages.run_tool("HOW: export", "export_how_model",
                    ckpt_path=os.path.join(how_root, "train", "model_weights"),
                    export_path=os.path.join(how_root, "export"), overwrite=True)
    results["HOW"] = _search_stages(stages, "HOW", how_root, data, config)
    return results


def FormatHowTable(results: dict[str, dict[str, float]], config: HowDemoConfig) -> str:
    """The rows of HOW's Table 1 for the demo."""
    rows = [f"HOW Table 1 rows ({config.backbone} from scratch, same training images; "
            "ASMK*, 7 scales, n = 1000)",
            f"{'method':<34}{'loss':<6}{'medium mAP':>11}{'hard mAP':>10}{'|C_X|':>8}"
            f"{'bytes/img':>11}", "-" * 80]
    labels = {"HOW": ("HOW-ASMK* (fixed attn, h, o)", "CO"),
              "DELF": ("DELF-ASMK* (learned attn)", "CE")}
    for key in ("HOW", "DELF"):
        if key in results:
            r, (label, loss) = results[key], labels[key]
            rows.append(f"{label:<34}{loss:<6}{100 * r['medium']:>11.2f}"
                        f"{100 * r['hard']:>10.2f}{r['vectors_per_image']:>8.1f}"
                        f"{r['bytes_per_image']:>11.0f}")
    return "\n".join(rows)
