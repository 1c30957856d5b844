"""Scaling laws and their robust fitting (NumPy/SciPy).

Estimators for the Chinchilla law, the forgetting law with pretraining-data injection, a
finetuning-loss law and user-defined laws, fitted in log space with a Huber loss and L-BFGS
vectorised over thousands of starting points.
"""

from ._fit import batched_lbfgs, huber, make_grid
from ._laws import (
    ChinchillaLaw,
    CustomLaw,
    FinetuningLaw,
    ForgettingLaw,
    ScalingLaw,
    compare_laws,
)
from ._plot import plot_law_fit, plot_residuals

__all__ = [
    "ScalingLaw",
    "ChinchillaLaw",
    "ForgettingLaw",
    "FinetuningLaw",
    "CustomLaw",
    "compare_laws",
    "batched_lbfgs",
    "huber",
    "make_grid",
    "plot_law_fit",
    "plot_residuals",
]
