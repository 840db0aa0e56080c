"""ELFM (Hu & Bors, ICPR 2022): expressive local features, binary codes and their search.

functional: pure maths (selection, deterministic k-means, GeM per cluster, codes, similarity);
descriptor: one image's descriptor and its `.elfm` file; index: search over many images.
Importing this package does not import TensorFlow.
"""

__all__: list[str] = []
