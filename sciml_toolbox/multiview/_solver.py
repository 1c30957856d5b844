"""Solvers behind the multi-view ICA estimators: reduction, initialisation, joint L-BFGS-B.

The pipeline follows Richard et al. (2020) and Heurtebise et al. (2024):

1. each subject is reduced to ``k`` whitened principal components (``Z_i = P_i X_i``);
2. initial unmixing matrices come from single-subject ICA on each subject (``'permica'``) or
   from one ICA of the group-reduced data (``'groupica'``); PermICA sources are matched to
   subject 0 (Hungarian algorithm), together with an initial warp per source found by a
   coarse-to-fine search over the warps relative to subject 0 (:func:`align_sources`), then
   moved to the gauge "mean warp = identity" exactly (:func:`centre_warps`);
3. one L-BFGS-B run optimises every ``W_i`` and the warp parameters jointly. The loss and its
   analytic gradient (:mod:`._loss`) are evaluated in the data's namespace, on its device; the
   optimiser itself is SciPy's L-BFGS-B on the host, over the small parameter vector
   (``m k (k + 2)`` numbers), with a diagonal (Jacobi) rescaling of the variables.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment, minimize
from sklearn.exceptions import ConvergenceWarning

from .._array_api import device, from_numpy, get_namespace, irfft, rfft, svd, to_numpy
from ._loss import ica_loss_grad, joint_loss_grad
from ._warp import WarpPlan, to_epoch_minor, warp_padding

__all__ = ["reduce_views", "permica", "groupica", "align_sources", "centre_warps",
           "fit_warped_mvica"]


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


def _progress(total, desc, verbose):
    """A tqdm bar when ``verbose`` (a disabled one otherwise)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not verbose, leave=True)


def _lbfgsb(fun, x0, bounds, max_iter, tol, history, what, verbose=False, times=None):
    """SciPy L-BFGS-B on a host vector; ``fun(x) -> (loss, grad)`` (NumPy).

    With ``verbose``, a tqdm bar advances at every iteration and shows the loss. ``times``,
    if a list, receives ``time.perf_counter()`` at every iteration, beside ``history``.
    """
    bar = _progress(max_iter, what, verbose)

    def callback(intermediate_result):
        history.append(float(intermediate_result.fun))
        if times is not None:
            times.append(time.perf_counter())
        bar.update(1)
        if len(history) % 10 == 1:
            bar.set_postfix(loss=f"{history[-1]:.6g}", refresh=False)

    try:
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback,
                       options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-4 * tol,
                                "maxls": 50})
    finally:
        bar.close()
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


def permica(Z, *, random_state=None, max_iter=1000, tol=1e-8, verbose=False):
    """Single-subject ICA (logcosh density) of each subject, solved jointly by L-BFGS-B.

    Parameters
    ----------
    Z : array, shape (m, k, T)
        Whitened data of each subject.
    random_state : int, numpy Generator or None
        Seed of the random orthogonal initial unmixing matrices.
    max_iter : int, default=1000
    tol : float, default=1e-8
    verbose : bool, default=False
        Show a progress bar over iterations (tqdm).

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

    res = _lbfgsb(fun, W0.ravel(), None, max_iter, tol, [], "single-subject ICA (init)",
                  verbose)
    return from_numpy(res.x.reshape(m, k, k), Z)


def groupica(Z, *, random_state=None, max_iter=1000, tol=1e-8, verbose=False):
    """Group ICA: one PCA of the stacked subjects, one ICA, split back per subject.

    Parameters
    ----------
    Z : array, shape (m, k, T)
    random_state, max_iter, tol, verbose
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
    Wg = permica(Zg[None, ...], random_state=random_state, max_iter=max_iter, tol=tol,
                 verbose=verbose)[0]
    blocks = xp.reshape(K, (k, m, k))
    return float(m) * xp.stack([Wg @ blocks[:, i, :] for i in range(m)], axis=0)


