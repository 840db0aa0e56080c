"""Training statistics: attention percentiles (the extraction threshold is chosen from
them), activation sparsity."""

import json

import numpy as np

from delf_tf.io import atomic

__all__ = [
    # The original's names (the compatibility surface).
    "WriteAttentionStats", "ReadAttentionStats", "ActivationSparsity", "WriteScalar",
    "WriteImages",
    # delf_tf's own API.
    "ATTENTION_STATS_FILENAME", "PERCENTILES", "AttentionStats",
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
