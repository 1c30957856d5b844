"""Robust fitting of scaling laws: Huber loss on log-loss residuals, L-BFGS vectorised over a
grid of starting points (Hoffmann et al., 2022, approach 3; Besiroglu et al., 2024)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

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
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_grad(r, delta):
    """Derivative of :func:`huber`: ``clip(r, -delta, delta)``."""
    return np.clip(r, -delta, delta)


def make_grid(*axes):
    """Cartesian product of 1-D axes as a (n_starts, n_params) array (last axis fastest)."""
    mesh = np.meshgrid(*[np.asarray(a, dtype=float) for a in axes], indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def batched_lbfgs(fun_grad, x0, *, max_iter=1000, memory=10, gtol=1e-9, ftol=1e-15,
                  max_linesearch=40, c1=1e-4):
    """Minimise many independent problems at once with L-BFGS (Nocedal & Wright, Alg. 7.4/7.5).

    Every row of ``x0`` is its own problem with its own curvature memory, step and
    convergence test; the work is vectorised over rows (one ``fun_grad`` call per line-search
    trial for all rows still running), so thousands of starts cost little more than one.
    The line search is a backtracking Armijo search from the unit step with quadratic
    interpolation of the step.

    Parameters
    ----------
    fun_grad : callable
        ``fun_grad(x, rows) -> (f, g)`` with ``x`` of shape (m, n_params) the current points of
        the problems ``rows`` (int array of shape (m,)); returns ``f`` of shape (m,) and
        ``g`` of shape (m, n_params).
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

    Returns
    -------
    x : ndarray, shape (n_starts, n_params)
    f : ndarray, shape (n_starts,)
    n_iter : ndarray of int, shape (n_starts,)
    converged : ndarray of bool, shape (n_starts,)
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        # non-finite directions are caught below and replaced by steepest descent
        return _batched_lbfgs(fun_grad, x0, max_iter, memory, gtol, ftol, max_linesearch, c1)


def _batched_lbfgs(fun_grad, x0, max_iter, memory, gtol, ftol, max_linesearch, c1):
    x = np.array(x0, dtype=float, copy=True)
    S, P = x.shape
    rows_all = np.arange(S)
    f, g = fun_grad(x, rows_all)
    s_mem = np.zeros((memory, S, P))
    y_mem = np.zeros((memory, S, P))
    rho = np.zeros((memory, S))
    n_pairs = np.zeros(S, dtype=int)
    n_iter = np.zeros(S, dtype=int)
    converged = np.zeros(S, dtype=bool)
    active = np.isfinite(f)
    converged |= np.max(np.abs(g), axis=1) <= gtol * np.maximum(1.0, np.abs(f))
    active &= ~converged
    head = 0
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ga, xa, fa = g[idx], x[idx], f[idx]
        # two-loop recursion, newest pair first; empty pairs have rho = 0 and are no-ops
        q = ga.copy()
        order = [(head - 1 - j) % memory for j in range(memory)]
        alph = []
        for j in order:
            a = rho[j, idx] * np.einsum("sp,sp->s", s_mem[j, idx], q)
            q -= a[:, None] * y_mem[j, idx]
            alph.append(a)
        jn = order[0]
        sy = np.einsum("sp,sp->s", s_mem[jn, idx], y_mem[jn, idx])
        yy = np.einsum("sp,sp->s", y_mem[jn, idx], y_mem[jn, idx])
        has = n_pairs[idx] > 0
        gnorm = np.linalg.norm(ga, axis=1)
        gamma = np.where(has, sy / np.where(yy > 0, yy, 1.0),
                         1.0 / np.maximum(gnorm, 1e-300) * np.minimum(1.0, gnorm))
        r = gamma[:, None] * q
        for j, a in zip(reversed(order), reversed(alph), strict=True):
            b = rho[j, idx] * np.einsum("sp,sp->s", y_mem[j, idx], r)
            r += s_mem[j, idx] * (a - b)[:, None]
        d = -r
        slope = np.einsum("sp,sp->s", ga, d)
        bad = ~(slope < 0) | ~np.all(np.isfinite(d), axis=1)
        if bad.any():  # not a descent direction: restart from steepest descent
            d[bad] = -ga[bad] / np.maximum(gnorm[bad, None], 1e-300)
            slope[bad] = np.einsum("sp,sp->s", ga[bad], d[bad])
            rho[:, idx[bad]] = 0.0
            n_pairs[idx[bad]] = 0
        # backtracking Armijo line search, vectorised over the active rows
        t = np.ones(idx.size)
        accepted = np.zeros(idx.size, dtype=bool)
        f_new = fa.copy()
        g_new = ga.copy()
        pending = np.arange(idx.size)
        for _ls in range(max_linesearch):
            xt = xa[pending] + t[pending, None] * d[pending]
            ft, gt = fun_grad(xt, idx[pending])
            ok = np.isfinite(ft) & (ft <= fa[pending] + c1 * t[pending] * slope[pending])
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
        x_new = xa + s_new
        y_new = g_new - ga
        sy_new = np.einsum("sp,sp->s", s_new, y_new)
        good = accepted & (sy_new > 1e-12 * np.linalg.norm(s_new, axis=1)
                           * np.linalg.norm(y_new, axis=1)) & (sy_new > 1e-300)
        s_mem[head, idx] = np.where(good[:, None], s_new, 0.0)
        y_mem[head, idx] = np.where(good[:, None], y_new, 0.0)
        rho_new = np.zeros(idx.size)
        rho_new[good] = 1.0 / sy_new[good]
        rho[head, idx] = rho_new
        n_pairs[idx] += good
        head = (head + 1) % memory
        x[idx], f[idx], g[idx] = x_new, f_new, g_new
        n_iter[idx] += 1
        small_g = np.max(np.abs(g_new), axis=1) <= gtol * np.maximum(1.0, np.abs(f_new))
        small_f = (fa - f_new) <= ftol * np.maximum(np.abs(fa), 1e-300)
        done = small_g | (accepted & small_f) | failed
        converged[idx] = small_g | (accepted & small_f)
        active[idx[done]] = False
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
