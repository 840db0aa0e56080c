"""Selection of the tf.distribute strategy and the worker's role in it."""

import os

import tensorflow as tf

__all__ = [
    # The original's names (the compatibility surface).
    "GetStrategy", "WorkerRole", "WorkerDirectory",
    # delf_tf's own API.
    "STRATEGIES",
]

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


def GetStrategy(name: str = "default", tpu_address: str | None = None) -> tf.distribute.Strategy:
    """Creates the named strategy.

    Must run before any other TensorFlow op for 'multi_worker_mirrored' (the cluster comes
    from TF_CONFIG) and 'tpu' (`tpu_address`: a name, grpc:// address or 'local').
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown distribution strategy {name!r}; expected one of {STRATEGIES}")


def WorkerRole(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, task_id) of this process; single-process strategies are always the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True, 0
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    if task_type is None:
        return True, 0
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return is_chief, task_id


def WorkerDirectory(logdir: str, is_chief: bool, task_id: int) -> str:
    """Where this worker writes checkpoints: the logdir for the chief, a subfolder otherwise.

    Every worker saves (saving can be collective) and, after a restart, restores from its own
    folder, which holds the same state as the chief's since training is synchronous.
    """
    return logdir if is_chief else os.path.join(logdir, f"worker_{task_id}")
