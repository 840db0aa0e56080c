"""Aggregation of local features: codebook, VLAD / ASMK / ASMK*, inverted file."""
