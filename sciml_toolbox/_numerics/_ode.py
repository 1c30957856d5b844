"""Explicit Runge-Kutta steps for autonomous systems whose state is a tuple of arrays.

The state ``y`` is a tuple of arrays (for example a mean and a covariance factor) and ``f``
maps such a tuple to a tuple of the same shapes: the steps only add and scale arrays, so they
keep the namespace, device and dtype of the state. Step-size control, event detection and
output stay with the caller (``dynamics`` needs its own blow-up bookkeeping).
"""

from __future__ import annotations

import math

__all__ = ["dopri5_step", "dopri5_step_factor", "rk4_step"]

# Dormand-Prince 5(4) tableau (Dormand & Prince, 1980); the nodes _C are not needed by the
# autonomous systems stepped here and are kept to show the whole tableau
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(a - b for a, b in zip(_B5, _B4, strict=True))


def _combine(coefs, values):
    """``sum_i coefs[i] * values[i]`` over the non-zero coefficients."""
    return sum(c * v for c, v in zip(coefs, values, strict=False) if c != 0.0)


def dopri5_step(f, y, k1, h):
    """One Dormand-Prince 5(4) step of the autonomous system ``y' = f(y)``.

    Parameters
    ----------
    f : callable
        ``y -> dy/dt``, a tuple of arrays of the shapes of ``y``.
    y : tuple of arrays
        State at the start of the step.
    k1 : tuple of arrays
        ``f(y)`` (the last stage of the previous accepted step: first same as last).
    h : float
        Step size.

    Returns
    -------
    y_new : tuple of arrays
        Fifth-order solution after the step.
    err : tuple of arrays
        ``y_new`` minus the embedded fourth-order solution: the local error estimate that a
        step-size controller scales by its tolerance (see :func:`dopri5_step_factor`).
    k7 : tuple of arrays
        ``f(y_new)``, the ``k1`` of the next step.

    References
    ----------
    Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae", J. Comput. Appl.
    Math. 6(1); Hairer, Nørsett & Wanner, "Solving ODEs I", II.5.
    """
    ks = [k1]
    for s in range(1, 7):
        ks.append(f(tuple(yi + h * _combine(_A[s], [k[i] for k in ks])
                          for i, yi in enumerate(y))))
    y_new = tuple(yi + h * _combine(_B5, [k[i] for k in ks]) for i, yi in enumerate(y))
    err = tuple(h * _combine(_E, [k[i] for k in ks]) for i in range(len(y)))
    return y_new, err, ks[6]


def dopri5_step_factor(err):
    """Step-size multiplier after a step whose scaled error norm is ``err``.

    ``0.9 err^{-1/5}`` clipped to [0.2, 5] (5 for a zero error, 0.2 for a non-finite one): the
    standard controller of a fifth-order method. A step is accepted when ``err <= 1``.

    Parameters
    ----------
    err : float
        Error norm of the step divided by its tolerance.

    Returns
    -------
    factor : float
    """
    if err == 0:
        return 5.0
    if not math.isfinite(err):
        return 0.2
    return min(5.0, max(0.2, 0.9 * err ** -0.2))


def rk4_step(f, y, h):
    """One classical fourth-order Runge-Kutta step of ``y' = f(y)`` for an array ``y``.

    Parameters
    ----------
    f : callable
        ``y -> dy/dt``, an array of the shape of ``y``.
    y : array
        State at the start of the step.
    h : float
        Step size.

    Returns
    -------
    y_new : array
        State after the step, in the namespace and on the device of ``y``.
    """
    k1 = f(y)
    k2 = f(y + (0.5 * h) * k1)
    k3 = f(y + (0.5 * h) * k2)
    k4 = f(y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
