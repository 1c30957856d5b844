"""Hypergradients by implicit differentiation, preconditioned or reparameterized, and tuners.

Implements the estimators studied by Ye, Peyre, Cremers & Ablin (2024), "Enhancing
hypergradients estimation: a study of preconditioning and reparameterization" (AISTATS), on
array-API problems (NumPy, CuPy, torch, array_api_strict), and scikit-learn estimators that learn
per-feature regularisation by hypergradient descent.
"""

from ._autograd import AutogradProblem
from ._error_curve import hypergradient_error_curve, loglog_slope
from ._hypergradient import (
    HYPERGRADIENT_METHODS,
    InnerResult,
    conjugate_gradient,
    hypergradient,
    solve_inner,
    unrolled_hypergradient,
)
from ._problems import BilevelProblem, LogisticProblem, QuadraticProblem, RidgeProblem
from ._tuners import BilevelLogisticRegressionCV, BilevelRidgeCV

__all__ = [
    "AutogradProblem",
    "BilevelLogisticRegressionCV",
    "BilevelRidgeCV",
    "BilevelProblem",
    "HYPERGRADIENT_METHODS",
    "InnerResult",
    "LogisticProblem",
    "QuadraticProblem",
    "RidgeProblem",
    "conjugate_gradient",
    "hypergradient",
    "hypergradient_error_curve",
    "loglog_slope",
    "solve_inner",
    "unrolled_hypergradient",
]
