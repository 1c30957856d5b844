"""Time warps of sources: dilation around an onset and delay, by linear interpolation.

A warp with dilation ``rho`` and shift ``tau`` (a fraction of the epoch length ``n``) maps a
signal ``s`` sampled at ``t = 0, ..., n - 1`` to

.. math:: (T s)(t) = s(\\rho (t - t_0) + t_0 - \\tau n),

evaluated by linear interpolation between the two neighbouring samples, with the epoch treated
as periodic (wrap-around padding), as in the MVICAD2 model of Heurtebise et al. (2024). A
signal made of ``n_concat`` concatenated epochs is warped epoch by epoch with the same
parameters. Everything here is written against the array API (``xp``) and uses only gathers
(:func:`take` on flattened arrays) and cumulative sums, so that the forward warp and its adjoint
run on every namespace and device.
"""

from __future__ import annotations

import math

from .._array_api import get_namespace, namespace_name
from .._validation import check_array, check_int

__all__ = [
    "warp_padding",
    "warp_positions",
    "warp",
    "warp_adjoint",
    "warp_slope",
    "WarpPlan",
    "to_epoch_minor",
    "from_epoch_minor",
]


def warp_padding(n, onset, max_dilation, max_shift):
    """Largest displacement ``|u(t) - t|`` (in samples, plus a margin) allowed by the bounds.

    Parameters
    ----------
    n : int
        Epoch length in samples.
    onset : int
        Sample the dilation is centred on.
    max_dilation : float
        Dilations lie in ``[1 / max_dilation, max_dilation]``.
    max_shift : float
        Shifts lie in ``[-max_shift, max_shift]`` (fraction of the epoch).

    Returns
    -------
    pad : int
    """
    span = max(onset, n - 1 - onset)
    return int(math.ceil((max_dilation - 1.0) * span + max_shift * n)) + 2


def warp_positions(rho, tau, n, onset):
    """Warped sampling positions ``u(t) = rho (t - onset) + onset - tau n``.

    Parameters
    ----------
    rho, tau : array, shape (m, k)
        Dilations and shifts (fraction of the epoch).
    n : int
        Epoch length.
    onset : int
        Centre of the dilation (sample index).

    Returns
    -------
    u : array, shape (m, k, n)
    """
    xp = get_namespace(rho, tau)
    t = xp.arange(n, dtype=rho.dtype, device=_device(rho))
    return rho[..., None] * (t - float(onset)) + (float(onset) - tau[..., None] * float(n))


def _check_warp_args(S, rho, tau, n_concat, onset, name="S"):
    """Validate the public arguments of :func:`warp` (and its slope and adjoint).

    Returns ``(S, rho, tau, n_concat, onset, n)`` with ``n`` the epoch length.
    """
    S = check_array(S, name, ndim=3, min_samples=1)
    rho = check_array(rho, "rho", ndim=2)
    tau = check_array(tau, "tau", ndim=2)
    xp = get_namespace(S)
    for arg, a in (("rho", rho), ("tau", tau)):
        if namespace_name(get_namespace(a)) != namespace_name(xp):
            raise TypeError(f"{arg} must come from the same array library as {name}")
        if tuple(a.shape) != tuple(S.shape[:2]):
            raise ValueError(
                f"{arg} must have shape {tuple(S.shape[:2])} (one value per subject and source "
                f"of {name}, shape {tuple(S.shape)}), got {tuple(a.shape)}"
            )
    if not bool(xp.all(rho > 0)):
        raise ValueError("rho must hold positive dilations")
    n_concat = check_int(n_concat, "n_concat", min_value=1)
    if S.shape[-1] % n_concat:
        raise ValueError(
            f"the last axis of {name} ({S.shape[-1]} samples) must be a multiple of "
            f"n_concat={n_concat}"
        )
    n = S.shape[-1] // n_concat
    if n < 2:
        raise ValueError(f"{name} must have epochs of at least 2 samples, got {n}")
    onset = check_int(onset, "onset", min_value=0, max_value=n - 1)
    return S, rho, tau, n_concat, onset, n


def _device(x):
    from .._array_api import device

    return device(x)


def _floor_int(xp, u):
    return xp.astype(xp.floor(u), xp.int64)


def _gather(xp, flat, idx):
    """``flat[idx]`` for a 1-D ``flat`` and an integer index array of any shape."""
    shape = idx.shape
    return xp.reshape(xp.take(flat, xp.reshape(idx, (-1,)), axis=0), shape)


