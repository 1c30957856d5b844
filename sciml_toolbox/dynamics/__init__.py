"""Transformer PDE: attention particle systems and the Gaussian-measure ODE.

Tokens of a deep Transformer evolve through depth as interacting particles,
dx_i/dt = sum_j softmax_j(<Q x_i, K x_j>) V x_j; when they are Gaussian the dynamics reduce to an
ODE on the mean and covariance (Geshkovski et al., 2023; Castin et al., 2025).
"""

from ._attention import attention_velocity
from ._diagnostics import (
    anisotropy,
    cluster_count,
    empirical_moments,
    gaussian_w2,
    limit_rank,
    w2_to_gaussian,
)
from ._gaussian import GaussianODEResult, gaussian_ode, gaussian_vector_field
from ._particles import simulate_particles

__all__ = [
    "attention_velocity",
    "simulate_particles",
    "gaussian_vector_field",
    "gaussian_ode",
    "GaussianODEResult",
    "cluster_count",
    "limit_rank",
    "anisotropy",
    "empirical_moments",
    "gaussian_w2",
    "w2_to_gaussian",
]
