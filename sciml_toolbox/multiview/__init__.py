"""Multi-view ICA: shared sources across subjects, with per-subject delays and dilations.

:class:`MVICA` (Richard et al., 2020), :class:`MVICAD` (delays; Heurtebise et al., 2023) and
:class:`MVICAD2` (delays and dilations; Heurtebise et al., 2024) are scikit-learn estimators
written against the array API (NumPy, torch CPU/CUDA, CuPy inputs).
"""

from ._estimators import MVICA, MVICAD, MVICAD2
from ._metrics import amari_distance, match_sources, warp_errors
from ._mne import plot_mixing_topomaps, sources_to_mne
from ._warp import warp

__all__ = [
    "MVICA",
    "MVICAD",
    "MVICAD2",
    "amari_distance",
    "warp_errors",
    "match_sources",
    "warp",
    "sources_to_mne",
    "plot_mixing_topomaps",
]