def to_epoch_minor(S, n_concat):
    """Reorder the time axis ``e * n + t`` of (..., n_concat * n) into (..., n, n_concat).

    In this layout the samples of one time point across epochs are contiguous, so that one
    gather index per (subject, source, time) serves every epoch.
    """
    xp = get_namespace(S)
    n = S.shape[-1] // n_concat
    lead = tuple(S.shape[:-1])
    S4 = xp.reshape(S, lead + (n_concat, n))
    perm = tuple(range(len(lead))) + (len(lead) + 1, len(lead))
    return xp.permute_dims(S4, perm)


def from_epoch_minor(S4):
    """Inverse of :func:`to_epoch_minor`: (..., n, n_concat) -> (..., n_concat * n)."""
    xp = get_namespace(S4)
    lead = tuple(S4.shape[:-2])
    n, n_concat = S4.shape[-2], S4.shape[-1]
    perm = tuple(range(len(lead))) + (len(lead) + 1, len(lead))
    return xp.reshape(xp.permute_dims(S4, perm), lead + (n_concat * n,))


def warp(S, rho, tau, *, n_concat=1, onset=0):
    """Warp every source of every subject: ``Y[i, j] = T_ij S[i, j]``.

    Parameters
    ----------
    S : array, shape (m, k, n_concat * n)
        Signals, ``n_concat`` epochs of ``n`` samples concatenated along the last axis.
    rho : array, shape (m, k)
        Dilations (> 0).
    tau : array, shape (m, k)
        Shifts, as a fraction of the epoch length ``n``.
    n_concat : int, default=1
        Number of concatenated epochs.
    onset : int, default=0
        Sample index (within an epoch) the dilation is centred on.

    Returns
    -------
    Y : array, shape (m, k, n_concat * n)
        ``Y[i, j, e * n + t] = S[i, j, e * n + u]`` at ``u = rho (t - onset) + onset - tau n``,
        linearly interpolated, indices taken modulo ``n`` within the epoch.

    Raises
    ------
    ValueError
        If ``rho`` or ``tau`` is not of shape (m, k) like the first two axes of ``S``, a
        dilation is not positive, a value is not finite, the last axis of ``S`` is not a
        multiple of ``n_concat``, ``onset`` is outside the epoch, or the warps move samples by
        more than one epoch.
    """
    S, rho, tau, n_concat, onset, n = _check_warp_args(S, rho, tau, n_concat, onset)
    plan = WarpPlan(rho, tau, n, onset=onset)
    return from_epoch_minor(plan.apply(to_epoch_minor(S, n_concat))[0])


def warp_slope(S, rho, tau, *, n_concat=1, onset=0):
    """Local slope ``S[i1] - S[i0]`` of the interpolant at every warped position.

    This is the derivative of :func:`warp` with respect to the position ``u``; multiplied by
    ``t - onset`` (resp. ``-n``) it gives the derivative with respect to ``rho`` (resp. ``tau``).

    Parameters
    ----------
    S, rho, tau, n_concat, onset
        As in :func:`warp`.

    Returns
    -------
    slope : array, shape (m, k, n_concat * n)
    """
    S, rho, tau, n_concat, onset, n = _check_warp_args(S, rho, tau, n_concat, onset)
    plan = WarpPlan(rho, tau, n, onset=onset)
    return from_epoch_minor(plan.apply(to_epoch_minor(S, n_concat))[1])


