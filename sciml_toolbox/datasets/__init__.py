"""Simulated and shipped data sets (no download at run time).

Each method's data generators are re-exported here as they land.
"""

__all__: list[str] = []
