"""Hypergradient error against inner error, the diagnostic of Ye et al. (2024), Figs. 1-3."""

from __future__ import annotations

import numpy as np

from .._array_api import to_numpy
from .._validation import check_array, check_consistent_length, check_option, check_scalar
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
    x = check_array(x, "x", ndim=1)
    if not isinstance(z_path, (list, tuple)) or not z_path:
        raise ValueError("z_path must be a non-empty sequence of inner iterates")
    z_path = [check_array(z, f"z_path[{i}]", ndim=1) for i, z in enumerate(z_path)]
    if len({tuple(z.shape) for z in z_path}) > 1:
        raise ValueError("z_path must hold iterates of one shape (n_inner,)")
    if z_star is None:
        try:
            z_star = problem.inner_solution(x)
        except NotImplementedError:
            z_star = solve_inner(problem, x, z_path[-1], method="newton", tol=1e-13,
                                 max_iter=100).z
    if h_star is None:
        h_star = hypergradient(problem, z_star, x, method="ift", solver=solver)
    zs_np, hs_np = to_numpy(z_star), to_numpy(h_star)
    if tuple(z_path[0].shape) != zs_np.shape:
        raise ValueError(f"z_path[0] must have the shape {zs_np.shape} of the inner variable, "
                         f"got {tuple(z_path[0].shape)}")
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

    Raises
    ------
    ValueError
        If the arrays differ in length or hold NaN or infinite values (never dropped
        silently), or fewer than two points remain.
    """
    d = np.asarray(to_numpy(check_array(inner_error, "inner_error", ndim=1)), dtype=float)
    e = np.asarray(to_numpy(check_array(error, "error", ndim=1)), dtype=float)
    check_consistent_length(d, e, names=("inner_error", "error"))
    lo = check_scalar(lo, "lo", allow_none=True)
    hi = check_scalar(hi, "hi", allow_none=True)
    keep = (d > 0) & (e > 0)
    if lo is not None:
        keep &= d > lo
    if hi is not None:
        keep &= d < hi
    if keep.sum() < 2:
        raise ValueError("loglog_slope needs at least two points with inner_error > 0 and "
                         "error > 0 (and lo < inner_error < hi)")
    return float(np.polyfit(np.log(d[keep]), np.log(e[keep]), 1)[0])