class WarpPlan:
    """Gather indices and weights of one set of warps, shared by the forward warp, its slope and
    its adjoint (computed once per loss evaluation).

    Signals are in the epoch-minor layout of :func:`to_epoch_minor`, shape (m, k, n, E): the
    ``E`` epochs share the warp, so one gather row per (subject, source, time) serves them all.

    Parameters
    ----------
    rho, tau : array, shape (m, k)
        Dilations (> 0) and shifts (fraction of the epoch).
    n : int
        Epoch length.
    onset : int, default=0
    pad : int, optional
        An upper bound on ``|u - t|`` in samples (computed from ``rho`` and ``tau`` if omitted).
    """

    def __init__(self, rho, tau, n, *, onset=0, pad=None):
        xp = get_namespace(rho, tau)
        self.xp = xp
        m, k = rho.shape
        self.m, self.k, self.n = m, k, n
        dev = _device(rho)
        u = warp_positions(rho, tau, n, onset)
        i0 = _floor_int(xp, u)
        self.frac = (u - xp.astype(i0, u.dtype))[..., None]  # (m, k, n, 1)
        row = xp.reshape(xp.arange(m * k, dtype=xp.int64, device=dev) * n, (m, k, 1))
        j0 = xp.remainder(i0, n)
        j1 = j0 + 1
        j1 = j1 - n * xp.astype(j1 == n, xp.int64)
        self.idx0 = xp.reshape(row + j0, (-1,))
        self.idx1 = xp.reshape(row + j1, (-1,))
        if pad is None:
            pad = max(0, -int(xp.min(i0)), int(xp.max(i0)) + 2 - n) + 1
        pad = int(pad)
        if pad > n:
            raise ValueError(f"warps move samples by more than one epoch (pad={pad} > n={n})")
        self.pad = pad
        self._lo_args = (rho, tau, onset, i0, row)
        self._lo_idx = None

    @property
    def lo_idx(self):
        """Cumulative-sum gather rows of the generic adjoint (computed on first use)."""
        if self._lo_idx is None:
            self._lo_idx = self._make_lo_idx(*self._lo_args)
        return self._lo_idx

    def _make_lo_idx(self, rho, tau, onset, i0, row):
        xp, m, k, n, pad = self.xp, self.m, self.k, self.n, self.pad
        dev = _device(rho)
        u_dtype = self.frac.dtype
        # lo[s] = #{t : u(t) < s} for s = -pad, ..., n + pad: closed form, then an exact
        # fix-up so that it agrees with floor(u) despite rounding (off by at most one)
        s_grid = xp.arange(-pad, n + pad + 1, dtype=u_dtype, device=dev)
        r = rho[..., None]
        b = float(onset) - r * float(onset) - tau[..., None] * float(n)
        lo = xp.clip(xp.astype(xp.ceil((s_grid - b) / r), xp.int64), 0, n)
        s_int = xp.astype(s_grid, xp.int64)
        flat_i0 = xp.reshape(i0, (-1,))
        prev = xp.clip(lo - 1, 0, n - 1)
        too_far = (lo > 0) & (_gather(xp, flat_i0, row + prev) >= s_int)
        lo = lo - xp.astype(too_far, xp.int64)
        cur = xp.clip(lo, 0, n - 1)
        too_short = (lo < n) & (_gather(xp, flat_i0, row + cur) < s_int)
        lo = lo + xp.astype(too_short, xp.int64)
        crow = xp.reshape(xp.arange(m * k, dtype=xp.int64, device=dev) * (n + 1), (m, k, 1))
        return xp.reshape(crow + lo, (-1,))

    def gather(self, S4):
        """Neighbouring samples ``(s0, s1)`` of every warped position, shape (m, k, n, E)."""
        xp = self.xp
        E = S4.shape[-1]
        flat = xp.reshape(S4, (-1, E))
        shape = (self.m, self.k, self.n, E)
        s0 = xp.reshape(xp.take(flat, self.idx0, axis=0), shape)
        s1 = xp.reshape(xp.take(flat, self.idx1, axis=0), shape)
        return s0, s1

    def apply(self, S4):
        """Warped signals and local slopes, both (m, k, n, E), for ``S4`` of shape (m, k, n, E)."""
        s0, s1 = self.gather(S4)
        slope = s1 - s0
        return s0 + self.frac * slope, slope

    def adjoint(self, G4):
        """``T^T G`` for ``G4`` of shape (m, k, n, E) (see :func:`warp_adjoint`)."""
        xp = self.xp
        m, k, n, pad = self.m, self.k, self.n, self.pad
        E = G4.shape[-1]
        scattered = _interp_adjoint(xp, self.idx0, self.idx1, self.frac, G4)
        if scattered is not None:
            return xp.reshape(scattered, (m, k, n, E))
        dev = _device(G4)
        zeros = xp.zeros((m, k, 1, E), dtype=G4.dtype, device=dev)
        Gf = G4 * self.frac
        c0 = xp.concat([zeros, xp.cumulative_sum(G4 - Gf, axis=2)], axis=2)
        c1 = xp.concat([zeros, xp.cumulative_sum(Gf, axis=2)], axis=2)
        ext_shape = (m, k, n + 2 * pad + 1, E)
        g0 = xp.reshape(xp.take(xp.reshape(c0, (-1, E)), self.lo_idx, axis=0), ext_shape)
        g1 = xp.reshape(xp.take(xp.reshape(c1, (-1, E)), self.lo_idx, axis=0), ext_shape)
        a0 = g0[:, :, 1:, :] - g0[:, :, :-1, :]  # weight landing on s (s = -pad .. n + pad - 1)
        a1 = g1[:, :, 1:, :] - g1[:, :, :-1, :]  # weight landing on s + 1
        ext = a0 + xp.concat([zeros, a1[:, :, :-1, :]], axis=2)
        # ext[:, :, q] is the weight on sample q - pad: fold the padding back (period n)
        core = ext[:, :, pad:pad + n, :]
        zpad = xp.zeros((m, k, n - pad, E), dtype=G4.dtype, device=dev)
        return (core + xp.concat([zpad, ext[:, :, :pad, :]], axis=2)
                + xp.concat([ext[:, :, pad + n:, :], zpad], axis=2))


