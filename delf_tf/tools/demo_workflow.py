"""The demo workflow behind the run_demo tool (whose docstring lists the stages): every
method on the embedded demo set, each stage a delf_tf tool run as a subprocess
(`python -m delf_tf.tools.<tool>`, so an installed package runs it as a checkout does) or,
for the few in-process steps, a library call.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, Literal

from delf_tf import config as config_lib
from delf_tf.data import demo

__all__ = ["DemoRunConfig", "RunDemo"]

# The shipped configs (a checkout's configs/, or delf_tf/configs in an installed wheel).
_CONFIGS_DIR = config_lib.PackagedConfigDir()


@dataclasses.dataclass(frozen=True)
class DemoRunConfig:
    """Settings of the demo run: the demo data set's (`data`, whose seed is the one seed of
    the whole run: rendering, training, mining, RANSAC) and the methods' (one field per
    flag of the run_demo tool).

    Attributes:
      output_dir: Directory for everything the demo writes (reused stages are not skipped: it is
        rewritten).
      data: The demo data set's sizes and counts; its seed is the seed of the whole run.
      backbone: Backbone of the DELG model (resnet_tiny keeps the demo within minutes on a CPU).
      train_image_size: Side of the square training crops, in pixels.
      batch_size: Training batch size of DELG.
      max_iters: Training steps of DELG.
      initial_lr: Initial learning rate (linear decay to 0 at --max_iters); higher than the
        original's 0.01 because the demo trains from scratch for a few hundred steps.
      image_scales: Extraction pyramid scales (the DELG configs use 7, from 0.25 to 2.0; the demo
        images are small, so the smallest scales would yield a feature map of a cell or two).
      global_scales_ind: Indices into --image_scales pooled into the global descriptor (0.7071,
        1, 1.4142 as the DELG configs).
      max_feature_num: Local features kept per image (highest attention first).
      num_to_rerank: Top non-junk images re-ranked by geometric verification. ROxford re-ranks
        100 of ~5000 (2%); on the demo's ~140 index images 100 would be nearly all of them, so
        the shortlist is scaled down.
      untrained: Also run export/extract/retrieve with fresh (untrained) weights.
      asmk_codebook_size: Visual words of the ASMK* codebook trained on the index features
        (capped at a quarter of the number of index descriptors).
      global_tuples: Also train and evaluate a global descriptor on image tuples
        (GlobalFeatureNet, contrastive loss, hard negatives mined every epoch).
      how: Also run HOW's Table 1 row: HOW (fixed attention, smoothing, PCA whitening) fine-tuned
        with the contrastive loss on tuples from the trained DELG model's backbone, with the same
        scales and ASMK* as the DELG model's local features (the DELF-ASMK* row).
      how_epochs: HOW fine-tuning epochs.
      how_query_size: HOW fine-tuning tuples per epoch (hard negatives mined from 3x as many
        images).
      global_arch: Backbone of the tuple-trained global descriptor.
      global_image_size: Longer image side for tuple training (global descriptor and HOW) and the
        global descriptor's extraction.
      global_epochs: Tuple-training epochs.
      global_lr: Tuple-training learning rate (the original's 1e-6 fine-tunes ImageNet weights;
        the demo trains from scratch for a few epochs).
      global_multiscale: Extraction scales of the tuple-trained descriptor, relative to the demo
        images (--image_size), e.g. '[1/2, 1/2**(1/2), 1]' (on the demo: about the same mAP, 3x
        the extraction time).
    """

    output_dir: str = "demo_output"
    data: demo.DemoConfig = dataclasses.field(default_factory=demo.DemoConfig)
    backbone: Literal["resnet_tiny", "resnet50", "resnet101"] = "resnet_tiny"
    train_image_size: int = 128
    batch_size: int = 16
    max_iters: int = 300
    initial_lr: float = 0.03
    image_scales: tuple[float, ...] = (0.70710677, 1.0, 1.4142135, 2.0)
    global_scales_ind: tuple[int, ...] = (0, 1, 2)
    max_feature_num: int = 1000
    num_to_rerank: int = 20
    untrained: bool = True
    asmk_codebook_size: int = 1024
    global_tuples: bool = True
    how: bool = True
    how_epochs: int = 2
    how_query_size: int = 24
    global_arch: str = "resnet18"
    global_image_size: int = 128
    global_epochs: int = 4
    global_lr: float = 1e-4
    global_multiscale: str = "[1]"

    @property
    def seed(self) -> int:
        return self.data.seed

    def flag_values(self) -> dict[str, Any]:
        """The settings as the run_demo tool's flags (what results.json records)."""
        data = self.data
        methods = dataclasses.asdict(self)
        del methods["output_dir"], methods["data"]
        return {"output_dir": self.output_dir, "seed": data.seed,
                "num_landmarks": data.num_landmarks, "image_size": data.image_size,
                "train_per_landmark": data.train_per_landmark,
                "noisy_per_landmark": data.noisy_per_landmark,
                "queries_per_landmark": data.queries_per_landmark,
                "index_per_landmark": (data.easy_per_landmark, data.hard_per_landmark,
                                       data.junk_per_landmark),
                "num_distractors": data.num_distractors, **methods}


