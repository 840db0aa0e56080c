"""The local features of one image: the one type extraction produces, feature
files hold (`feature_io`) and matching consumes."""

import dataclasses
import functools
from typing import ClassVar

import numpy as np

from delf_tf.matching import descriptor_matching

__all__ = ["LocalFeatures"]


@dataclasses.dataclass(frozen=True, eq=False)
class LocalFeatures:
    """N local features of one image, strongest first when extracted.

    locations: float [N, 2], (y, x) = (row, col) pixel centres of the
      receptive fields in the input image.
    scales: float [N], 1 / the pyramid scale each feature was found at.
    descriptors: float32 [N, D], or bit-packed uint8 [N, D/8] (binarized DELG*).
    attention: float [N], the attention score (HOW: strength ||u||), the
      feature file's `strength`.
    orientations: float [N], zeros for DELF/DELG/HOW.

    Extraction and `feature_io.read_features` give float32 arrays (feature files
    store float32); arrays given by a caller keep their float dtype. The arrays
    are not copied: do not modify them.

    Item access by the original's dictionary keys (`features["locations"]`,
    also "strengths", HOW's name for the attention) is kept for code written
    against the original extractor's `extracted_features['local_features']`.
    """

    locations: np.ndarray
    scales: np.ndarray
    descriptors: np.ndarray
    attention: np.ndarray
    orientations: np.ndarray

    FIELDS: ClassVar[tuple[str, ...]] = (
        "locations", "scales", "descriptors", "attention", "orientations")
    _ALIASES: ClassVar[dict[str, str]] = {"strengths": "attention"}

    def __post_init__(self) -> None:
        for name in self.FIELDS:
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        num_features = len(self.locations)
        for name in self.FIELDS[1:]:
            if len(getattr(self, name)) != num_features:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries but "
                                 f"locations has {num_features}")
        if num_features and (self.locations.ndim != 2 or self.locations.shape[1] != 2):
            raise ValueError(f"locations must be [N, 2] (y, x), got shape {self.locations.shape}")

    @classmethod
    def from_arrays(cls, locations: np.ndarray, descriptors: np.ndarray) -> "LocalFeatures":
        """Features to match from locations [N, 2] (y, x; kept as float64) and
        descriptors [N, D]: scales ones, attention and orientations zeros."""
        locations = np.asarray(locations, dtype=np.float64).reshape(-1, 2)
        ones, zeros = np.ones([len(locations)], np.float32), np.zeros([len(locations)], np.float32)
        return cls(locations, ones, descriptors, zeros, zeros)

    @classmethod
    def empty(cls, dim: int = 0, dtype=np.float32) -> "LocalFeatures":
        """No features; descriptors of `dtype` [0, dim]."""
        zeros = np.zeros([0], np.float32)
        return cls(np.zeros([0, 2], np.float32), zeros, np.zeros([0, dim], dtype), zeros, zeros)

    def __len__(self) -> int:
        return len(self.locations)

    def __getitem__(self, key: str) -> np.ndarray:
        name = self._ALIASES.get(key, key)
        if name not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, name)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(locations, scales, descriptors, attention, orientations)."""
        return tuple(getattr(self, name) for name in self.FIELDS)

    def prepared(self) -> "LocalFeatures":
        """Computes the matching forms below now (not on first use); returns self."""
        _ = self.matching_locations, self.matching_descriptors
        return self

    @functools.cached_property
    def matching_locations(self) -> np.ndarray:
        """float64 [N, 2] (y, x): the locations RANSAC fits, computed once."""
        return np.asarray(self.locations, dtype=np.float64).reshape(-1, 2)

    @functools.cached_property
    def matching_descriptors(self) -> descriptor_matching.PreparedDescriptors:
        """The descriptors converted once for matching (see descriptor_matching)."""
        return descriptor_matching.prepare_descriptors(self.descriptors)
