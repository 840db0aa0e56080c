"""Export for serving and multi-scale feature extraction.

Modules: feature_extractor (receptive boxes, keypoints, PCA/L2 post-processing,
the original's names), postprocess (L2, PCA files, binarize), pyramid (the
in-graph multi-scale algorithm), export (SavedModel wrappers), extractor
(`MakeExtractor`), batch (the extract_features jobs).
"""

__all__: list[str] = []