@dataclasses.dataclass(frozen=True)
class _Run:
    """One model's outputs: <root>/{export, delf_config.pbtxt, features*, retrieval_*}."""

    name: str
    root: str
    weights_prefix: str
    stats_path: str

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)


# Lines of TensorFlow's start-up chatter that say nothing about the stage.
_NOISE = re.compile(
    r"cpu_feature_guard|To enable the following instructions|rebuild TensorFlow|"
    r"functional_saver|builder_impl|fingerprinting_utils|Assets written|oneDNN|"
    r"absl::InitializeLog|tf_record_dataset_op|WARNING: All log messages|"
    r"contains input name\(s\)|"
    r"^W\d{4} |^WARNING:|UserWarning|warnings.warn")
_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ")


class _Stages:
    """Runs the stages, echoes their progress and records wall times."""

    def __init__(self, output_dir: str, progress: Callable[[str], Any] = print):
        self._progress = progress
        self.log_dir = os.path.join(output_dir, "logs")
        os.makedirs(self.log_dir, exist_ok=True)
        self.times: list[tuple[str, float]] = []
        self._start = time.monotonic()
        self._print_lock = threading.Lock()
        self._used_logs: set[str] = set()

    def run_tool(self, stage: str, tool: str, **flag_values) -> None:
        """Runs tool <tool> (`python -m delf_tf.tools.<tool>`) with --flag=value arguments;
        raises naming the log on failure."""
        self.run_tools(stage, [(stage, tool, flag_values)])

    def run_tools(self, stage: str, jobs: list[tuple[str, str, dict]], parallel: int = 2) -> None:
        """Runs (name, tool, flags) jobs, `parallel` at a time, as one timed stage.

        Most of a short extraction run is start-up (importing TensorFlow, loading
        the SavedModel), largely single-threaded, so two runs overlap well on two cores.
        """
        self._begin(stage)
        start = time.monotonic()
        if len(jobs) == 1:
            self._run_process(*jobs[0], label="")
        else:
            with futures.ThreadPoolExecutor(parallel) as pool:
                running = [pool.submit(self._run_process, *job, label=f"[{job[0]}] ")
                           for job in jobs]
                for job in running:
                    job.result()
        self._end(stage, start)

    def _run_process(self, name: str, tool: str, flag_values: dict, label: str) -> None:
        args = []
        for flag, value in flag_values.items():
            if isinstance(value, bool):
                args.append(f"--{flag}" if value else f"--no{flag}")
            else:
                args.append(f"--{flag}={value}")
        command = [sys.executable, "-m", f"delf_tf.tools.{tool}"] + args
        log_path = self._log_path(name)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        tail: list[str] = []
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(command) + "\n")
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env) as process:
                for line in process.stdout:
                    log.write(line)
                    tail = (tail + [line.rstrip()])[-25:]
                    if line.strip() and not _NOISE.search(line):
                        with self._print_lock:
                            self.say("      " + label + _ABSL_PREFIX.sub("", line.rstrip()))
        if process.returncode != 0:
            raise RuntimeError(
                f"'{name}' failed: {' '.join(command)} exited with {process.returncode}"
                f"; full log: {log_path}; last lines:\n" + "\n".join(tail))

    def _log_path(self, name: str) -> str:
        """A log file per job: `DELG*` is spelled `DELG_star` (so it is not the DELG
        log), and a name already used in this run gets a number."""
        base = re.sub(r"\W+", "_", name.replace("*", "_star")).strip("_")
        with self._print_lock:  # jobs of one stage start from several threads
            candidate, number = base, 2
            while candidate in self._used_logs:
                candidate, number = f"{base}_{number}", number + 1
            self._used_logs.add(candidate)
        return os.path.join(self.log_dir, candidate + ".log")

    def run_function(self, stage: str, function: Callable[..., Any], *args, **kwargs) -> Any:
        self._begin(stage)
        start = time.monotonic()
        result = function(*args, **kwargs)
        self._end(stage, start)
        return result

    def _begin(self, stage: str) -> None:
        self.say(f"[{self._elapsed():6.1f} s] {stage} ...")

    def _end(self, stage: str, start: float) -> None:
        seconds = time.monotonic() - start
        self.times.append((stage, seconds))
        self.say(f"[{self._elapsed():6.1f} s] {stage}: done in {seconds:.1f} s")

    def say(self, message: str) -> None:
        """Reports one line of progress (flushed, so it shows while a stage runs)."""
        self._progress(message)
        sys.stdout.flush()

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def total(self) -> float:
        return self._elapsed()


def _train_flags(config: DemoRunConfig, tfrecord_dir: str, logdir: str,
                 num_classes: int) -> dict:
    """train.py flags: DELG with the autoencoder on the demo TFRecords, reproducible."""
    return dict(
        train_file_pattern=os.path.join(tfrecord_dir, "train-*"),
        validation_file_pattern=os.path.join(tfrecord_dir, "validation-*"),
        num_classes=num_classes, delg_global_features=True, use_autoencoder=True,
        backbone=config.backbone, image_size=config.train_image_size,
        batch_size=config.batch_size, max_iters=config.max_iters,
        initial_lr=config.initial_lr, seed=config.seed, deterministic=True, logdir=logdir)


