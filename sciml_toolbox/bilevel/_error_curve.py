"""Hypergradient error against inner error, the diagnostic of Ye et al. (2024), Figs. 1-3."""

from __future__ import annotations

import numpy as np

from .._array_api import to_numpy
from .._validation import check_option
from ._hypergradient import HYPERGRADIENT_METHODS, hypergradient, solve_inner

__all__ = ["hypergradient_error_curve", "loglog_slope"]


def hypergradient_error_curve(problem, x, z_path, *, z_star=None, h_star=None,
                              methods=HYPERGRADIENT_METHODS, solver="direct"):
    """Error of each hypergradient estimator along a sequence of inner iterates.

    Parameters
    ----------
    problem : BilevelProblem
    x : array, shape (n_outer,)
    z_path : sequence of arrays, each of shape (n_inner,)
        Inner iterates (for example ``solve_inner(..., return_path=True).path``).
    z_star : array, shape (n_inner,), optional
        Exact inner solution (default: ``problem.inner_solution(x)`` where it exists, else
        Newton's method to ||grad|| <= 1e-13).
    h_star : array, shape (n_outer,), optional
        Exact hypergradient (default: the IFT at ``z_star``).
    methods : sequence of str, default=HYPERGRADIENT_METHODS
    solver : {'direct', 'cg'}, default='direct'

    Returns
    -------
    result : dict
        ``'inner_error'``: numpy array (n_iterates,) of ||z - z*||; ``'errors'``: dict
        method -> numpy array (n_iterates,) of ||h_hat - h*||.
    """
    for m in methods:
        check_option(m, "methods", HYPERGRADIENT_METHODS)
    if z_star is None:
        try:
            z_star = problem.inner_solution(x)
        except NotImplementedError:
            z_star = solve_inner(problem, x, z_path[-1], method="newton", tol=1e-13,
                                 max_iter=100).z
    if h_star is None:
        h_star = hypergradient(problem, z_star, x, method="ift", solver=solver)
    zs_np, hs_np = to_numpy(z_star), to_numpy(h_star)
    inner = np.array([np.linalg.norm(to_numpy(z) - zs_np) for z in z_path])
    errors = {
        m: np.array([
            np.linalg.norm(to_numpy(hypergradient(problem, z, x, method=m, solver=solver)) - hs_np)
            for z in z_path
        ])
        for m in methods
    }
    return {"inner_error": inner, "errors": errors}


def loglog_slope(inner_error, error, *, lo=None, hi=None):
    """Least-squares slope of log(error) against log(inner_error).

    Parameters
    ----------
    inner_error : array_like, shape (k,)
    error : array_like, shape (k,)
    lo, hi : float, optional
        Only points with lo < inner_error < hi (and error > 0) are used.

    Returns
    -------
    slope : float
        About 1 for an error linear in the inner error, 2 for a quadratic one.
    """
    d = np.asarray(inner_error, dtype=float)
    e = np.asarray(error, dtype=float)
    keep = (d > 0) & (e > 0) & np.isfinite(e)
    if lo is not None:
        keep &= d > lo
    if hi is not None:
        keep &= d < hi
    if keep.sum() < 2:
        raise ValueError("loglog_slope needs at least two points with positive errors in range")
    return float(np.polyfit(np.log(d[keep]), np.log(e[keep]), 1)[0])