def _dilated(S4, r, onset):
    """Every source dilated by every factor of its row of ``r``, shift 0.

    ``S4`` (k, n, E) epoch-minor; ``r`` host array (k, D) of unwarping dilations. Returns
    (k, D, E, n): ``Y[j, d, e, t] = S_j,e(r[j, d] (t - onset) + onset)``.
    """
    xp = get_namespace(S4)
    k, n, E = S4.shape
    D = r.shape[1]
    plan = WarpPlan(from_numpy(np.ascontiguousarray(r), S4), from_numpy(np.zeros((k, D)), S4),
                    n, onset=onset)
    # the plan indexes a (k, D) stack of signals: point its gathers at source j itself
    plan.idx0 = (plan.idx0 // (D * n)) * n + plan.idx0 % n
    plan.idx1 = (plan.idx1 // (D * n)) * n + plan.idx1 % n
    Y = plan.apply(S4)[0]  # (k, D, n, E)
    return xp.permute_dims(Y, (0, 1, 3, 2))


def _envelope(S, width):
    """Circular moving average of ``S ** 2`` over ``width`` samples along the last axis, centred
    (mean removed), computed by FFT."""
    xp = get_namespace(S)
    n = S.shape[-1]
    width = int(width) | 1  # odd: a symmetric window has a real spectrum
    box = np.zeros(n)
    box[:width] = 1.0 / width
    box = np.roll(box, -(width // 2))
    gain = from_numpy(np.fft.rfft(box).real, S)
    env = irfft(rfft(S * S, axis=-1) * gain, n=n, axis=-1)
    return env - xp.mean(env, axis=(-2, -1), keepdims=True)


def _lag_mask(n, lo, hi, like):
    """(n,) 0/1 mask of the circular lags ``s`` (index ``s mod n``) with ``lo <= s <= hi``."""
    s = np.arange(n)
    s = np.where(s > n // 2, s - n, s)
    return from_numpy(((s >= lo) & (s <= hi)).astype(float), like), s


def _xcorr(FY, FR, n):
    """Cross-correlations summed over epochs, by lag: ``sum_e,t Y(t - s) R(t)``.

    ``FY`` (a, E, F) and ``FR`` (b, E, F) rfft spectra; returns (a, b, n).
    """
    xp = get_namespace(FY)
    Fa = xp.permute_dims(xp.conj(FY), (2, 0, 1))  # (F, a, E)
    Fb = xp.permute_dims(FR, (2, 1, 0))  # (F, E, b)
    C = xp.permute_dims(Fa @ Fb, (1, 2, 0))  # (a, b, F)
    return irfft(C, n=n, axis=-1)


def align_sources(W, Z, *, warps="both", max_dilation=1.0, max_shift=0.0, grid_size=None,
                  n_concat=1, onset=0, envelope_width=None, n_candidates=3, verbose=False):
    """Match every subject's sources to subject 0: order, sign and initial warp.

    Subject ``i``'s sources are brought onto subject 0's time axis by the unwarping
    ``S(r (t - onset) + onset - d n)``. Since every subject is warped, the warp of subject ``i``
    relative to subject 0 is searched over twice the model's range: dilations in
    ``[max_dilation ** -2, max_dilation ** 2]``, delays up to ``2 max_dilation max_shift`` of an
    epoch. The search is coarse to fine, so that oscillatory sources are not aligned one cycle
    off (cycle skipping):

    1. envelopes (moving average of the squared source over ``envelope_width`` samples, mean
       removed) of every source of subject ``i`` against every source of subject 0: for each
       dilation of a geometric grid (step: half an envelope width of displacement at the far end
       of the epoch) the normalised cross-correlation at every integer delay comes from one FFT;
       the best score of each pair feeds the Hungarian assignment (sign-free, warp-robust);
    2. the signals themselves, for the matched pairs only: dilations within one coarse step of
       the envelope optimum (step: one sample of displacement), every integer delay within one
       envelope width of the envelope's, scored by the absolute cross-correlation (the sign of
       the best one fixes the sign of the source), as the mean-squared-error score of
       Heurtebise et al. (2024) with the sign allowed to flip.

    Parameters
    ----------
    W : array, shape (m, k, k)
    Z : array, shape (m, k, T)
    warps : {'none', 'shift', 'both'}
    max_dilation, max_shift : float
        The model's warp ranges (dilations in ``[1 / max_dilation, max_dilation]``, delays in
        ``[-max_shift, max_shift]`` of an epoch).
    grid_size : int, optional
        Number of dilations of the coarse (envelope) grid; default: as many as the step rule
        above asks for (about 50 at ``max_dilation=1.25`` on 1000-sample epochs).
    n_concat, onset : int
    envelope_width : int, optional
        Width of the envelope's moving average (default ``max(4, n // 40)`` for epochs of ``n``
        samples): about the longest oscillation period of the sources.
    n_candidates : int, default=3
        Envelope peaks of each matched pair refined on the signals (the best one wins).
    verbose : bool, default=False
        Show a progress bar over subjects (tqdm).

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
    if warps == "none":
        return _align_unwarped(W, Z)
    S = to_epoch_minor(W @ Z, n_concat)  # (m, k, n, E)
    width = int(envelope_width) if envelope_width else max(4, n // 40)
    span = float(max(onset, n - 1 - onset, 1))
    if warps == "both" and max_dilation > 1.0:
        log_range = 2.0 * np.log(max_dilation)
        n_coarse = int(grid_size) if grid_size else int(np.ceil(2 * log_range * span / (width / 2)))
        n_coarse = max(n_coarse, 1) | 1  # odd: the grid holds 1
        coarse = np.exp(np.linspace(-log_range, log_range, n_coarse))
        step = 2 * log_range / max(n_coarse - 1, 1)
        n_fine = int(np.ceil(2 * step * span)) | 1
        fine_offsets = np.linspace(-step, step, n_fine) if n_coarse > 1 else np.zeros(1)
    else:
        coarse, fine_offsets, step = np.ones(1), np.zeros(1), 0.0
    max_lag = int(np.ceil(2.0 * max_dilation**3 * max_shift * n)) + 1
    max_lag = min(max_lag, n // 2)
    _, lags = _lag_mask(n, -max_lag, max_lag, Z)
    D = coarse.shape[0]
    # envelopes are smooth over ``width`` samples: the coarse stage runs on every q-th sample
    q = max(1, width // 4)
    lag_q = -(-max_lag // q)
    ref = xp.permute_dims(S[0, ...], (0, 2, 1))  # (k, E, n)
    ref_env = _envelope(ref, width)[..., ::q]
    nq = ref_env.shape[-1]
    mask, lags_q = _lag_mask(nq, -lag_q, lag_q, Z)
    F_ref = rfft(ref, axis=-1)
    F_ref_env = rfft(ref_env, axis=-1)
    ref_env_norm = xp.sqrt(xp.sum(ref_env * ref_env, axis=(-2, -1)))  # (k,)
    rho = np.ones((m, k))
    tau = np.zeros((m, k))
    perms = [np.arange(k)]
    signs = [np.ones(k)]
    bar = _progress(m - 1, "warp search (init)", verbose)
    for i in range(1, m):
        Si = S[i, ...]  # (k, n, E)
        # stage 1: envelopes, every pair, coarse dilations, every lag
        env = _dilated(_env_minor(Si, width)[:, ::q, :], np.broadcast_to(coarse, (k, D)),
                       onset / q)
        env_norm = xp.sqrt(xp.sum(env * env, axis=(-2, -1)))  # (k, D)
        corr = _xcorr(rfft(xp.reshape(env, (k * D, n_concat, nq)), axis=-1), F_ref_env, nq)
        corr = xp.reshape(corr, (k, D, k, nq)) * mask
        corr = corr / (env_norm[:, :, None, None] * ref_env_norm[None, None, :, None])
        corr = xp.reshape(xp.permute_dims(corr, (0, 2, 1, 3)), (k, k, D * nq))
        best = to_numpy(xp.max(corr, axis=-1))  # (k_i, k_0)
        rows, cols = linear_sum_assignment(-best)
        order = np.empty(k, dtype=np.int64)
        order[cols] = rows  # subject i's source feeding subject 0's source cols
        # the n_candidates best envelope peaks of each matched pair (each one suppresses the
        # peaks within two coarse steps and one envelope width), refined on the signals
        pair = to_numpy(corr)[order, np.arange(k)].reshape(k, D, nq)
        cand_r, cand_s = _peaks(pair, coarse, lags_q, n_candidates, max(1, width // q))
        cand_s = cand_s * q  # (k, C) each, in samples
        # stage 2: signals of the matched pairs, fine dilations around each candidate
        r2 = (cand_r[:, :, None] * np.exp(fine_offsets)[None, None, :]).reshape(k, -1)
        D2 = r2.shape[1]
        s_of = np.repeat(cand_s, fine_offsets.shape[0], axis=1)  # (k, D2)
        Y = _dilated(_take_rows(Si, order), r2, onset)  # (k, D2, E, n)
        y_norm = xp.sqrt(xp.sum(Y * Y, axis=(-2, -1)))  # (k, D2)
        FY = rfft(Y, axis=-1)
        C = irfft(xp.sum(xp.conj(FY) * F_ref[:, None, ...], axis=2), n=n, axis=-1)  # (k, D2, n)
        C = C / y_norm[:, :, None]
        near = ((np.abs(lags[None, None, :] - s_of[:, :, None]) <= width)
                & (np.abs(lags) <= max_lag))
        Cn = to_numpy(xp.reshape(C, (k, D2 * n))) * near.reshape(k, D2 * n)
        g2 = np.argmax(np.abs(Cn), axis=1)
        sign = np.sign(Cn[np.arange(k), g2])
        sign[sign == 0] = 1.0
        rho[i] = r2[np.arange(k), g2 // n]
        tau[i] = lags[g2 % n] * rho[i] / n
        perms.append(order)
        signs.append(sign)
        bar.update(1)
    bar.close()
    idx = from_numpy(np.concatenate([p + i * k for i, p in enumerate(perms)]).astype(np.int64), Z)
    idx = xp.astype(idx, xp.int64)
    Wf = xp.reshape(xp.take(xp.reshape(W, (m * k, k)), idx, axis=0), (m, k, k))
    Wf = Wf * from_numpy(np.stack(signs)[:, :, None], Z)
    return Wf, rho, tau


def _peaks(corr, coarse, lags, n_candidates, width):
    """Positions of the ``n_candidates`` highest peaks of each map of ``corr`` (k, D, n).

    After each peak, the entries within two grid steps of its dilation and one ``width`` of its
    lag are suppressed. Returns the dilations and lags (k, n_candidates).
    """
    k, D, n = corr.shape
    c = corr.copy()
    cand_r = np.empty((k, n_candidates))
    cand_s = np.empty((k, n_candidates), dtype=np.int64)
    d_idx = np.arange(D)[:, None]
    for q in range(n_candidates):
        flat = np.argmax(c.reshape(k, -1), axis=1)
        g, t = flat // n, flat % n
        cand_r[:, q] = coarse[g]
        cand_s[:, q] = lags[t]
        for j in range(k):
            dl = np.abs(lags - lags[t[j]])
            dl = np.minimum(dl, n - dl)
            c[j][(np.abs(d_idx - g[j]) <= 2) & (dl[None, :] <= width)] = -np.inf
    return cand_r, cand_s


def _env_minor(S4, width):
    """Envelope of epoch-minor signals (k, n, E), returned epoch-minor."""
    xp = get_namespace(S4)
    env = _envelope(xp.permute_dims(S4, (0, 2, 1)), width)  # (k, E, n)
    return xp.permute_dims(env, (0, 2, 1))


def _take_rows(S4, order):
    xp = get_namespace(S4)
    idx = xp.astype(from_numpy(order.astype(np.int64), S4), xp.int64)
    return xp.take(S4, idx, axis=0)


def _align_unwarped(W, Z):
    """MVICA: order and signs of each subject's sources matched to subject 0 by correlation."""
    xp = get_namespace(W, Z)
    m, k, total = Z.shape
    S = W @ Z
    S0 = S[0, ...]
    perms = [np.arange(k)]
    signs = [np.ones(k)]
    for i in range(1, m):
        cross = to_numpy(S[i, ...] @ S0.T) / total  # (k_i, k_0)
        rows, cols = linear_sum_assignment(-np.abs(cross))
        order = np.empty(k, dtype=np.int64)
        order[cols] = rows
        sign = np.sign(cross[order, np.arange(k)])
        sign[sign == 0] = 1.0
        perms.append(order)
        signs.append(sign)
    idx = from_numpy(np.concatenate([p + i * k for i, p in enumerate(perms)]).astype(np.int64), Z)
    idx = xp.astype(idx, xp.int64)
    Wf = xp.reshape(xp.take(xp.reshape(W, (m * k, k)), idx, axis=0), (m, k, k))
    Wf = Wf * from_numpy(np.stack(signs)[:, :, None], Z)
    return Wf, np.ones((m, k)), np.zeros((m, k))


def centre_warps(rho, tau):
    """Exact change of gauge of unwarping parameters: forward mean dilation 1, mean delay 0.

    Warps are identifiable only up to one warp common to all subjects per source: composing
    every subject's unwarping ``S(r (t - onset) + onset - d n)`` with the same affine time map
    leaves the model unchanged. In forward parameters (``rho = 1 / r``, ``tau = -d / r``) the
    map ``rho -> rho / c``, ``tau -> (tau - e) / c`` with ``c`` the mean dilation and ``e`` the
    mean delay of each source is such a composition; subtracting means from ``r`` and ``d``
    directly is not (it changes the warps of subjects relative to each other, by tens of samples
    when dilations reach 1.25).

    Parameters
    ----------
    rho, tau : ndarray, shape (m, k)
        Unwarping dilations and shifts (host arrays).

    Returns
    -------
    rho, tau : ndarray, shape (m, k)
    """
    dil = 1.0 / rho
    shi = -tau / rho
    c = dil.mean(axis=0)
    dil = dil / c
    shi = (shi - shi.mean(axis=0)) / c
    return 1.0 / dil, -shi / dil


def fit_warped_mvica(Z, W0, rho0, tau0, *, warps="both", noise=1.0, n_concat=1, onset=0,
                     max_dilation=1.0, max_shift=0.0, penalty=1.0, max_iter=3000, tol=1e-7,
                     smoothing=1, verbose=False, times=None):
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
        Show a progress bar over iterations (tqdm) and print the solver's summary.

    Returns
    -------
    W : array, shape (m, k, k)
    rho, tau : array, shape (m, k)
    n_iter : int
    history : list of float
        Loss after every iteration.

    ``times``, if a list, receives the ``time.perf_counter()`` of every iteration.
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
        mass = xp.sum(slope2, axis=-1)
        h_tau = to_numpy(mass) * n * n * (1.0 - 1.0 / m) / (noise * total)
        # dilate around the centroid c of each source's slope energy rather than the onset:
        # d = e + (r - 1) kappa with kappa = (c - onset) / n decorrelates the dilation r from
        # the delay e (a dilation about a point far from the source's content acts mostly as a
        # delay, which a diagonal scaling cannot undo)
        kappa = np.zeros((m, k))
        if use_rho:
            tc = to_numpy(xp.sum(slope2 * t, axis=-1)) / np.maximum(to_numpy(mass), 1e-300)
            kappa = tc / n
            if warp_padding(n, onset, rho_bound,
                            tau_bound + (rho_bound - 1.0) * np.abs(kappa).max()) > n:
                kappa = np.zeros((m, k))
        tcx = from_numpy(kappa * n, Z)[..., None]
        h_rho = to_numpy(xp.sum(slope2 * (t - tcx) ** 2, axis=-1))
        h_rho = h_rho * (1.0 - 1.0 / m) / (noise * total)
        c_tau = np.sqrt(h_tau + 1.0)
        c_rho = np.sqrt(h_rho + 1.0)
        pad = warp_padding(n, onset, rho_bound,
                           tau_bound + (rho_bound - 1.0) * np.abs(kappa).max())
    else:
        c_tau = c_rho = np.ones((m, k))
        kappa = np.zeros((m, k))

    def unpack(x):
        W = x[:n_w].reshape(m, k, k) / c_w
        r = 1.0 + x[n_w:n_w + m * k].reshape(m, k) / c_rho if use_rho else np.ones((m, k))
        d = x[n_w + m * k:].reshape(m, k) / c_tau if use_tau else np.zeros((m, k))
        return W, r, d + (r - 1.0) * kappa

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
        gd = to_numpy(gd)
        if use_rho:
            g[n_w:n_w + m * k] = ((to_numpy(gr) + kappa * gd) / c_rho).ravel()
        if use_tau:
            g[n_w + m * k:] = (gd / c_tau).ravel()
        return loss, g

    x0 = np.concatenate([
        to_numpy(W0).ravel() * c_w,
        ((rho0 - 1.0) * c_rho).ravel(),
        ((tau0 - (rho0 - 1.0) * kappa) * c_tau).ravel(),
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
    res = _lbfgsb(fun, x0, bounds, max_iter, tol, history, "multi-view ICA", verbose,
                  times=times)
    if verbose:
        print(f"L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, loss {res.fun:.6g}")
    W, r, d = unpack(res.x)
    return from_numpy(W, Z), from_numpy(r, Z), from_numpy(d, Z), int(res.nit), history