def _save_untrained_weights(config: DemoRunConfig, trained_prefix: str, run: _Run,
                            train_dir: str, image_size: int) -> None:
    """Saves fresh weights of the trained model's architecture, and their attention
    statistics over training images (what training records)."""
    import numpy as np  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from PIL import Image  # pylint: disable=g-import-not-at-top

    from delf_tf.models import checkpoint, preprocessing, registry  # pylint: disable=g-import-not-at-top
    from delf_tf.training import summaries  # pylint: disable=g-import-not-at-top

    with open(trained_prefix + ".json") as f:
        sidecar = json.load(f)
    tf.keras.utils.set_random_seed(config.seed)
    model = registry.create_model(sidecar["class"], sidecar.get("num_classes"),
                                  **sidecar["config"])
    model.build_for_input(image_size)
    checkpoint.save_weights(model, run.weights_prefix)

    stats = summaries.AttentionStats()
    names = sorted(os.listdir(train_dir))[:64]
    for start in range(0, len(names), 16):
        batch = np.stack([
            np.asarray(Image.open(os.path.join(train_dir, n)).convert("RGB").resize(
                (image_size, image_size), Image.BILINEAR)) for n in names[start:start + 16]])
        _, attention, _ = model.build_call(preprocessing.normalize_images(batch))
        stats.add(attention.numpy())
    summaries.WriteAttentionStats(run.stats_path, 0, stats.result())


def _local_features_config(config: DemoRunConfig, run: _Run, score_threshold: float,
                           **fields: Any) -> Any:
    """A DelfConfig for the SavedModel at <run>/export: local features at the demo's scales
    (the `max_feature_num` highest-scoring above `score_threshold`, no PCA), other
    DelfConfig `fields` as given."""
    from delf_tf.protos import delf_config_pb2  # pylint: disable=g-import-not-at-top

    delf_config = delf_config_pb2.DelfConfig(
        model_path=os.path.abspath(run.path("export")), use_local_features=True,
        # Bounds memory for any photo run through this config (a 12-megapixel image at
        # full size needs gigabytes); the demo's own images are far smaller. HOW's own
        # extraction limit is the same 1024.
        max_image_size=1024, **fields)
    delf_config.image_scales.extend(float(s) for s in config.image_scales)
    delf_config.delf_local_config.use_pca = False
    delf_config.delf_local_config.max_feature_num = config.max_feature_num
    delf_config.delf_local_config.score_threshold = score_threshold
    return delf_config


def _write_delf_config(config: DemoRunConfig, run: _Run) -> float:
    """Writes <run>/delf_config.pbtxt for the exported DELG model; returns its threshold."""
    from delf_tf.training import summaries  # pylint: disable=g-import-not-at-top

    threshold = float(summaries.ReadAttentionStats(run.stats_path)["percentiles"]["50"])
    delf_config = _local_features_config(config, run, threshold, use_global_features=True,
                                         is_tf2_exported=True)
    delf_config.delf_global_config.use_pca = False
    delf_config.delf_global_config.image_scales_ind.extend(
        int(i) for i in config.global_scales_ind)
    config_lib.WriteConfig(run.path("delf_config.pbtxt"), delf_config)
    return threshold


def _negatives_per_tuple(config: DemoRunConfig) -> int:
    """Hard negatives per training tuple: they come from other clusters (landmarks), at most
    one per cluster."""
    return min(5, config.data.num_landmarks - 1)


def _model_stages(config: DemoRunConfig, stages: _Stages, run: _Run,
                  data: Any) -> dict[str, dict[str, float]]:
    """Export, extraction (float and DELG*) and retrieval for one model.

    Returns {"global" | "delg" | "delg_star": {protocol: mAP}} with the metrics.txt keys.
    """
    from delf_tf.retrieval import dataset as revisited  # pylint: disable=g-import-not-at-top

    stages.run_tool(f"{run.name}: export", "export_local_and_global_model",
                    ckpt_path=run.weights_prefix, export_path=run.path("export"),
                    overwrite=True)
    threshold = _write_delf_config(config, run)
    stages.say(f"      {run.name}: score_threshold = median attention = {threshold:.4g}")
    variants = (("delg", "DELG", False), ("delg_star", "DELG*", True))
    stages.run_tools(f"{run.name}: extract query + index (DELG, DELG*)", [
        (f"{run.name}: extract {image_set} ({label})", "extract_delg_features",
         dict(delf_config_path=run.path("delf_config.pbtxt"),
              dataset_file_path=data.dataset_file_path, images_dir=data.images_dir,
              image_set=image_set,
              output_features_dir=run.path(f"features_{variant}", image_set),
              binarize_local_descriptors=binarize))
        for variant, label, binarize in variants for image_set in ("query", "index")])

    def retrieve(stage: str, variant: str, output_name: str, verify: bool) -> dict:
        output_dir = run.path(output_name)
        stages.run_tool(
            f"{run.name}: {stage}", "perform_retrieval",
            dataset_file_path=data.dataset_file_path,
            query_features_dir=run.path(f"features_{variant}", "query"),
            index_features_dir=run.path(f"features_{variant}", "index"),
            use_geometric_verification=verify, num_to_rerank=config.num_to_rerank,
            ransac_seed=config.seed, output_dir=output_dir)
        mean_ap = revisited.ReadMetricsFile(os.path.join(output_dir, "metrics.txt"))[0]
        return {k: float(v) for k, v in mean_ap.items()}

    # Global descriptors are the same for DELG and DELG*.
    results = {"global": retrieve("retrieval (global only)", "delg", "retrieval_global", False),
               "delg": retrieve("retrieval (DELG, global + GV)", "delg", "retrieval_delg", True),
               "delg_star": retrieve("retrieval (DELG*, global + GV)", "delg_star",
                                     "retrieval_delg_star", True)}
    results["asmk_star"] = _asmk_star_stages(config, stages, run, data)
    results.update(_elfm_stages(config, stages, run, data))
    return results