def _interp_adjoint(xp, idx0, idx1, frac, G4):
    """Adjoint of the interpolation gather, ``out[idx0] += (1 - f) G``, ``out[idx1] += f G``.

    Scatter-add is not in the array API standard: this adapter uses a SciPy sparse matrix
    (two entries per row) for NumPy and ``torch.Tensor.index_add_`` for torch, both several
    times faster than the cumulative-sum form of :meth:`WarpPlan.adjoint`, which remains the
    path of every other namespace.

    Parameters
    ----------
    idx0, idx1 : int arrays, shape (R,)
        Gather rows of the two neighbouring samples.
    frac : array, shape (..., 1) with ``R`` rows in all
        Interpolation weights of ``idx1``.
    G4 : array, shape (..., E) with ``R`` rows in all

    Returns
    -------
    out : array, shape (R, E), or None for other namespaces
    """
    name = namespace_name(xp)
    E = G4.shape[-1]
    if name == "numpy":
        import numpy as np
        import scipy.sparse as sp

        f = np.reshape(np.asarray(frac), (-1,))
        R = f.shape[0]
        data = np.empty(2 * R, dtype=f.dtype)
        data[0::2] = 1.0 - f
        data[1::2] = f
        cols = np.empty(2 * R, dtype=np.int64)
        cols[0::2] = np.asarray(idx0)
        cols[1::2] = np.asarray(idx1)
        M = sp.csr_matrix((data, cols, np.arange(0, 2 * R + 1, 2)), shape=(R, R))
        return xp.asarray(M.T @ np.reshape(np.asarray(G4), (R, E)))
    if name == "torch":
        Gf = G4 * frac
        out = xp.zeros((idx0.shape[0], E), dtype=G4.dtype, device=_device(G4))
        out.index_add_(0, idx0, xp.reshape(G4 - Gf, (-1, E)))
        out.index_add_(0, idx1, xp.reshape(Gf, (-1, E)))
        return out
    return None


def warp_adjoint(G, rho, tau, *, n_concat=1, onset=0, pad=None):
    """Adjoint (transpose) of :func:`warp` applied to ``G``.

    The adjoint of linear interpolation scatters ``G[t] (1 - f_t)`` onto sample ``floor(u_t)``
    and ``G[t] f_t`` onto the next one. Because ``u`` is increasing in ``t`` (``rho > 0``), the
    samples landing on one grid point form a contiguous range of ``t`` whose ends are known in
    closed form; the scatter is then two differences of cumulative sums, with no scatter-add
    (not part of the array API standard).

    Parameters
    ----------
    G : array, shape (m, k, n_concat * n)
        Cotangent in warped time.
    rho, tau : array, shape (m, k)
        Dilations (> 0) and shifts (fraction of the epoch).
    n_concat : int, default=1
    onset : int, default=0
    pad : int, optional
        An upper bound on ``|u - t|`` in samples (computed from ``rho`` and ``tau`` if omitted).

    Returns
    -------
    A : array, shape (m, k, n_concat * n)
        ``A = T^T G``, so that ``sum(G * warp(S)) == sum(A * S)`` for every ``S``.
    """
    G, rho, tau, n_concat, onset, n = _check_warp_args(G, rho, tau, n_concat, onset, "G")
    plan = WarpPlan(rho, tau, n, onset=onset, pad=pad)
    return from_epoch_minor(plan.adjoint(to_epoch_minor(G, n_concat)))
