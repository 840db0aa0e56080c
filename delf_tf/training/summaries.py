"""Training statistics: attention percentiles (the extraction threshold is chosen from
them), activation sparsity."""

import dataclasses
import json
import os

import numpy as np

from delf_tf import config as config_lib
from delf_tf.io import atomic

__all__ = [
    # The original's names (the compatibility surface).
    "WriteAttentionStats", "ReadAttentionStats", "ActivationSparsity", "WriteScalar",
    "WriteImages",
    # delf_tf's own API.
    "ATTENTION_STATS_FILENAME", "PERCENTILES", "AttentionStats", "ModelConfigParams",
    "WriteModelConfig",
]

ATTENTION_STATS_FILENAME = "attention_stats.json"
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


class AttentionStats:
    """Collects attention probabilities of recent training batches, up to a fixed budget.

    Each batch contributes at most `max_values_per_batch` values (an evenly strided subset),
    so the memory held stays small at any batch or feature map size.
    """

    def __init__(self, max_values_per_batch: int = 100_000):
        self._max_values_per_batch = max_values_per_batch
        self._values: list[np.ndarray] = []

    def add(self, attention: np.ndarray) -> None:
        """attention: float [...] (e.g. [B, h, w, 1]) attention probabilities."""
        values = np.asarray(attention, dtype=np.float32).ravel()
        stride = max(1, -(-values.size // self._max_values_per_batch))
        self._values.append(values[::stride])

    @property
    def num_batches(self) -> int:
        return len(self._values)

    def result(self) -> dict | None:
        """{'num_batches', 'num_values', 'min', 'max', 'mean', 'percentiles': {'1': .., ..}}."""
        if not self._values:
            return None
        values = np.concatenate(self._values)
        percentiles = np.percentile(values, PERCENTILES)
        return {
                "num_batches": len(self._values),
                "num_values": int(values.size),
                "min": float(values.min()),
                "max": float(values.max()),
                "mean": float(values.mean()),
                "percentiles": {str(p): float(v) for p, v in zip(PERCENTILES, percentiles)},
        }

    def reset(self) -> None:
        self._values = []


def WriteAttentionStats(path: str, step: int, stats: dict) -> None:
    """Writes `{'step': step, **stats}` as JSON atomically (readers never see a partial file)."""
    data = json.dumps({"step": int(step), **stats}, indent=2, sort_keys=True)
    atomic.write_bytes_atomic(path, (data + "\n").encode())


def ReadAttentionStats(path: str) -> dict:
    """Reads a file written by `WriteAttentionStats`."""
    return json.loads(atomic.read_bytes(path))


@dataclasses.dataclass(frozen=True)
class ModelConfigParams:
    """How WriteModelConfig makes a DelfConfig for one's own exported model from a template
    (the flags of tools/write_config.py; model_path and output_path are required there).

    Attributes:
      template: Template DelfConfig: the name of a shipped config (delf_config_example,
        r50delg_gld_config, r50delg_gldv2clean_config, r101delg_gld_config,
        r101delg_gldv2clean_config, delg_gld_config) or a pbtxt path.
      model_path: Exported SavedModel directory (from delf-export-*-model).
      attention_stats_path: attention_stats.json written by delf-train into its --logdir; sets
        score_threshold.
      attention_percentile: Percentile of the recorded attention scores used as
        score_threshold (DELG: the median; the DELG paper's local feature ablation used the
        75th).
      score_threshold: Attention threshold to set directly (instead of --attention_stats_path).
      max_feature_num: Maximum number of local features per image (template's if unset).
      use_pca: Whether descriptors are PCA-projected (the template's setting if unset;
        --nouse_pca for one's own model, whose autoencoder already reduces the local
        descriptors).
      output_path: Where to write the DelfConfig pbtxt.
    """
    template: str = "r50delg_gldv2clean_config"
    model_path: str | None = None
    attention_stats_path: str | None = None
    attention_percentile: str = "50"  # one of PERCENTILES, as a string
    score_threshold: float | None = None
    max_feature_num: int | None = None
    use_pca: bool | None = None
    output_path: str | None = None


def _threshold(params: ModelConfigParams) -> tuple[float | None, str]:
    """(score_threshold, where it comes from): params.score_threshold, else the percentile of
    the attention stats file, else (None, ...) keeping the template's."""
    if not params.attention_stats_path:
        return params.score_threshold, "--score_threshold"
    stats = ReadAttentionStats(params.attention_stats_path)
    try:
        threshold = float(stats["percentiles"][params.attention_percentile])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{params.attention_stats_path} has no percentile "
                         f"{params.attention_percentile} of the attention scores") from e
    return threshold, (f"percentile {params.attention_percentile} of "
                       f"{params.attention_stats_path} (step {stats.get('step', '?')})")


def WriteModelConfig(params: ModelConfigParams) -> str:
    """Writes params.template with model_path (absolute), score_threshold (see _threshold),
    use_pca and max_feature_num set as `params` says to params.output_path; returns what it
    set, for the user ("model_path ..., score_threshold ... from ...").

    Raises FileNotFoundError when model_path is not a directory."""
    config = config_lib.ReadDelfConfig(params.template)
    if not os.path.isdir(params.model_path):
        raise FileNotFoundError(f"--model_path {params.model_path} is not a directory "
                                "(export the model first)")
    config.model_path = os.path.abspath(params.model_path)
    threshold, source = _threshold(params)
    if threshold is not None:
        config.delf_local_config.score_threshold = threshold
    if params.use_pca is not None:
        config.delf_local_config.use_pca = params.use_pca
        config.delf_global_config.use_pca = params.use_pca
    if params.max_feature_num is not None:
        config.delf_local_config.max_feature_num = params.max_feature_num
    config_lib.WriteConfig(params.output_path, config)
    kept = (f"score_threshold {threshold:.6g} from {source}" if threshold is not None else
            f"the template's score_threshold {config.delf_local_config.score_threshold:.6g} "
            "(give --attention_stats_path to use your model's)")
    return f"model_path {config.model_path}, {kept}"


def ActivationSparsity(activations: np.ndarray) -> float:
    """Fraction of exactly-zero entries (ReLU outputs switched off)."""
    activations = np.asarray(activations)
    return float(np.mean(activations == 0)) if activations.size else 0.0


def _plugin_metadata(plugin_name: str) -> bytes:
    # The SummaryMetadata TensorBoard's own writers attach: it selects the dashboard.
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name)
    ).SerializeToString()


def WriteScalar(name: str, value: float, step: int) -> None:
    """tf.summary.scalar without the tensorboard package (only needed to view the logs)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                     metadata=_plugin_metadata("scalars"))


def WriteImages(name: str, images, step: int, max_outputs: int = 3) -> None:
    """tf.summary.image without the tensorboard package; images: float [N, H, W, C] in
    [0, 1], C = 1 (grey) or 3."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)[:max_outputs]
    encoded = tf.map_fn(
            lambda image: tf.io.encode_png(tf.image.convert_image_dtype(image, tf.uint8,
                                                                         saturate=True)),
            images, fn_output_signature=tf.string)
    shape = tf.shape(images)
    dimensions = tf.strings.as_string([shape[2], shape[1]])  # width, height
    tf.summary.write(name, tf.concat([dimensions, encoded], axis=0), step=step,
                     metadata=_plugin_metadata("images"))
