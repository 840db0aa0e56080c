"""The parameters of geometric verification as one frozen group, built once
(by a tool from its flags) and passed whole down to matching and RANSAC."""

import dataclasses

from delf_tf import checks
from delf_tf.matching import ransac

__all__ = ["VerificationParams"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerificationParams:
    """How a query image is verified against an index image.

    descriptor_matching_threshold: largest descriptor distance of a putative
      match (binarized descriptors: 2 * sqrt(hamming / bits)); with
      `use_ratio_test`, the largest ratio of nearest to second-nearest distance.
    ransac_residual_threshold: largest transfer error (pixels) of an inlier.
    ransac_seed: seed of every pair's RANSAC; None draws fresh randomness.
    max_trials: number of random 3-point RANSAC samples.
    ransac_backend: 'numpy', 'opencv' or 'skimage' (checked here, once).
    """
    descriptor_matching_threshold: float = 0.9
    ransac_residual_threshold: float = 10.0
    use_ratio_test: bool = False
    ransac_seed: int | None = None
    max_trials: int = ransac.DEFAULT_MAX_TRIALS
    ransac_backend: str = ransac.DEFAULT_BACKEND

    def __post_init__(self) -> None:
        ransac.check_backend(self.ransac_backend)
        # Named as the tools' flags (perform_retrieval: --local_descriptor_matching_threshold,
        # match_images: --ransac_max_trials).
        checks.positive("descriptor_matching_threshold", self.descriptor_matching_threshold)
        checks.positive("ransac_residual_threshold", self.ransac_residual_threshold)
        checks.positive("max_trials (--ransac_max_trials)", self.max_trials)
