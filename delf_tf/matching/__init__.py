"""Local-feature matching: descriptor nearest neighbours, affine RANSAC, geometric re-ranking."""
