"""Training: the DELF/DELG loop (`trainer`), strategy selection (`strategy`), statistics
(`summaries`)."""

__all__: list[str] = []
