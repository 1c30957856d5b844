"""Simulated and shipped data sets (no download at run time).

Each method's data generators are re-exported here as they land.
"""

__all__: list[str] = []

# multiview (issue 3)
from ._multiview import apply_warps, make_multiview_sources  # noqa: E402

__all__ += ["make_multiview_sources", "apply_warps"]
from ._meg import (  # noqa: E402
    CAMCAN_AUDITORY_EVENTS,
    load_camcan,
    preprocess_meg_raw,
    simulate_meg_group_study,
)

__all__ += ["simulate_meg_group_study", "load_camcan", "preprocess_meg_raw",
            "CAMCAN_AUDITORY_EVENTS"]
