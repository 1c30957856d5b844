"""Numerical building blocks that the array-API code writes itself, one home each.

Each routine is written once against the array API (through :mod:`sciml_toolbox._array_api`)
and is tested against its SciPy / scikit-learn equivalent on NumPy in ``tests/test_numerics.py``.
They are private: the method packages call them, users call the methods.

* :mod:`._ode`: Dormand-Prince 5(4) and classical Runge-Kutta steps (``dynamics``).
* :mod:`._krylov`: conjugate gradients and power iteration (``bilevel``, ``stiefel``).
* :mod:`._cluster`: Lloyd k-means, exact nearest-neighbour search and segment reductions
  (``nn.diffusion``: SPELL's cells and the memorisation metrics).
"""

from ._cluster import (
    bias_minus_2_cross,
    lloyd_kmeans,
    nearest_centre,
    nearest_neighbour,
    segment_max,
    segment_sum,
)
from ._krylov import NonPositiveCurvature, conjugate_gradient, power_iteration
from ._ode import dopri5_step, dopri5_step_factor, rk4_step

__all__ = [
    "dopri5_step",
    "dopri5_step_factor",
    "rk4_step",
    "conjugate_gradient",
    "NonPositiveCurvature",
    "power_iteration",
    "lloyd_kmeans",
    "nearest_neighbour",
    "nearest_centre",
    "segment_sum",
    "segment_max",
    "bias_minus_2_cross",
]
