"""The models by name: one map from the class names written in weight sidecars and
used by the tools ("Delf", "Delg") to the classes, and one way to build them."""

from typing import Any

from delf_tf.models.delf import Delf
from delf_tf.models.delg import Delg

__all__ = ["MODEL_CLASSES", "create_model", "model_class"]

MODEL_CLASSES: dict[str, type[Delf]] = {"Delf": Delf, "Delg": Delg}


def model_class(name: str) -> type[Delf]:
    """The model class called `name`; ValueError naming the known ones otherwise."""
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r}; expected one of {sorted(MODEL_CLASSES)}")
    return MODEL_CLASSES[name]


def create_model(class_name: str, num_classes: int | None = None, /, **config: Any) -> Delf:
    """A fresh, unbuilt model `class_name` with constructor arguments `config` (which
    may include Keras' `name`), with the training classifiers when `num_classes` is given."""
    model = model_class(class_name)(**config)
    if num_classes:
        model.init_classifiers(num_classes)
    return model
