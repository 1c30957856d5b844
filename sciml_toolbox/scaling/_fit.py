"""Robust fitting of scaling laws: Huber loss on log-loss residuals, L-BFGS vectorised over a
grid of starting points (Hoffmann et al., 2022, approach 3; Besiroglu et al., 2024)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from .._array_api import to_numpy
from .._validation import check_array, check_in_range, check_int, check_positive

__all__ = ["huber", "huber_grad", "batched_lbfgs", "make_grid"]


def huber(r, delta):
    """Huber loss ``r^2 / 2`` for ``|r| <= delta``, ``delta (|r| - delta / 2)`` beyond.

    Parameters
    ----------
    r : ndarray
        Residuals (any shape).
    delta : float
        Transition point.

    Returns
    -------
    ndarray, same shape as ``r``
    """
    r = np.asarray(to_numpy(check_array(r, "r", ndim=None, min_samples=0)), dtype=float)
    delta = check_positive(delta, "delta")
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_grad(r, delta):
    """Derivative of :func:`huber`: ``clip(r, -delta, delta)``."""
    return np.clip(r, -delta, delta)


def make_grid(*axes):
    """Cartesian product of 1-D axes as a (n_starts, n_params) array (last axis fastest)."""
    if not axes:
        raise ValueError("axes: give at least one 1-D axis of starting values")
    axes = [np.asarray(to_numpy(check_array(a, f"axes[{i}]", ndim=1)), dtype=float)
            for i, a in enumerate(axes)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def batched_lbfgs(fun_grad, x0, *, max_iter=1000, memory=10, gtol=1e-9, ftol=1e-15,
                  max_linesearch=40, c1=1e-4, max_step=None, warm_iter=None, n_keep=None):
    """Minimise many independent problems at once with L-BFGS (Nocedal & Wright, Alg. 7.4/7.5).

    Every row of ``x0`` is its own problem with its own curvature memory, step and
    convergence test; the work is vectorised over rows (one ``fun_grad`` call per line-search
    trial for all rows still running), so thousands of starts cost little more than one.
    Rows leave the working set as soon as they stop, so the cost of an iteration follows the
    number of rows still running. The line search is a backtracking Armijo search from the
    unit step (optionally capped, see ``max_step``) with quadratic interpolation of the step.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x, rows) -> (f, g)`` with ``x`` of shape (m, n_params) the current points of
        the problems ``rows`` (int array of shape (m,)); returns ``f`` of shape (m,) and
        ``g`` of shape (m, n_params). A non-finite ``f`` marks a point outside the domain:
        a start there is not run, a trial step there is rejected.
    x0 : ndarray, shape (n_starts, n_params)
    max_iter : int, default=1000
    memory : int, default=10
        Number of curvature pairs kept.
    gtol : float, default=1e-9
        Stop a row when ``max |g| <= gtol * max(1, |f|)``.
    ftol : float, default=1e-15
        Stop a row when the relative decrease of ``f`` falls below ``ftol``.
    max_linesearch : int, default=40
    c1 : float, default=1e-4
        Armijo constant.
    max_step : float or None, default=None
        Safeguard on the first trial step of each line search: it is shortened so that no
        coordinate moves by more than ``max(max_step, 4 |s|)``, with ``|s|`` the largest
        coordinate of the row's previous accepted step (so the cap grows as fast as the
        steps do). On nearly linear stretches of an objective (a Huber loss far from its
        minimum) the quasi-Newton step can overshoot by orders of magnitude and cost
        several backtracking evaluations; the cap saves them. ``None``: unit step.
    warm_iter, n_keep : int or None, default=None
        Multistart pruning: after ``warm_iter`` iterations only the ``n_keep`` rows with the
        lowest objective (rows already stopped count in the ranking) keep iterating; the
        others stop where they are and are reported as not converged. ``None``: every row
        runs to its own stopping test or ``max_iter``.

    Returns
    -------
    x : ndarray, shape (n_starts, n_params)
    f : ndarray, shape (n_starts,)
        Objective at ``x`` (``inf`` for starts where it is not finite).
    n_iter : ndarray of int, shape (n_starts,)
    converged : ndarray of bool, shape (n_starts,)
    """
    if not callable(fun_grad):
        raise TypeError(f"fun_grad must be callable, got {type(fun_grad).__name__}")
    x0 = np.asarray(to_numpy(check_array(x0, "x0", ndim=2)), dtype=float)
    max_iter = check_int(max_iter, "max_iter", min_value=0)
    memory = check_int(memory, "memory", min_value=1)
    gtol = check_positive(gtol, "gtol", strict=False)
    ftol = check_positive(ftol, "ftol", strict=False)
    max_linesearch = check_int(max_linesearch, "max_linesearch", min_value=1)
    c1 = check_in_range(c1, "c1", 0.0, 1.0, closed="neither")
    max_step = check_positive(max_step, "max_step", allow_none=True)
    warm_iter = check_int(warm_iter, "warm_iter", min_value=0, allow_none=True)
    n_keep = check_int(n_keep, "n_keep", min_value=1, allow_none=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        # non-finite directions are caught below and replaced by steepest descent
        return _batched_lbfgs(fun_grad, x0, max_iter, memory, gtol, ftol, max_linesearch, c1,
                              max_step, warm_iter, n_keep)


def _rowdot(a, b):
    return np.einsum("sp,sp->s", a, b)


def _batched_lbfgs(fun_grad, x0, max_iter, memory, gtol, ftol, max_linesearch, c1,
                   max_step, warm_iter, n_keep):
    x = np.array(x0, dtype=float, copy=True)
    S, P = x.shape
    f, g = fun_grad(x, np.arange(S))
    f = np.array(f, dtype=float)
    g = np.array(g, dtype=float)
    if f.shape != (S,) or g.shape != (S, P):
        raise ValueError(f"fun_grad must return f of shape ({S},) and g of shape ({S}, {P}) for "
                         f"x of shape ({S}, {P}), got {f.shape} and {g.shape}")
    finite = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    f[~finite] = np.inf
    n_iter = np.zeros(S, dtype=int)
    converged = finite & (np.max(np.abs(g), axis=1) <= gtol * np.maximum(1.0, np.abs(f)))
    # state of the running rows, compacted: row k of every array is problem act[k]
    act = np.flatnonzero(finite & ~converged)
    xa, fa, ga = x[act], f[act], g[act]
    s_mem = np.zeros((memory, act.size, P))
    y_mem = np.zeros((memory, act.size, P))
    rho = np.zeros((memory, act.size))
    gnorm = np.linalg.norm(ga, axis=1)
    gamma = np.minimum(1.0, gnorm) / np.maximum(gnorm, 1e-300)  # first step of length <= 1
    head = 0
    n_filled = 0
    last_step = np.zeros(act.size)  # largest coordinate of the last accepted step
    for it in range(max_iter):
        if warm_iter is not None and it == warm_iter and n_keep is not None:
            ranked = np.argsort(f, kind="stable")[:n_keep]
            keep = np.isin(act, ranked)
            x[act[~keep]] = xa[~keep]
            act, xa, fa, ga, gamma = act[keep], xa[keep], fa[keep], ga[keep], gamma[keep]
            last_step = last_step[keep]
            s_mem, y_mem, rho = s_mem[:, keep], y_mem[:, keep], rho[:, keep]
        m = act.size
        if m == 0:
            break
        # two-loop recursion, newest pair first; empty or rejected pairs have rho = 0
        slots = [(head - 1 - j) % memory for j in range(n_filled)]
        q = ga.copy()
        alph = []
        for j in slots:
            a = rho[j] * _rowdot(s_mem[j], q)
            q -= a[:, None] * y_mem[j]
            alph.append(a)
        r = gamma[:, None] * q
        for j, a in zip(reversed(slots), reversed(alph), strict=True):
            b = rho[j] * _rowdot(y_mem[j], r)
            r += s_mem[j] * (a - b)[:, None]
        d = -r
        slope = _rowdot(ga, d)
        bad = ~(slope < 0) | ~np.all(np.isfinite(d), axis=1)
        if bad.any():  # not a descent direction: restart from steepest descent
            gn = np.linalg.norm(ga[bad], axis=1)
            d[bad] = -ga[bad] * (np.minimum(1.0, gn) / np.maximum(gn, 1e-300))[:, None]
            slope[bad] = _rowdot(ga[bad], d[bad])
            rho[:, bad] = 0.0
        # backtracking Armijo line search over the running rows
        t = np.ones(m)
        if max_step is not None:  # shorten huge quasi-Newton steps before any evaluation
            cap = np.maximum(max_step, 4.0 * last_step)
            t = np.minimum(1.0, cap / np.maximum(np.max(np.abs(d), axis=1), 1e-300))
        accepted = np.zeros(m, dtype=bool)
        f_new = fa.copy()
        g_new = ga.copy()
        pending = np.arange(m)
        for _ls in range(max_linesearch):
            xt = xa[pending] + t[pending, None] * d[pending]
            ft, gt = fun_grad(xt, act[pending])
            ok = np.isfinite(ft) & (ft <= fa[pending] + c1 * t[pending] * slope[pending])
            ok &= np.all(np.isfinite(gt), axis=1)
            acc = pending[ok]
            accepted[acc] = True
            f_new[acc], g_new[acc] = ft[ok], gt[ok]
            fail_f = ft[~ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            # minimiser of the quadratic through f(0), f'(0) and f(t), kept in [0.1 t, 0.5 t]
            # (Nocedal & Wright, Sec. 3.5)
            tp, sp = t[pending], slope[pending]
            curv = 2.0 * (fail_f - fa[pending] - sp * tp)
            tq = np.where(np.isfinite(fail_f) & (curv > 0), -sp * tp * tp / curv, 0.1 * tp)
            t[pending] = np.clip(tq, 0.1 * tp, 0.5 * tp)
        # rows whose line search failed are converged as far as this precision allows
        failed = ~accepted
        s_new = t[:, None] * d
        s_new[failed] = 0.0
        y_new = g_new - ga
        sy = _rowdot(s_new, y_new)
        yy = _rowdot(y_new, y_new)
        good = accepted & (sy > 1e-12 * np.sqrt(_rowdot(s_new, s_new) * yy)) & (sy > 1e-300)
        s_mem[head] = s_new
        y_mem[head] = y_new
        rho[head] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma = np.where(good, sy / np.where(good, yy, 1.0), gamma)
        head = (head + 1) % memory
        n_filled = min(n_filled + 1, memory)
        small_f = accepted & ((fa - f_new) <= ftol * np.maximum(np.abs(fa), 1e-300))
        xa += s_new
        last_step = np.where(accepted, np.max(np.abs(s_new), axis=1), last_step)
        fa, ga = f_new, g_new
        n_iter[act] += 1
        small_g = np.max(np.abs(ga), axis=1) <= gtol * np.maximum(1.0, np.abs(fa))
        conv = small_g | small_f
        done = conv | failed
        if done.any():
            rows = act[done]
            x[rows], f[rows], g[rows] = xa[done], fa[done], ga[done]
            converged[rows] = conv[done]
            keep = ~done
            act, xa, fa, ga, gamma = act[keep], xa[keep], fa[keep], ga[keep], gamma[keep]
            last_step = last_step[keep]
            s_mem, y_mem, rho = s_mem[:, keep], y_mem[:, keep], rho[:, keep]
        f[act] = fa
    x[act], f[act] = xa, fa
    return x, f, n_iter, converged


def polish(fun_grad_single, x0, *, bounds=None, max_iter=2000):
    """Refine one solution with SciPy's L-BFGS-B (tight tolerances).

    Parameters
    ----------
    fun_grad_single : callable
        ``f(x) -> (f, g)`` for one parameter vector, shape (n_params,).
    x0 : ndarray, shape (n_params,)

    Returns
    -------
    scipy.optimize.OptimizeResult
    """
    # a few parameters: BLAS threads only add synchronisation (ten times slower on a busy CPU)
    with threadpool_limits(limits=1, user_api="blas"):
        return minimize(fun_grad_single, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12,
                                 "maxcor": 20})