def _elfm_stages(config: DemoRunConfig, stages: _Stages, run: _Run,
                 data: Any) -> dict[str, dict[str, float]]:
    """ELFM from the same model's backbone and whitening: extraction (binary codes and the
    float representatives), an index file, retrieval. Returns {"elfm" | "elfm_float":
    {protocol: mAP}}. The demo's pyramid scales are used (its images are 256 px, so the
    paper's scales, meant for 1024 px, would leave a few cells per scale)."""
    from delf_tf.retrieval import dataset as revisited  # pylint: disable=g-import-not-at-top

    scales = ",".join(str(float(s)) for s in config.image_scales)
    stages.run_tools(f"{run.name}: ELFM extract query + index", [
        (f"{run.name}: ELFM extract {image_set}", "extract_elfm_features",
         dict(model_path=run.weights_prefix, dataset_file_path=data.dataset_file_path,
              images_dir=data.images_dir, image_set=image_set, image_scales=scales,
              output_features_dir=run.path("features_elfm", image_set),
              save_float_descriptors=True))
        for image_set in ("query", "index")])
    index_path = run.path("elfm.elfmidx")
    stages.run_tool(f"{run.name}: ELFM index", "build_elfm_index",
                    features_dir=run.path("features_elfm", "index"),
                    dataset_file_path=data.dataset_file_path, output_path=index_path)
    results = {}
    for key, use_float in (("elfm", False), ("elfm_float", True)):
        output_dir = run.path(f"retrieval_{key}")
        stages.run_tool(f"{run.name}: retrieval ({'ELFM float' if use_float else 'ELFM'})",
                        "perform_elfm_retrieval", dataset_file_path=data.dataset_file_path,
                        query_features_dir=run.path("features_elfm", "query"),
                        index_path=index_path,
                        index_features_dir=run.path("features_elfm", "index"),
                        use_float_descriptors=use_float, output_dir=output_dir)
        mean_ap = revisited.ReadMetricsFile(os.path.join(output_dir, "metrics.txt"))[0]
        results[key] = {k: float(v) for k, v in mean_ap.items()}
    return results


