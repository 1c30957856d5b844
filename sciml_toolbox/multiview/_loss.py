"""Negative log-likelihood of multi-view ICA with per-subject, per-source time warps.

For whitened reduced data ``Z_i`` (k x T), unmixing matrices ``W_i`` and unwarping parameters
``(r_ij, d_ij)`` the loss is (Richard et al., 2020, eq. 5; Heurtebise et al., 2024)

.. math::

    L = \\frac{1}{T} \\sum_{j,t} \\log\\cosh \\bar Y_j(t)
        + \\frac{1}{2 \\sigma^2 T} \\sum_{i,j,t} (Y_{ij}(t) - \\bar Y_j(t))^2
        - \\sum_i \\log |\\det W_i| + \\lambda\\, \\mathrm{pen},

with ``Y_ij = U_ij (W_i Z_i)_j`` the ``j``-th source of subject ``i`` brought back to the shared
time axis by the warp ``U_ij`` (:func:`~sciml_toolbox.multiview._warp.warp` with dilation
``r_ij`` and shift ``d_ij``), ``Ybar = mean_i Y_i`` and ``sigma^2`` the noise variance. The
penalty pins the mean warp (warps are identifiable only up to a common warp): with the forward
model parameters ``rho = 1 / r`` and ``tau = -d / r``,

.. math::

    \\mathrm{pen} = \\sum_j \\Big(\\frac{\\mathrm{mean}_i \\rho_{ij} - 1}{\\rho_{\\max} - 1}\\Big)^2
        + \\Big(\\frac{\\mathrm{mean}_i \\tau_{ij}}{\\tau_{\\max}}\\Big)^2.

The gradient is analytic: ``dL/dY`` is explicit, the adjoint of the warp carries it back to the
subject's time axis (``dL/dW_i = (U^T dL/dY)_i Z_i^T - W_i^{-T}``), and the derivative of
linear interpolation with respect to the position is the local slope of the source, times
``t - onset`` for the dilation and ``-n`` for the shift.
"""

from __future__ import annotations

from .._array_api import get_namespace, inv, slogdet
from ._warp import WarpPlan, to_epoch_minor

__all__ = ["logcosh", "joint_loss_grad", "ica_loss_grad"]


def logcosh(x):
    """``log(cosh(x))`` without overflow: ``|x| + log1p(exp(-2|x|)) - log(2)``."""
    xp = get_namespace(x)
    a = xp.abs(x)
    return a + xp.log1p(xp.exp(-2.0 * a)) - 0.6931471805599453


def _penalty(rho_u, tau_u, max_dilation, max_shift, use_rho, use_tau):
    """Mean-warp penalty and its gradient with respect to the unwarping parameters."""
    xp = get_namespace(rho_u, tau_u)
    m = rho_u.shape[0]
    rho_f = 1.0 / rho_u
    tau_f = -tau_u / rho_u
    value = 0.0
    g_rf = xp.zeros_like(rho_u)
    g_tf = xp.zeros_like(tau_u)
    if use_rho:
        dr = max(max_dilation - 1.0, 1e-3)
        mr = xp.mean(rho_f, axis=0) - 1.0
        value = value + float(xp.sum((mr / dr) ** 2))
        g_rf = g_rf + 2.0 * mr / (dr**2 * m)
    if use_tau:
        dt = max(max_shift, 1e-4)
        mt = xp.mean(tau_f, axis=0)
        value = value + float(xp.sum((mt / dt) ** 2))
        g_tf = g_tf + 2.0 * mt / (dt**2 * m)
    # chain rule through rho_f = 1 / r, tau_f = -d / r
    g_r = -g_rf / rho_u**2 + g_tf * tau_u / rho_u**2
    g_d = -g_tf / rho_u
    return value, g_r, g_d


