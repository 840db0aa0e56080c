"""Retrieval: global search, Revisited Oxford/Paris evaluation, Google Landmarks v2 metrics."""

__all__: list[str] = []
