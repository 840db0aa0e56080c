"""Local-feature matching: descriptor nearest neighbours, affine RANSAC, geometric re-ranking."""

__all__: list[str] = []