def joint_loss_grad(W, rho, tau, Z, *, noise=1.0, n_concat=1, onset=0, warps="both",
                    penalty=1.0, max_dilation=1.0, max_shift=0.0, pad=None, grad=True,
                    epoch_minor=False, smooth=1):
    """Multi-view ICA loss with warps and its analytic gradient.

    Parameters
    ----------
    W : array, shape (m, k, k)
        Unmixing matrices in the reduced (whitened) space.
    rho, tau : array, shape (m, k)
        Unwarping dilations and shifts (fraction of an epoch) applied to each subject's sources.
    Z : array, shape (m, k, n_concat * n)
        Reduced data.
    noise : float, default=1.0
        Noise variance ``sigma^2`` of the model.
    n_concat : int, default=1
        Number of concatenated epochs.
    onset : int, default=0
        Sample the dilation is centred on.
    warps : {'none', 'shift', 'both'}, default='both'
        Which warp parameters are active (MVICA, MVICAD, MVICAD2).
    penalty : float, default=1.0
        Weight of the mean-warp penalty.
    max_dilation, max_shift : float
        Normalisation of the penalty.
    pad : int, optional
        Bound on the warp displacement (see :func:`warp_adjoint`).
    grad : bool, default=True
        Also return the gradient.
    smooth : int, default=1
        Length ``L`` of a moving average ``(Y[t] + ... + Y[t + L - 1]) / L`` (circular within
        each epoch) applied to the unwarped sources before both terms of the loss, like the
        smoothing filter of the authors' MVICAD2 code; it damps the sample noise that the
        interpolation turns into roughness of the loss in the warp parameters. Only with warps.
    epoch_minor : bool, default=False
        ``Z`` is already in the layout of :func:`~._warp.to_epoch_minor` (flattened back to
        (m, k, n * n_concat)); the solver reorders the data once and passes ``True``.

    Returns
    -------
    loss : float
    g_W : array, shape (m, k, k)
        Only with ``grad=True``.
    g_rho, g_tau : array, shape (m, k)
        Only with ``grad=True`` (zeros for inactive warps).
    """
    xp = get_namespace(W, Z)
    m, k, total = Z.shape
    n = total // n_concat
    sign, logdet = slogdet(W)
    if bool(xp.any(sign == 0)) or not bool(xp.all(xp.isfinite(logdet))):
        return (float("inf"), None, None, None) if grad else float("inf")
    warped = warps != "none"
    if warped and not epoch_minor:
        Z = xp.reshape(to_epoch_minor(Z, n_concat), (m, k, total))
    S = W @ Z
    if warped:
        plan = WarpPlan(rho, tau, n, onset=onset, pad=pad)
        Y, slope = plan.apply(xp.reshape(S, (m, k, n, n_concat)))
    else:
        Y = S
    smoothing = warped and smooth > 1
    if smoothing:
        Y = sum(xp.roll(Y, -lag, axis=2) for lag in range(smooth)) / float(smooth)
    Ybar = xp.mean(Y, axis=0)
    R = Y - Ybar
    loss = (float(xp.sum(logcosh(Ybar))) / total
            + float(xp.sum(R * R)) / (2.0 * noise * total)
            - float(xp.sum(logdet)))
    pen = (0.0, None, None)
    if warped and penalty > 0:
        pen = _penalty(rho, tau, max_dilation, max_shift, warps == "both", True)
        loss += penalty * pen[0]
    if not grad:
        return loss
    G = (xp.tanh(Ybar) / m + R / noise) / total
    if smoothing:
        G = sum(xp.roll(G, lag, axis=2) for lag in range(smooth)) / float(smooth)
    g_rho = xp.zeros_like(rho)
    g_tau = xp.zeros_like(tau)
    if warped:
        A = xp.reshape(plan.adjoint(G), (m, k, total))
        gs_t = xp.sum(G * slope, axis=-1)  # (m, k, n)
        t = xp.arange(n, dtype=Z.dtype, device=_dev(Z)) - float(onset)
        g_tau = -float(n) * xp.sum(gs_t, axis=-1)
        if warps == "both":
            g_rho = xp.sum(gs_t * t, axis=-1)
        if penalty > 0:
            g_tau = g_tau + penalty * pen[2]
            if warps == "both":
                g_rho = g_rho + penalty * pen[1]
    else:
        A = G
    g_W = A @ xp.matrix_transpose(Z) - xp.matrix_transpose(inv(W))
    return loss, g_W, g_rho, g_tau


def ica_loss_grad(W, Z, grad=True):
    """Independent single-subject ICA losses (logcosh density), summed over subjects.

    Parameters
    ----------
    W : array, shape (m, k, k)
    Z : array, shape (m, k, T)
        Whitened data of each subject.
    grad : bool, default=True

    Returns
    -------
    loss : float
        ``sum_i [mean_t sum_j log cosh (W_i Z_i)_j(t) - log |det W_i|]``.
    g_W : array, shape (m, k, k)
        Only with ``grad=True``.
    """
    xp = get_namespace(W, Z)
    total = Z.shape[-1]
    sign, logdet = slogdet(W)
    if bool(xp.any(sign == 0)) or not bool(xp.all(xp.isfinite(logdet))):
        return (float("inf"), None) if grad else float("inf")
    S = W @ Z
    loss = float(xp.sum(logcosh(S))) / total - float(xp.sum(logdet))
    if not grad:
        return loss
    g_W = (xp.tanh(S) / total) @ xp.matrix_transpose(Z) - xp.matrix_transpose(inv(W))
    return loss, g_W


def _dev(x):
    from .._array_api import device

    return device(x)
