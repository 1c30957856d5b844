"""Solvers behind the multi-view ICA estimators: reduction, initialisation, joint L-BFGS-B.

The pipeline follows Richard et al. (2020) and Heurtebise et al. (2024):

1. each subject is reduced to ``k`` whitened principal components (``Z_i = P_i X_i``);
2. initial unmixing matrices come from single-subject ICA on each subject (``'permica'``) or
   from one ICA of the group-reduced data (``'groupica'``); PermICA sources are matched to
   subject 0 (Hungarian algorithm), together with an initial warp per source found by a grid
   search (vectorised: every grid point of a subject is warped in one call);
3. one L-BFGS-B run optimises every ``W_i`` and the warp parameters jointly. The loss and its
   analytic gradient (:mod:`._loss`) are evaluated in the data's namespace, on its device; the
   optimiser itself is SciPy's L-BFGS-B on the host, over the small parameter vector
   (``m k (k + 2)`` numbers), with a diagonal (Jacobi) rescaling of the variables.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment, minimize
from sklearn.exceptions import ConvergenceWarning

from .._array_api import device, from_numpy, get_namespace, svd, to_numpy
from ._loss import ica_loss_grad, joint_loss_grad
from ._warp import WarpPlan, to_epoch_minor, warp_padding

__all__ = ["reduce_views", "permica", "groupica", "align_sources", "fit_warped_mvica"]


def reduce_views(views, n_components, *, rank_rtol=1e-8):
    """Centre each view and project it on its first principal components, whitened.

    Parameters
    ----------
    views : list of arrays, shape (p_i, T)
        One array per subject, same namespace.
    n_components : int
        Number of components ``k`` kept per subject.
    rank_rtol : float, default=1e-8
        Singular values below ``rank_rtol * s_max`` count as zero.

    Returns
    -------
    projections : list of arrays, shape (k, p_i)
        ``P_i`` with ``Z_i = P_i (X_i - mean_i)`` of unit variance.
    Z : array, shape (m, k, T)
    means : list of arrays, shape (p_i, 1)

    Raises
    ------
    ValueError
        If a view has numerical rank below ``n_components``.
    """
    xp = get_namespace(*views)
    projections, reduced, means = [], [], []
    total = views[0].shape[-1]
    for i, X in enumerate(views):
        mean = xp.mean(X, axis=1, keepdims=True)
        Xc = X - mean
        U, s, Vh = svd(Xc, full_matrices=False)
        s_max = float(s[0]) if s.shape[0] else 0.0
        s_k = float(s[n_components - 1])
        if not s_max > 0 or s_k <= rank_rtol * s_max:
            rank = int(xp.sum(xp.astype(s > rank_rtol * s_max, xp.int64))) if s_max > 0 else 0
            raise ValueError(
                f"n_components={n_components} exceeds the numerical rank {rank} of X[{i}] "
                "(rank-deficient data): lower n_components or remove the degenerate channels"
            )
        scale = (total ** 0.5) / s[:n_components]
        projections.append(U[:, :n_components].T * scale[:, None])
        reduced.append(Vh[:n_components, :] * (total ** 0.5))
        means.append(mean)
    return projections, xp.stack(reduced, axis=0), means


def _lbfgsb(fun, x0, bounds, max_iter, tol, history, what):
    """SciPy L-BFGS-B on a host vector; ``fun(x) -> (loss, grad)`` (NumPy)."""
    def callback(intermediate_result):
        history.append(float(intermediate_result.fun))

    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback,
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-4 * tol, "maxls": 50})
    if not res.success and res.nit >= max_iter:
        gmax = float(np.max(np.abs(res.jac))) if res.jac is not None else float("nan")
        warnings.warn(
            f"{what} did not converge in max_iter={max_iter} iterations: the largest "
            f"projected-gradient entry is {gmax:.3g} (tol={tol:.3g}); increase max_iter "
            "or tol",
            ConvergenceWarning,
            stacklevel=5,
        )
    return res


def _random_orthogonal(rng, m, k):
    q, r = np.linalg.qr(rng.standard_normal((m, k, k)))
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def permica(Z, *, random_state=None, max_iter=1000, tol=1e-8):
    """Single-subject ICA (logcosh density) of each subject, solved jointly by L-BFGS-B.

    Parameters
    ----------
    Z : array, shape (m, k, T)
        Whitened data of each subject.
    random_state : int, numpy Generator or None
        Seed of the random orthogonal initial unmixing matrices.
    max_iter : int, default=1000
    tol : float, default=1e-8

    Returns
    -------
    W : array, shape (m, k, k)
        One unmixing matrix per subject (not yet matched across subjects).
    """
    m, k, _ = Z.shape
    rng = np.random.default_rng(random_state)
    W0 = _random_orthogonal(rng, m, k)

    def fun(x):
        W = from_numpy(x.reshape(m, k, k), Z)
        loss, g = ica_loss_grad(W, Z)
        if g is None:
            return np.inf, np.zeros_like(x)
        return loss, to_numpy(g).ravel().astype(np.float64)

    res = _lbfgsb(fun, W0.ravel(), None, max_iter, tol, [], "single-subject ICA (init)")
    return from_numpy(res.x.reshape(m, k, k), Z)


def groupica(Z, *, random_state=None, max_iter=1000, tol=1e-8):
    """Group ICA: one PCA of the stacked subjects, one ICA, split back per subject.

    Parameters
    ----------
    Z : array, shape (m, k, T)
    random_state, max_iter, tol
        As in :func:`permica`.

    Returns
    -------
    W : array, shape (m, k, k)
        Unmixing matrices with ``mean_i W_i Z_i`` the group sources.
    """
    xp = get_namespace(Z)
    m, k, total = Z.shape
    stacked = xp.reshape(Z, (m * k, total))
    U, s, _ = svd(stacked, full_matrices=False)
    K = U[:, :k].T * ((total ** 0.5) / s[:k])[:, None]  # (k, m k)
    Zg = K @ stacked
    Wg = permica(Zg[None, ...], random_state=random_state, max_iter=max_iter, tol=tol)[0]
    blocks = xp.reshape(K, (k, m, k))
    return float(m) * xp.stack([Wg @ blocks[:, i, :] for i in range(m)], axis=0)


def _grid(max_dilation, max_shift, grid_size, warps):
    if warps == "both":
        d = np.linspace(1.0 / max_dilation, max_dilation, grid_size)
        s = np.linspace(-max_shift, max_shift, grid_size)
        gd, gs = np.meshgrid(d, s)
        return gd.ravel(), gs.ravel()
    if warps == "shift":
        s = np.linspace(-max_shift, max_shift, grid_size * grid_size)
        return np.ones_like(s), s
    return np.ones(1), np.zeros(1)


def align_sources(W, Z, *, warps="both", max_dilation=1.0, max_shift=0.0, grid_size=10,
                  n_concat=1, onset=0):
    """Match every subject's sources to subject 0: order, sign and initial warp.

    For each subject ``i >= 1`` and each of its sources, every (dilation, shift) pair of a
    ``grid_size x grid_size`` grid is applied at once, and scored by the mean squared error to
    each source of subject 0 with the sign allowed to flip (Heurtebise et al., 2024). The
    Hungarian algorithm then assigns sources to subject 0's sources.

    Parameters
    ----------
    W : array, shape (m, k, k)
    Z : array, shape (m, k, T)
    warps : {'none', 'shift', 'both'}
    max_dilation, max_shift : float
        Grid ranges ``[1 / max_dilation, max_dilation]`` and ``[-max_shift, max_shift]``.
    grid_size : int
        Points per axis (``grid_size ** 2`` shifts when only shifts are searched).
    n_concat, onset : int

    Returns
    -------
    W : array, shape (m, k, k)
        Rows permuted and signs flipped.
    rho, tau : ndarray, shape (m, k)
        Initial unwarping parameters (host arrays), subject 0 at (1, 0).
    """
    xp = get_namespace(W, Z)
    m, k, total = Z.shape
    n = total // n_concat
    S = xp.reshape(to_epoch_minor(W @ Z, n_concat), (m, k, total))
    gd, gs = _grid(max_dilation, max_shift, grid_size, warps)
    n_grid = gd.shape[0]
    S0 = S[0, ...]
    S0_sq = xp.mean(S0 * S0, axis=-1)  # (k,)
    rho = np.ones((m, k))
    tau = np.zeros((m, k))
    perms = [np.arange(k)]
    signs = [np.ones(k)]
    if warps != "none":
        # one plan for every subject: source j of the subject warped by every grid point g,
        # its gather rows redirected from the (j, g) copy to source j itself
        plan = WarpPlan(from_numpy(np.broadcast_to(gd, (k, n_grid)).copy(), Z),
                        from_numpy(np.broadcast_to(gs, (k, n_grid)).copy(), Z), n, onset=onset)
        plan.idx0 = (plan.idx0 // (n_grid * n)) * n + plan.idx0 % n
        plan.idx1 = (plan.idx1 // (n_grid * n)) * n + plan.idx1 % n
    for i in range(1, m):
        Si = S[i, ...]
        if warps == "none":
            Y = Si[:, None, :]
        else:
            Y = xp.reshape(plan.apply(xp.reshape(Si, (k, n, n_concat)))[0],
                           (k, n_grid, total))
        cross = xp.reshape(xp.reshape(Y, (-1, total)) @ S0.T, (k, Y.shape[1], k)) / total
        y_sq = xp.mean(Y * Y, axis=-1)  # (k, G)
        score = to_numpy(y_sq[:, :, None] + S0_sq[None, None, :] - 2.0 * xp.abs(cross))
        best_g = np.argmin(score, axis=1)  # (k_i, k_0)
        best = np.take_along_axis(score, best_g[:, None, :], axis=1)[:, 0, :]
        rows, cols = linear_sum_assignment(best)
        order = np.empty(k, dtype=np.int64)
        order[cols] = rows  # subject i's source feeding subject 0's source cols
        g_sel = best_g[order, np.arange(k)]
        cross_np = to_numpy(cross)
        sign = np.sign(cross_np[order, g_sel, np.arange(k)])
        sign[sign == 0] = 1.0
        perms.append(order)
        signs.append(sign)
        rho[i] = gd[g_sel]
        tau[i] = gs[g_sel]
    idx = from_numpy(np.concatenate([p + i * k for i, p in enumerate(perms)]).astype(np.int64), Z)
    idx = xp.astype(idx, xp.int64)
    Wf = xp.reshape(xp.take(xp.reshape(W, (m * k, k)), idx, axis=0), (m, k, k))
    Wf = Wf * from_numpy(np.stack(signs)[:, :, None], Z)
    return Wf, rho, tau


def fit_warped_mvica(Z, W0, rho0, tau0, *, warps="both", noise=1.0, n_concat=1, onset=0,
                     max_dilation=1.0, max_shift=0.0, penalty=1.0, max_iter=3000, tol=1e-7,
                     smoothing=1, verbose=False):
    """Joint L-BFGS-B over all unmixing matrices and (optionally) warps.

    Parameters
    ----------
    Z : array, shape (m, k, T)
        Whitened reduced data.
    W0 : array, shape (m, k, k)
        Initial unmixing matrices (matched across subjects).
    rho0, tau0 : ndarray, shape (m, k)
        Initial unwarping dilations and shifts.
    warps : {'none', 'shift', 'both'}
    noise, n_concat, onset, max_dilation, max_shift, penalty
        Model parameters (see :func:`~._loss.joint_loss_grad`). The optimiser's box bounds are
        twice the search ranges (``[max_dilation ** -2, max_dilation ** 2]``,
        ``[-2 max_shift, 2 max_shift]``) so that centring the warps never hits a bound.
    max_iter : int
    tol : float
        Tolerance on the projected gradient of the rescaled variables.
    smoothing : int, default=1
        Length of the moving average applied to the unwarped sources in the loss.
    verbose : bool

    Returns
    -------
    W : array, shape (m, k, k)
    rho, tau : array, shape (m, k)
    n_iter : int
    history : list of float
        Loss after every iteration.
    """
    xp = get_namespace(Z)
    m, k, total = Z.shape
    n = total // n_concat
    n_w = m * k * k
    use_tau = warps in ("shift", "both")
    use_rho = warps == "both"
    rho_bound = max_dilation**2 if use_rho else 1.0
    tau_bound = 2.0 * max_shift if use_tau else 0.0
    pad = warp_padding(n, onset, rho_bound, tau_bound)
    if pad > n:
        raise ValueError(
            f"max_dilation={max_dilation} and max_shift={max_shift} allow warps longer than "
            f"an epoch ({n} samples): lower them or increase the epoch length"
        )
    # Jacobi scaling of the variables (diagonal of the Gauss-Newton Hessian at the start)
    c_w = np.sqrt(1.0 + (1.0 - 1.0 / m) / noise)
    rho0_x = from_numpy(rho0, Z)
    tau0_x = from_numpy(tau0, Z)
    if use_tau:
        Z = xp.reshape(to_epoch_minor(Z, n_concat), (m, k, total))  # reordered once
        plan = WarpPlan(rho0_x, tau0_x, n, onset=onset)
        _, slope = plan.apply(xp.reshape(W0 @ Z, (m, k, n, n_concat)))
        slope2 = xp.sum(slope * slope, axis=-1)  # (m, k, n)
        t = xp.arange(n, dtype=Z.dtype, device=device(Z)) - float(onset)
        h_tau = to_numpy(xp.sum(slope2, axis=-1)) * n * n * (1.0 - 1.0 / m) / (noise * total)
        h_rho = to_numpy(xp.sum(slope2 * t * t, axis=-1))
        h_rho = h_rho * (1.0 - 1.0 / m) / (noise * total)
        c_tau = np.sqrt(h_tau + 1.0)
        c_rho = np.sqrt(h_rho + 1.0)
    else:
        c_tau = c_rho = np.ones((m, k))

    def unpack(x):
        W = x[:n_w].reshape(m, k, k) / c_w
        r = 1.0 + x[n_w:n_w + m * k].reshape(m, k) / c_rho if use_rho else np.ones((m, k))
        d = x[n_w + m * k:].reshape(m, k) / c_tau if use_tau else np.zeros((m, k))
        return W, r, d

    def fun(x):
        W, r, d = unpack(x)
        loss, gW, gr, gd = joint_loss_grad(
            from_numpy(W, Z), from_numpy(r, Z), from_numpy(d, Z), Z, noise=noise,
            n_concat=n_concat, onset=onset, warps=warps, penalty=penalty,
            max_dilation=max_dilation, max_shift=max_shift, pad=pad, epoch_minor=use_tau,
            smooth=smoothing)
        if gW is None:
            return np.inf, np.zeros_like(x)
        g = np.zeros_like(x)
        g[:n_w] = to_numpy(gW).ravel() / c_w
        if use_rho:
            g[n_w:n_w + m * k] = (to_numpy(gr) / c_rho).ravel()
        if use_tau:
            g[n_w + m * k:] = (to_numpy(gd) / c_tau).ravel()
        return loss, g

    x0 = np.concatenate([
        to_numpy(W0).ravel() * c_w,
        ((rho0 - 1.0) * c_rho).ravel(),
        (tau0 * c_tau).ravel(),
    ]).astype(np.float64)
    inf = np.inf
    bounds = [(-inf, inf)] * n_w
    if use_rho:
        lo, hi = 1.0 / rho_bound, rho_bound
        bounds += [((lo - 1.0) * c, (hi - 1.0) * c) for c in c_rho.ravel()]
    else:
        bounds += [(0.0, 0.0)] * (m * k)
    if use_tau:
        bounds += [(-tau_bound * c, tau_bound * c) for c in c_tau.ravel()]
    else:
        bounds += [(0.0, 0.0)] * (m * k)
    x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
    history = []
    res = _lbfgsb(fun, x0, bounds, max_iter, tol, history, "multi-view ICA")
    if verbose:
        print(f"L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, loss {res.fun:.6g}")
    W, r, d = unpack(res.x)
    return from_numpy(W, Z), from_numpy(r, Z), from_numpy(d, Z), int(res.nit), history
