"""Aggregation of local features: codebook, VLAD / ASMK / ASMK*, inverted file."""

__all__: list[str] = []
