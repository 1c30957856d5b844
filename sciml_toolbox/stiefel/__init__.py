"""Landing on the (random) generalized Stiefel manifold: GEVP, stochastic CCA and ICA.

Optimisation under :math:`X^\\top B X = I_p` without retractions (Vary, Ablin, Gao & Absil,
ICML 2024), where B may be known only through minibatch products :math:`B_\\zeta X`.
"""

from ._cca import LandingCCA
from ._closed_form import CCAClosedForm, cca_closed_form, cca_subspace_correlation
from ._gevp import generalized_eigh
from ._ica import LandingICA
from ._landing import (
    landing_direction,
    landing_step,
    landing_update,
    normal_direction,
    penalty,
    plam_direction,
    relative_gradient,
    riemannian_gradient,
    safe_step_size,
)
from ._problems import make_cca_data, make_gevp_pencil
from ._retraction import cholesky_retraction, polar_retraction

__all__ = [
    "LandingCCA",
    "CCAClosedForm",
    "cca_closed_form",
    "cca_subspace_correlation",
    "LandingICA",
    "generalized_eigh",
    "make_cca_data",
    "make_gevp_pencil",
    "landing_direction",
    "landing_step",
    "landing_update",
    "normal_direction",
    "penalty",
    "plam_direction",
    "relative_gradient",
    "riemannian_gradient",
    "safe_step_size",
    "cholesky_retraction",
    "polar_retraction",
]