def _asmk_star_stages(config: DemoRunConfig, stages: _Stages, run: _Run, data: Any,
                      features: str = "features_delg") -> dict[str, float]:
    """k-means codebook over the index local features of <run>/<features>, then ASMK*
    retrieval (local features only, no global descriptor). Returns {protocol: mAP}."""
    from delf_tf import config as config_lib  # pylint: disable=g-import-not-at-top
    from delf_tf.io import feature_io  # pylint: disable=g-import-not-at-top
    from delf_tf.retrieval import dataset as revisited  # pylint: disable=g-import-not-at-top

    index_dir = run.path(features, "index")
    num_descriptors = sum(
        len(feature_io.ReadFromFile(os.path.join(index_dir, name))[0])
        for name in os.listdir(index_dir) if name.endswith(".delg_local"))
    # The shipped configs use 65,536 words for millions of descriptors; the demo has
    # ~20k, so the codebook is scaled down (at least 4 descriptors per word).
    num_clusters = max(2, min(config.asmk_codebook_size, num_descriptors // 4))
    codebook_dir = run.path("asmk", "codebook")
    stages.run_tool(f"{run.name}: ASMK* codebook ({num_clusters} words)",
                    "cluster_delf_features", dataset_file_path=data.dataset_file_path,
                    features_dir=index_dir, feature_extension=".delg_local",
                    num_clusters=num_clusters, output_cluster_dir=codebook_dir,
                    seed=config.seed)
    config_paths = {}
    for side in ("query", "index"):
        aggregation = config_lib.ReadAggregationConfig(
            os.path.join(_CONFIGS_DIR, f"{side}_aggregation_config.pbtxt"))
        aggregation.codebook_size = num_clusters
        aggregation.codebook_path = os.path.join(codebook_dir, "codebook.datum")
        config_paths[side] = run.path("asmk", f"{side}_aggregation_config.pbtxt")
        config_lib.WriteConfig(config_paths[side], aggregation)
    output_dir = run.path("retrieval_asmk_star")
    stages.run_tool(f"{run.name}: retrieval (ASMK*)", "perform_aggregated_retrieval",
                    dataset_file_path=data.dataset_file_path,
                    query_features_dir=run.path(features, "query"),
                    index_features_dir=index_dir,
                    query_aggregation_config_path=config_paths["query"],
                    index_aggregation_config_path=config_paths["index"],
                    output_dir=output_dir)
    mean_ap = revisited.ReadMetricsFile(os.path.join(output_dir, "metrics.txt"))[0]
    return {k: float(v) for k, v in mean_ap.items()}


def _global_tuple_stages(config: DemoRunConfig, stages: _Stages, data: Any,
                         output_dir: str) -> dict[str, float]:
    """The demo's clean training images as an SfM tuples database (clusters = landmarks); a
    GlobalFeatureNet trained from scratch on tuples with mined hard negatives (contrastive
    loss); its global-only SavedModel; extraction and global retrieval. Returns {key: mAP}."""
    from delf_tf.retrieval import dataset as revisited  # pylint: disable=g-import-not-at-top

    root = os.path.join(output_dir, "global_tuples")
    stages.run_function("global tuples: SfM-style database", demo.WriteSfmTuplesDatabase,
                        data.root, os.path.join(root, "data"), seed=config.seed)
    stages.run_tool(
        "global tuples: train (contrastive, mined negatives)", "train_global_features",
        data_root=os.path.join(root, "data"), directory=os.path.join(root, "train"),
        training_dataset="demo-SfM", test_datasets="", arch=config.global_arch,
        image_size=config.global_image_size, epochs=config.global_epochs,
        lr=config.global_lr, query_size=64, pool_size=192, seed=config.seed,
        neg_num=_negatives_per_tuple(config))
    stages.run_tool(
        "global tuples: export", "export_global_features_model",
        ckpt_path=os.path.join(root, "train", "model_weights"),
        export_path=os.path.join(root, "export"), multiscale=config.global_multiscale,
        image_size=config.data.image_size, config_path=os.path.join(root, "config.pbtxt"),
        overwrite=True)
    stages.run_tools("global tuples: extract query + index", [
        (f"global tuples: extract {image_set}", "extract_delg_features",
         dict(delf_config_path=os.path.join(root, "config.pbtxt"),
              dataset_file_path=data.dataset_file_path, images_dir=data.images_dir,
              image_set=image_set, output_features_dir=os.path.join(root, "features", image_set)))
        for image_set in ("query", "index")])
    retrieval_dir = os.path.join(root, "retrieval")
    stages.run_tool("global tuples: retrieval", "perform_retrieval",
                    dataset_file_path=data.dataset_file_path,
                    query_features_dir=os.path.join(root, "features", "query"),
                    index_features_dir=os.path.join(root, "features", "index"),
                    output_dir=retrieval_dir)
    mean_ap = revisited.ReadMetricsFile(os.path.join(retrieval_dir, "metrics.txt"))[0]
    return {k: float(v) for k, v in mean_ap.items()}


def _how_stages(config: DemoRunConfig, stages: _Stages, trained: _Run, data: Any,
                output_dir: str) -> dict[str, dict[str, float]]:
    """HOW's Table 1 in miniature: HOW-ASMK* against the demo's DELF-ASMK* row.

    As the paper starts from ImageNet weights, the demo's HOW starts from a pretrained
    backbone: the trained DELG model's (cross-entropy on the same training images). HOW is
    fine-tuned on tuples from it, extracted at the demo's scales (the `max_feature_num`
    strongest by ||u||) and searched by the same ASMK* stages as the DELG model's
    attention-selected features (the DELF-ASMK* baseline, already computed), so the two rows
    differ in the local features only: same backbone start, same extraction scales, same
    codebook size rule, same ASMK* (alpha 3, tau 0). Returns {"HOW" | "DELF": {medium, hard,
    vectors_per_image, bytes_per_image}}."""
    how = _Run("HOW", os.path.join(output_dir, "how"), "", "")
    # The tuple-trained global row's SfM-style database, or the same one written here.
    sfm_root = os.path.join(output_dir, "global_tuples", "data")
    if not config.global_tuples:
        sfm_root = how.path("data")
        stages.run_function("HOW: SfM-style database", demo.WriteSfmTuplesDatabase,
                            data.root, sfm_root, seed=config.seed)
    config_path = _train_and_export_how(config, stages, sfm_root, trained.weights_prefix, how)
    stages.run_tools("HOW: extract query + index", [
        (f"HOW: extract {image_set}", "extract_delg_features",
         dict(delf_config_path=config_path, dataset_file_path=data.dataset_file_path,
              images_dir=data.images_dir, image_set=image_set,
              output_features_dir=how.path("features", image_set)))
        for image_set in ("query", "index")])
    rows = {"HOW": _asmk_star_stages(config, stages, how, data, features="features"),
            "DELF": {}}
    for key, run, features in (("HOW", how, "features"), ("DELF", trained, "features_delg")):
        rows[key].update(stages.run_function(
            f"{key}-ASMK*: |C_X| and bytes per image", _asmk_stats,
            run.path("asmk", "codebook", "codebook.datum"), run.path(features, "index"),
            data.imlist))
    return rows


def _train_and_export_how(config: DemoRunConfig, stages: _Stages, sfm_root: str,
                          initial_weights: str, how: _Run) -> str:
    """Fine-tunes HOW from the backbone of the checkpoint `initial_weights` on the SfM-style
    database at `sfm_root` (name demo-SfM), exports it to <how>/export and writes its
    extraction config; returns the config's path.

    Its whitening o(u) = P (u - m) is learned by PCA on training images, then the network is
    fine-tuned with the contrastive loss for a short budget (BatchNorm frozen, as in the
    paper): how_epochs x how_query_size tuples at global_image_size px, hard negatives mined
    from 3x as many images per epoch.
    """
    stages.run_tool(
        f"HOW: fine-tune from the DELG backbone ({config.how_epochs} epochs of "
        f"{config.how_query_size} tuples, contrastive)", "train_how",
        data_root=sfm_root, training_dataset="demo-SfM", directory=how.path("train"),
        arch=config.backbone, initial_weights=initial_weights,
        image_size=config.global_image_size, query_size=config.how_query_size,
        pool_size=3 * config.how_query_size, neg_num=_negatives_per_tuple(config),
        epochs=config.how_epochs, lr=1e-5, whitening_images=48, test_datasets="",
        seed=config.seed)
    stages.run_tool("HOW: export", "export_how_model",
                    ckpt_path=how.path("train", "model_weights"),
                    export_path=how.path("export"), overwrite=True)
    # Local features only: the strongest over all scales, no attention threshold, no PCA
    # (HOW's descriptors are whitened in the network).
    config_path = how.path("how_config.pbtxt")
    config_lib.WriteConfig(config_path, _local_features_config(
        config, how, 0.0, use_global_features=False))
    return config_path


def _asmk_stats(codebook_path: str, features_dir: str,
                image_names: list[str]) -> dict[str, float]:
    """|C_X| (ASMK* vectors per database image, features on their nearest word) and bytes
    per image of the compact inverted file, for the .delg_local features of `image_names`
    in `features_dir` over the DatumProto codebook at `codebook_path`."""
    from delf_tf.aggregation.asmk_index import AsmkIndex, ReadDescriptors  # pylint: disable=g-import-not-at-top
    from delf_tf.io import datum_io  # pylint: disable=g-import-not-at-top

    index = AsmkIndex(datum_io.ReadFromFile(codebook_path))
    index.Build([ReadDescriptors(os.path.join(features_dir, name + ".delg_local"))
                 for name in image_names], image_names)
    stats = index.Stats()
    return {"vectors_per_image": float(stats["vectors_per_image"]),
            "bytes_per_image": float(stats["bytes_per_image"])}


def _format_how_table(rows: dict[str, dict[str, float]]) -> str:
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


def _format_table(results: dict[str, dict[str, dict[str, float]]],
                  extra_rows: dict[str, dict[str, float]] | None = None) -> str:
    """The DELG rows per model, then `extra_rows` ({pipeline label: mAPs}) of other methods."""
    rows = [f"{'model':<10}{'pipeline':<28}{'medium mAP':>12}{'hard mAP':>10}", "-" * 60]
    for model, by_variant in results.items():
        delg_maps, star_maps = by_variant["delg"], by_variant["delg_star"]
        for label, maps, suffix in (("global only", by_variant["global"], ""),
                                    ("global + GV (DELG)", delg_maps, "_after_gv"),
                                    ("global + GV (DELG*)", star_maps, "_after_gv"),
                                    ("DELF-ASMK* (local only)", by_variant["asmk_star"], ""),
                                    ("ELFM (binary codes)", by_variant["elfm"], ""),
                                    ("ELFM float (cosine)", by_variant["elfm_float"], "")):
            rows.append(f"{model:<10}{label:<28}{100 * maps['medium' + suffix]:>12.2f}"
                        f"{100 * maps['hard' + suffix]:>10.2f}")
    for label, maps in (extra_rows or {}).items():
        rows.append(f"{'':<10}{label:<28}{100 * maps['medium']:>12.2f}"
                    f"{100 * maps['hard']:>10.2f}")
    return "\n".join(rows)


def _pick_query(data: Any, retrieval_dir: str) -> tuple[int, int]:
    """A query and the best-ranked positive after verification (a hard one if it is
    ranked first among the positives, so the picture shows a real viewpoint change)."""
    import numpy as np  # pylint: disable=g-import-not-at-top

    ranks = np.load(os.path.join(retrieval_dir, "ranks_after_gv_medium.npy"))
    best = None
    for q, record in enumerate(data.gnd):
        hard = set(record["hard"].tolist())
        positives = hard | set(record["easy"].tolist())
        order = [int(i) for i in ranks[q] if int(i) in positives]
        if not order:
            continue
        key = (int(ranks[q][0]) in positives, order[0] in hard)
        if best is None or key > best[0]:
            best = (key, q, order[0])
    if best is None:
        return 0, int(data.gnd[0]["easy"][0] if len(data.gnd[0]["easy"]) else
                      data.gnd[0]["hard"][0])
    return best[1], best[2]


def _save_pictures(config: DemoRunConfig, stages: _Stages, run: _Run, data: Any,
                   output_dir: str) -> None:
    """A match picture (query crop vs. its best positive), an attention map and the pair's
    local features coloured by ASMK* visual word."""
    from PIL import Image  # pylint: disable=g-import-not-at-top

    from delf_tf.extraction import batch  # pylint: disable=g-import-not-at-top

    query, positive = _pick_query(data, run.path("retrieval_delg"))
    query_name, index_name = data.qimlist[query], data.imlist[positive]
    pictures = os.path.join(output_dir, "pictures")
    os.makedirs(pictures, exist_ok=True)
    # The query's features are in the coordinates of its crop, so the crop is drawn.
    with Image.open(os.path.join(data.images_dir, query_name + ".jpg")) as image:
        crop, _ = batch.crop_query_image(image.convert("RGB"), data.gnd[query]["bbx"])
    crop_path = os.path.join(pictures, f"{query_name}_crop.png")
    crop.save(crop_path)
    features = run.path("features_delg")
    stages.run_tool(
        "match picture", "match_images", image_1_path=crop_path,
        image_2_path=os.path.join(data.images_dir, index_name + ".jpg"),
        features_1_path=os.path.join(features, "query", query_name + ".delg_local"),
        features_2_path=os.path.join(features, "index", index_name + ".delg_local"),
        descriptor_matching_threshold=1.0, ransac_seed=config.seed,
        title=f"query {query_name} (crop) vs its best-ranked positive {index_name}",
        method=f"DELG {run.name} model, float local features",
        output_image=os.path.join(pictures, "match.png"))
    codebook = run.path("asmk", "codebook", "codebook.datum")
    if os.path.isfile(codebook):
        stages.run_tool(
            "visual words picture", "draw_visual_words", image_1_path=crop_path,
            image_2_path=os.path.join(data.images_dir, index_name + ".jpg"),
            features_1_path=os.path.join(features, "query", query_name + ".delg_local"),
            features_2_path=os.path.join(features, "index", index_name + ".delg_local"),
            codebook_path=codebook, method=f"DELG {run.name} model, ASMK* codebook",
            output_image=os.path.join(pictures, "visual_words.png"))
    threshold = config_lib.ReadDelfConfig(
        run.path("delf_config.pbtxt")).delf_local_config.score_threshold
    stages.run_function("attention picture", _save_attention_picture, run.weights_prefix,
                        crop, threshold, os.path.join(pictures, "attention.png"))


def _save_attention_picture(weights_prefix: str, image: Any, threshold: float,
                            output_path: str) -> None:
    """Image | attention map | overlay (below-threshold places dimmed) | colour bar."""
    import cv2  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top

    from delf_tf.io import atomic  # pylint: disable=g-import-not-at-top
    from delf_tf.matching import visualization  # pylint: disable=g-import-not-at-top
    from delf_tf.models import checkpoint, preprocessing  # pylint: disable=g-import-not-at-top

    model = checkpoint.load_model(weights_prefix)
    pixels = np.asarray(image)
    # Twice the size so the stride-32 attention grid has more than a few cells.
    big = cv2.resize(pixels, (pixels.shape[1] * 2, pixels.shape[0] * 2),
                     interpolation=cv2.INTER_LINEAR)
    _, attention, _ = model.build_call(preprocessing.normalize_images(big[None]))
    picture = visualization.draw_attention(
        pixels, attention.numpy()[0, ..., 0], threshold=threshold,
        caption=["DELG attention (trained model, image at 2x scale)",
                 f"score_threshold {threshold:.4g} = median attention at the end of training"])
    atomic.write_bytes_atomic(output_path, visualization.encode_image(picture, "PNG"))


def RunDemo(config: DemoRunConfig, progress: Callable[[str], Any] = print) -> dict:
    """Runs every stage into `config.output_dir`; returns the results written to results.json.

    `progress` receives each line of progress (stage starts and ends, tool output, the
    final table). Raises ValueError for settings the demo set cannot have, RuntimeError
    naming the log of a stage that fails.
    """
    config.data.validate()
    output_dir = config.output_dir
    os.makedirs(output_dir, exist_ok=True)
    stages = _Stages(output_dir, progress)
    data, tfrecord_dir = _data_stages(config, stages)

    trained = _Run("trained", os.path.join(output_dir, "trained"),
                   os.path.join(output_dir, "trained", "train", "delf_weights"),
                   os.path.join(output_dir, "trained", "train", "attention_stats.json"))
    interval = max(1, config.max_iters // 6)
    stages.run_tool(
        "train DELG", "train", report_interval=interval, eval_interval=config.max_iters,
        num_eval_batches=4, save_interval=config.max_iters,
        **_train_flags(config, tfrecord_dir, trained.path("train"), len(data.landmarks)))
    results = {"trained": _model_stages(config, stages, trained, data)}

    if config.untrained:
        untrained = _Run("untrained", os.path.join(output_dir, "untrained"),
                         os.path.join(output_dir, "untrained", "weights", "delf_weights"),
                         os.path.join(output_dir, "untrained", "weights",
                                      "attention_stats.json"))
        stages.run_function("untrained: fresh weights", _save_untrained_weights,
                            config, trained.weights_prefix, untrained, data.train_dir,
                            config.train_image_size)
        results["untrained"] = _model_stages(config, stages, untrained, data)

    extra_rows = {}
    if config.global_tuples:
        extra_rows["global, tuple-trained (contrastive)"] = _global_tuple_stages(
            config, stages, data, output_dir)

    how_rows = {}
    if config.how:
        how_rows = _how_stages(config, stages, trained, data, output_dir)
        how_rows["DELF"].update(results["trained"]["asmk_star"])
        extra_rows["HOW-ASMK* (tuple fine-tuned)"] = how_rows["HOW"]

    _save_pictures(config, stages, trained, data, output_dir)
    return _write_report(config, stages, results, extra_rows, how_rows)


def _data_stages(config: DemoRunConfig, stages: "_Stages") -> tuple[Any, str]:
    """Renders the demo data and builds its TFRecords: (the DemoDataset, TFRecord dir)."""
    output_dir = config.output_dir
    data_dir = os.path.join(output_dir, "data")
    stages.run_tool("demo data", "make_demo_data", output_dir=data_dir,
                    **dataclasses.asdict(config.data))
    data = _read_demo_dataset(data_dir)

    tfrecord_dir = os.path.join(output_dir, "tfrecords")
    stages.run_tool(
        "TFRecords", "build_image_dataset", train_directory=data.train_dir,
        train_csv_path=data.train_csv_path, train_clean_csv_path=data.train_clean_csv_path,
        output_directory=tfrecord_dir, num_shards=2, generate_train_validation_splits=True,
        validation_split_size=0.2, seed=config.seed)
    return data, tfrecord_dir


def _write_report(config: DemoRunConfig, stages: "_Stages", results: dict, extra_rows: dict,
                  how_rows: dict | None = None) -> dict:
    """Writes metrics_table.txt and results.json (with HOW's Table 1 rows `how_rows`, if any);
    returns what results.json holds."""
    output_dir = config.output_dir
    table = _format_table(results, extra_rows)
    if how_rows:
        table += "\n\n" + _format_how_table(how_rows)
    total = stages.total()
    timing = "\n".join(f"  {stage:<45}{seconds:8.1f} s" for stage, seconds in stages.times)
    report = (f"{table}\n\nWall time per stage:\n{timing}\n  {'total':<45}{total:8.1f} s\n"
              f"({os.cpu_count()} CPU cores; other processes on the machine slow every stage)\n"
              f"Environment: {json.dumps(_environment())}")
    from delf_tf.io import atomic  # pylint: disable=g-import-not-at-top
    atomic.write_bytes_atomic(os.path.join(output_dir, "metrics_table.txt"),
                              (report + "\n").encode())
    summary = {"mAP": results, "other_methods_mAP": extra_rows, "how_table": how_rows or {},
               "stage_seconds": dict(stages.times), "total_seconds": total,
               "flags": config.flag_values(), "environment": _environment()}
    atomic.write_bytes_atomic(os.path.join(output_dir, "results.json"),
                              (json.dumps(summary, indent=2, default=str) + "\n").encode())
    stages.say("\n" + report)
    stages.say(f"\nPictures: {os.path.join(output_dir, 'pictures')}; "
               f"table: {os.path.join(output_dir, 'metrics_table.txt')}")
    return summary


def _environment() -> dict[str, Any]:
    """What the numbers depend on besides the code and seed: the CPU (its kernels and
    oneDNN's differ in rounding) and the library versions. Same machine + same seed gives
    the same numbers; another CPU gives other ones."""
    import platform  # pylint: disable=g-import-not-at-top

    import keras  # pylint: disable=g-import-not-at-top
    import numpy  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
        onednn = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    except (ImportError, AttributeError):
        onednn = "unknown"
    try:
        import cv2  # pylint: disable=g-import-not-at-top
        opencv = cv2.__version__
    except ImportError:
        opencv = None
    return {"cpu_model": cpu, "cpu_cores": os.cpu_count(), "onednn": onednn,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "python": platform.python_version(), "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "opencv": opencv}


def _read_demo_dataset(data_dir: str) -> demo.DemoDataset:
    """The DemoDataset fields the later stages need, read back from the written files."""
    from delf_tf.retrieval import dataset as revisited  # pylint: disable=g-import-not-at-top

    dataset_file_path = os.path.join(data_dir, "gnd_demo.mat")
    qimlist, imlist, gnd = revisited.ReadDatasetFile(dataset_file_path)
    with open(os.path.join(data_dir, "demo_info.json")) as f:
        info = json.load(f)
    return demo.DemoDataset(
        root=data_dir, train_dir=os.path.join(data_dir, "train"),
        train_csv_path=os.path.join(data_dir, "train.csv"),
        train_clean_csv_path=os.path.join(data_dir, "train_clean.csv"),
        images_dir=os.path.join(data_dir, "jpg"), dataset_file_path=dataset_file_path,
        landmarks=[m["name"] for m in info["landmarks"]],
        landmark_ids=[m["landmark_id"] for m in info["landmarks"]],
        imlist=imlist, qimlist=qimlist, gnd=gnd)
