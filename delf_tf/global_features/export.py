"""Exporting a trained GlobalFeatureNet (tools/export_global_features_model.py): the global-only
SavedModel, optionally a whitening learned on an SfM database after training, and a DelfConfig
pbtxt that extracts with both."""

import dataclasses
import os
from typing import Literal

from delf_tf.global_features import extraction, training, whitening
from delf_tf.models import global_model

__all__ = ["GlobalExportOptions", "GlobalExport", "ExportGlobalFeaturesModel"]


@dataclasses.dataclass(frozen=True)
class GlobalExportOptions:
    """What is exported besides the SavedModel (the flags of
    tools/export_global_features_model.py).

    Attributes:
      pool_scales: Output one pooled global_descriptor; otherwise per-scale global_descriptors.
      multiscale: Scales written into --config_path, e.g. '[1, 1/2**(1/2)]'.
      image_size: Longer image side for whitening learning and max_image_size of
        --config_path.
      whitening: Whitening learned on --training_dataset after training.
      data_root: As train_global_features' --data_root.
      training_dataset: SfM database whose pairs/images learn the whitening
        (train/<name>/<name>.pkl).
      whitening_split: Split of the database used for whitening.
      config_path: Where to write a DelfConfig pbtxt for extraction (optional).
    """
    pool_scales: bool = True
    multiscale: str = "[1]"
    image_size: int = 1024
    whitening: Literal["none", "learned", "pca"] = "none"
    data_root: str = ""
    training_dataset: str = "retrieval-SfM-30k"
    whitening_split: str = "train"
    config_path: str | None = None

    def scales(self) -> list[float]:
        """`multiscale` parsed (ValueError naming --multiscale if it is not a list of scales)."""
        return training.parse_scales(self.multiscale)

    def database_path(self) -> str:
        """<data_root>/train/<training_dataset>/<training_dataset>.pkl."""
        name = self.training_dataset
        return os.path.join(self.data_root, "train", name, f"{name}.pkl")


@dataclasses.dataclass(frozen=True)
class GlobalExport:
    """What ExportGlobalFeaturesModel wrote besides the SavedModel (None: not asked for)."""
    whitening_database: str | None
    config_path: str | None


def ExportGlobalFeaturesModel(ckpt_path: str, export_path: str,
                              options: GlobalExportOptions = GlobalExportOptions(), *,
                              overwrite: bool = False) -> GlobalExport:
    """Exports the GlobalFeatureNet of checkpoint `ckpt_path` (with its .json description) to
    `export_path` (extraction.ExportGlobalFeatureNet), then learns `options.whitening` on the
    SfM database (written next to the export, <export_path>_whitening/) and writes
    `options.config_path` naming the absolute export path, the scales and the whitening.

    Raises ValueError for a bad `options.multiscale` before anything is written."""
    from delf_tf.extraction import export  # the DELF/DELG export code: TensorFlow graphs

    scales = options.scales()
    export.check_export_path(export_path, overwrite)
    model = global_model.load_global_model(ckpt_path)
    extraction.ExportGlobalFeatureNet(model, export_path, pool_scales=options.pool_scales,
                                      overwrite=overwrite)
    export_path = os.path.abspath(export_path)
    parameters, database = None, None
    if options.whitening != "none":
        database = options.database_path()
        learned = whitening.LearnWhiteningFromDatabase(
            model, database, options.whitening_split, options.image_size, options.whitening)
        parameters = whitening.save_whitening(learned, export_path + "_whitening",
                                              options.whitening)
    if options.config_path:
        extraction.WriteGlobalDelfConfig(options.config_path, export_path, scales,
                                         options.image_size, parameters)
    return GlobalExport(database, options.config_path or None)
