"""Training: the DELF/DELG loop (`trainer`), strategy selection (`strategy`), statistics
(`summaries`)."""
