"""The Gaussian-measure ODE of attention dynamics (Castin et al., 2025).

If the tokens are distributed as N(alpha, Sigma) and the attention is softmax, L2, multi-head
softmax or Sinkhorn, the mean-field velocity is affine, X[mu](x) = b + M x, so the measure stays
Gaussian: d alpha/dt = b + M alpha and d Sigma/dt = M Sigma + Sigma M^T. We integrate the factor
L (Sigma = L L^T) through dL/dt = M L, which keeps Sigma symmetric positive semi-definite by
construction, with an adaptive Dormand-Prince 5(4) scheme written against the array API.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .._array_api import eigh, get_namespace, solve, sqrtm_psd, to_numpy
from .._numerics import dopri5_step, dopri5_step_factor
from .._validation import check_array, check_int, check_positive, check_psd
from ._checks import check_heads, check_kind, check_t_eval

__all__ = ["gaussian_vector_field", "gaussian_ode", "GaussianODEResult"]

GAUSSIAN_KINDS = ("softmax", "l2", "multihead", "sinkhorn")


def _mT(xp, a):
    return xp.matrix_transpose(a)


def _mv(M, v):
    return (M @ v[..., None])[..., 0]


def _field(xp, alpha, L, heads, kind, epsilon):
    """Affine field (b, M) of the attention of N(alpha, L L^T): X(x) = b + M x."""
    Sigma = L @ _mT(xp, L)
    d = alpha.shape[-1]
    eye = xp.eye(d, dtype=L.dtype, device=getattr(L, "device", None))
    b_tot, M_tot = None, None
    for q_mat, k_mat, v_mat, w_mat in heads:
        A = _mT(xp, k_mat) @ q_mat  # A = K^T Q: <Q x, K y> = y^T A x
        C = v_mat if w_mat is None else _mT(xp, w_mat) @ v_mat
        if kind in ("softmax", "multihead"):
            M = C @ Sigma @ A
            b = _mv(C, alpha)
        elif kind == "l2":
            # tilted Gaussian: precision Sigma^-1 + 2 K^T K, so with R = (I + 2 Sigma K^T K)^-1
            # X(x) = V R (alpha + 2 Sigma A x)
            R_sys = eye + 2.0 * Sigma @ (_mT(xp, k_mat) @ k_mat)
            rhs = xp.concat([alpha[..., None], 2.0 * Sigma @ A], axis=-1)
            sol = solve(R_sys, rhs)
            b = _mv(C, sol[..., 0])
            M = C @ sol[..., 1:]
        else:  # sinkhorn: conditional mean of the entropic plan, E[y|x] = alpha + S A (x - alpha)
            Ae = A / epsilon
            P = _mT(xp, L) @ Ae @ L
            H = P @ _mT(xp, P)
            w, U = eigh(0.5 * (H + _mT(xp, H)))
            w = xp.clip(w, 0.0, None)
            f = 2.0 / (1.0 + xp.sqrt(1.0 + 4.0 * w))
            Wm = (U * f[..., None, :]) @ _mT(xp, U)
            M = C @ (L @ Wm @ _mT(xp, L)) @ Ae
            b = _mv(C, alpha) - _mv(M, alpha)
        b_tot = b if b_tot is None else b_tot + b
        M_tot = M if M_tot is None else M_tot + M
    return b_tot, M_tot


def _check_gaussian_inputs(mean, cov, Q, K, V, W, kind, epsilon, names=("mean0", "cov0")):
    nm, nc = names
    kind = check_kind(kind, GAUSSIAN_KINDS)
    epsilon = check_positive(epsilon, "epsilon")
    cov = check_array(cov, nc, ndim=None)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{nc} must be a (d, d) matrix or a batch (..., d, d), got shape "
                         f"{tuple(cov.shape)}")
    check_psd(cov, nc, tol=1e-8)
    d = cov.shape[-1]
    mean = check_array(mean, nm, ndim=None)
    if mean.ndim < 1 or mean.shape[-1] != d:
        raise ValueError(f"{nm} must have shape (..., {d}) to match {nc}, got "
                         f"{tuple(mean.shape)}")
    xp = get_namespace(cov)
    if get_namespace(mean) is not xp:
        raise TypeError(f"{nm} and {nc} must come from the same array library")
    mean = xp.astype(mean, cov.dtype)
    heads = check_heads(Q, K, V, W, d, cov, batch_ok=True)
    if kind == "softmax" and len(heads) > 1:
        kind = "multihead"
    shapes = [tuple(mean.shape[:-1]), tuple(cov.shape[:-2])]
    for h in heads:
        shapes += [tuple(m.shape[:-2]) for m in h if m is not None]
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError as exc:
        raise ValueError(f"batch shapes of {nm}, {nc}, Q, K, V do not broadcast: {shapes}") \
            from exc
    return xp, mean, cov, heads, kind, epsilon, batch


def gaussian_vector_field(mean, cov, Q, K, V, kind="softmax", *, W=None, epsilon=1.0):
    r"""Affine mean-field velocity of attention acting on a Gaussian measure.

    For :math:`\mu = \mathcal N(\alpha, \Sigma)` the velocity field of the attention layer is
    affine, :math:`X[\mu](x) = b + M x` (Castin et al., 2025), with :math:`A = K^\top Q`:

    - softmax: :math:`X[\mu](x) = V(\alpha + \Sigma A x)`;
    - multi-head: :math:`\sum_h C_h(\alpha + \Sigma A_h x)`, :math:`C_h = W_h^\top V_h`;
    - L2 (scores :math:`-\|Qx - Ky\|^2`): :math:`V R(\alpha + 2\Sigma A x)` with
      :math:`R = (I + 2\Sigma K^\top K)^{-1}` (the mean of the tilted Gaussian);
    - Sinkhorn (entropic plan between :math:`\mu` and itself, kernel
      :math:`e^{y^\top A x/\varepsilon}`): :math:`V(\alpha + S A_\varepsilon (x - \alpha))` where
      :math:`S = \Sigma^{1/2} W \Sigma^{1/2}`, :math:`W = 2(I + (I + 4H)^{1/2})^{-1}` and
      :math:`H = \Sigma^{1/2} A_\varepsilon \Sigma A_\varepsilon^\top \Sigma^{1/2}`,
      :math:`A_\varepsilon = A/\varepsilon`. This solves the Riccati equation
      :math:`S A_\varepsilon \Sigma A_\varepsilon^\top S + S = \Sigma` of the conditional
      covariance of the Gaussian plan, needs no inverse and equals the formula of Castin et al.
      (:math:`V A^{-\top}\Sigma^{-1}C_\Sigma`) where that one is defined.

    Parameters
    ----------
    mean : array, shape (..., d)
    cov : array, shape (..., d, d)
        Symmetric positive semi-definite.
    Q, K : array, shape (..., k, d), or list of per-head arrays
    V : array, shape (..., d, d), or (..., p_h, d) per head with ``W``
    kind : {'softmax', 'l2', 'multihead', 'sinkhorn'}, default='softmax'
        With lists of per-head matrices, the fields of the heads are summed (for every kind).
    W : list of arrays of shape (..., p_h, d), optional
        Per-head output maps.
    epsilon : float, default=1.0
        Sinkhorn temperature.

    Returns
    -------
    b : array, shape (..., d)
    M : array, shape (..., d, d)
        The velocity is ``b + M @ x``; ``M`` is its Jacobian, and
        :math:`\dot\Sigma = M\Sigma + \Sigma M^\top`.
    """
    xp, mean, cov, heads, kind, epsilon, _ = _check_gaussian_inputs(
        mean, cov, Q, K, V, W, kind, epsilon, names=("mean", "cov"))
    L = sqrtm_psd(0.5 * (cov + _mT(xp, cov)))
    return _field(xp, mean, L, heads, kind, epsilon)


class GaussianODEResult(tuple):
    """``(means, covs)`` of :func:`gaussian_ode`, with diagnostics as attributes.

    Unpacks as a pair: ``means, covs = gaussian_ode(...)``.

    Attributes
    ----------
    means : array, shape (..., n_times, d)
    covs : array, shape (..., n_times, d, d)
        NaN after a blow-up (a ``RuntimeWarning`` says so).
    t : numpy.ndarray, shape (n_times,)
    blowup_time : float or numpy.ndarray of shape batch
        First time at which trace(Sigma) exceeded ``blowup_threshold * trace(Sigma_0)`` (or the
        solver could no longer advance); ``inf`` when there is no blow-up.
    limit_rank : int or numpy.ndarray of shape batch
        Number of eigenvalues of Sigma(t_eval[-1]) above ``rank_tol`` (-1 after a blow-up or
        when ``max_steps`` stopped the integration).
    final_eigenvalues : numpy.ndarray, shape batch + (d,)
        Eigenvalues of Sigma(t_eval[-1]) in increasing order.
    n_steps, n_rejected : int
        Accepted and rejected Dormand-Prince steps.
    kind : str
        The attention kind integrated ('multihead' for lists of softmax heads).
    """

    def __new__(cls, means, covs, **info):
        ms, cs = tuple(getattr(means, "shape", ())), tuple(getattr(covs, "shape", ()))
        if len(ms) < 2 or len(cs) != len(ms) + 1 or cs[:-1] != ms or cs[-1] != ms[-1]:
            raise ValueError(f"means and covs must be arrays of shapes (..., n_times, d) and "
                             f"(..., n_times, d, d), got {ms} and {cs}")
        obj = super().__new__(cls, (means, covs))
        obj.means = means
        obj.covs = covs
        for key, value in info.items():
            setattr(obj, key, value)
        return obj

    def __getnewargs_ex__(self):  # pragma: no cover - pickling support
        return (self.means, self.covs), {}


def gaussian_ode(mean0, cov0, Q, K, V, t_eval, kind="softmax", *, W=None, epsilon=1.0,
                 rtol=1e-9, atol=1e-12, max_steps=100_000, blowup_threshold=1e8,
                 rank_tol=0.1):
    r"""Integrate the mean and covariance of a Gaussian token distribution through attention.

    Solves :math:`\dot\alpha = b + M\alpha`, :math:`\dot\Sigma = M\Sigma + \Sigma M^\top`
    with the affine field :math:`(b, M)` of :func:`gaussian_vector_field`; for softmax
    attention :math:`\dot\Sigma = V\Sigma A\Sigma + \Sigma A^\top\Sigma V^\top` (Castin et al.,
    2025). For V = I and symmetric A the solution is
    :math:`\Sigma(t) = (\Sigma_0^{-1} - 2tA)^{-1}`: it blows up at
    :math:`t^* = 1/(2\lambda_{\max}(\Sigma_0^{1/2}A\Sigma_0^{1/2}))` when A has a positive
    eigenvalue and collapses onto ker A when A is negative semi-definite.

    **PSD by construction**: the factor L of :math:`\Sigma = LL^\top` is integrated,
    :math:`\dot L = M L` (then :math:`\dot\Sigma = M\Sigma + \Sigma M^\top` exactly), and the
    returned covariances are :math:`\frac12(LL^\top + (LL^\top)^\top)`: symmetric and positive
    semi-definite up to rounding, with no projection step. A singular :math:`\Sigma_0` is
    allowed. Time stepping is adaptive Dormand-Prince 5(4) with a Frobenius-norm error per
    sequence, landing exactly on every time of ``t_eval``.

    Parameters
    ----------
    mean0 : array, shape (d,) or (..., d)
        Initial means (a leading batch shape integrates several Gaussians at once).
    cov0 : array, shape (d, d) or (..., d, d)
        Initial covariances, symmetric positive semi-definite.
    Q, K : array, shape (..., k, d), or list of per-head arrays
        Query and key matrices; A = K^T Q (fold any 1/sqrt(d) into Q).
    V : array, shape (..., d, d) or list of per-head (..., p_h, d)
    t_eval : array_like, shape (n_times,)
        Strictly increasing times; ``t_eval[0]`` is the initial time.
    kind : {'softmax', 'l2', 'multihead', 'sinkhorn'}, default='softmax'
        See :func:`gaussian_vector_field`. Lists of per-head matrices with 'softmax' mean
        'multihead'.
    W : list of arrays (..., p_h, d), optional
        Per-head output maps (velocity :math:`\sum_h W_h^\top \mathrm{head}_h`).
    epsilon : float, default=1.0
        Sinkhorn temperature.
    rtol, atol : float, default=1e-9, 1e-12
        Relative and absolute tolerances of the step-size control.
    max_steps : int, default=100000
        Steps allowed before giving up with a ``ConvergenceWarning`` (later times are NaN).
    blowup_threshold : float, default=1e8
        Blow-up is declared when trace(Sigma) exceeds this multiple of trace(Sigma_0); since
        :math:`\Sigma \sim (t^* - t)^{-1}` near a blow-up, the reported time is then within
        about ``1/blowup_threshold`` (relative) of :math:`t^*`.
    rank_tol : float, default=0.1
        Eigenvalue threshold of the limit rank (the value used by Castin et al.).

    Returns
    -------
    result : GaussianODEResult
        Unpacks as ``(means, covs)`` of shapes (..., n_times, d) and (..., n_times, d, d), in
        the namespace and device of ``cov0``; also carries ``blowup_time``, ``limit_rank``,
        ``final_eigenvalues``, ``t``, ``n_steps`` and ``n_rejected``.

    Warns
    -----
    RuntimeWarning
        When a covariance blows up (its entries after the blow-up time are NaN).
    ConvergenceWarning
        When ``max_steps`` is reached before ``t_eval[-1]``.

    References
    ----------
    Castin, Ablin, Carrillo, Peyré. A unified perspective on the dynamics of deep Transformers.
    arXiv:2501.18322, 2025.
    """
    xp, mean0, cov0, heads, kind, epsilon, batch = _check_gaussian_inputs(
        mean0, cov0, Q, K, V, W, kind, epsilon)
    t_eval = check_t_eval(t_eval)
    rtol = check_positive(rtol, "rtol")
    atol = check_positive(atol, "atol")
    max_steps = check_int(max_steps, "max_steps", min_value=1)
    blowup_threshold = check_positive(blowup_threshold, "blowup_threshold")
    rank_tol = check_positive(rank_tol, "rank_tol", strict=False)

    d = cov0.shape[-1]
    dtype, dev = cov0.dtype, getattr(cov0, "device", None)
    alpha = xp.broadcast_to(mean0, (*batch, d)) * 1.0
    L = xp.broadcast_to(sqrtm_psd(0.5 * (cov0 + _mT(xp, cov0))), (*batch, d, d)) * 1.0
    tr0 = xp.sum(L * L, axis=(-2, -1))
    tr0 = xp.where(tr0 > 0, tr0, xp.ones_like(tr0))
    alive = xp.ones(batch, dtype=xp.bool, device=dev)
    blowup = np.full(batch, np.inf)
    unfinished = np.zeros(batch, dtype=bool)
    nan = xp.asarray(math.nan, dtype=dtype, device=dev)

    def rhs(y):
        a, Lm = y
        b, M = _field(xp, a, Lm, heads, kind, epsilon)
        keep = xp.astype(alive, dtype)
        return (b + _mv(M, a)) * keep[..., None], (M @ Lm) * keep[..., None, None]

    def norms(ea, eL, a0, a1, L0, L1):
        na = xp.sqrt(xp.sum(ea * ea, axis=-1))
        nL = xp.sqrt(xp.sum(eL * eL, axis=(-2, -1)))
        sa = atol + rtol * xp.maximum(xp.sqrt(xp.sum(a0 * a0, axis=-1)),
                                      xp.sqrt(xp.sum(a1 * a1, axis=-1)))
        sL = atol + rtol * xp.maximum(xp.sqrt(xp.sum(L0 * L0, axis=(-2, -1))),
                                      xp.sqrt(xp.sum(L1 * L1, axis=(-2, -1))))
        return xp.maximum(na / sa, nL / sL)

    def record(a, Lm):
        S = Lm @ _mT(xp, Lm)
        S = 0.5 * (S + _mT(xp, S))
        return (xp.where(alive[..., None], a, nan), xp.where(alive[..., None, None], S, nan))

    means_out, covs_out = [], []
    m_rec, S_rec = record(alpha, L)
    means_out.append(m_rec)
    covs_out.append(S_rec)
    t = float(t_eval[0])
    k1 = rhs((alpha, L))
    # initial step from the relative speed of the state
    speed = float(xp.max(xp.sqrt(xp.sum(k1[1] * k1[1], axis=(-2, -1))) / xp.sqrt(tr0)))
    span = float(t_eval[-1] - t_eval[0]) if t_eval.shape[0] > 1 else 1.0
    h = min(span, 0.01 / speed) if speed > 0 else span
    n_steps = n_rejected = 0
    gave_up = False
    for t_next in t_eval[1:]:
        while t < t_next and not gave_up:
            if not bool(xp.any(alive)):
                t = float(t_next)
                break
            if n_steps + n_rejected >= max_steps:
                gave_up = True
                break
            h = min(h, float(t_next) - t)
            last = h >= float(t_next) - t
            (a_new, L_new), (ea, eL), k7 = dopri5_step(rhs, (alpha, L), k1, h)
            err_b = norms(ea, eL, alpha, a_new, L, L_new)
            bad = xp.logical_not(xp.isfinite(err_b))
            err_b = xp.where(alive & ~bad, err_b, xp.zeros_like(err_b))
            any_bad = bool(xp.any(bad & alive))
            err = float(xp.max(err_b)) if not any_bad else math.inf
            if err <= 1.0:
                t = float(t_next) if last else t + h
                n_steps += 1
                tr = xp.sum(L_new * L_new, axis=(-2, -1))
                blown = alive & ((tr > blowup_threshold * tr0) | ~xp.isfinite(tr))
                if bool(xp.any(blown)):
                    blowup[to_numpy(blown).astype(bool)] = t
                    alive = alive & ~blown
                alpha = xp.where(alive[..., None], a_new, alpha)
                L = xp.where(alive[..., None, None], L_new, L)
                k1 = k7 if not bool(xp.any(blown)) else rhs((alpha, L))
                fac = dopri5_step_factor(err)
                if not last or fac < 1.0:
                    h = h * fac
            else:
                n_rejected += 1
                h = h * dopri5_step_factor(err)
                if h <= 1e-13 * max(1.0, abs(t)):
                    # the solver cannot advance: the sequences that fail are blowing up
                    stuck = alive & (bad | (err_b > 1.0))
                    blowup[to_numpy(stuck).astype(bool)] = t
                    alive = alive & ~stuck
                    k1 = rhs((alpha, L))
                    h = 1e-6 * max(span, 1e-12)
        if gave_up:
            unfinished |= to_numpy(alive).astype(bool)
            alive = xp.zeros_like(alive)
        m_rec, S_rec = record(alpha, L)
        means_out.append(m_rec)
        covs_out.append(S_rec)
    n_b = len(batch)
    means = xp.stack(means_out, axis=n_b)
    covs = xp.stack(covs_out, axis=n_b)

    if gave_up:
        warnings.warn(
            f"gaussian_ode stopped after max_steps={max_steps} steps at t={t:.6g} before "
            f"t_eval[-1]={t_eval[-1]:.6g}; later outputs are NaN (raise max_steps or rtol)",
            ConvergenceWarning,
        )
    n_blown = int(np.sum(np.isfinite(blowup)))
    if n_blown:
        first = float(np.min(blowup))
        warnings.warn(
            f"the covariance blows up in {n_blown} of {max(1, math.prod(batch))} sequence(s) "
            f"(first at t={first:.8g}); outputs after the blow-up time are NaN",
            RuntimeWarning,
        )
    final = to_numpy(covs_out[-1])
    final_np = np.where(np.isfinite(final), final, 0.0)
    eig = np.linalg.eigvalsh(final_np)
    ranks = np.sum(eig > rank_tol, axis=-1)
    ranks = np.where(np.isfinite(blowup) | unfinished, -1, ranks)
    if not batch:
        blowup_out, ranks_out = float(blowup), int(ranks)
    else:
        blowup_out, ranks_out = blowup, ranks
    return GaussianODEResult(
        means, covs, t=t_eval, blowup_time=blowup_out, limit_rank=ranks_out,
        final_eigenvalues=eig, n_steps=n_steps, n_rejected=n_rejected, kind=kind,
    )
