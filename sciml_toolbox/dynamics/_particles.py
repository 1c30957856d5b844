"""Time integration of the attention particle system."""

from __future__ import annotations

import math

from .._array_api import get_namespace
from .._numerics import rk4_step
from .._validation import check_array, check_option, check_positive
from ._attention import _check_mask, _velocity, _velocity_parts
from ._checks import check_block_size, check_heads, check_t_eval

__all__ = ["simulate_particles"]


def simulate_particles(X0, Q, K, V, t_eval, kind="softmax", *, method="rk4", dt=None, W=None,
                       mask=None, epsilon=1.0, n_iter=21, bias=0.0, normalize=True,
                       sphere=False, block_size=None):
    r"""Integrate the tokens of a Transformer as an interacting particle system.

    Solves :math:`\dot x_i = \sum_j \mathrm{softmax}_j(\langle Qx_i, Kx_j\rangle) V x_j`
    (or the other attention kinds of :func:`attention_velocity`) with fixed steps, the depth
    playing the role of time (Sander et al., 2022; Geshkovski et al., 2023).

    Parameters
    ----------
    X0 : array, shape (n, d) or (B, n, d)
        Initial tokens (a batch of B independent sequences shares Q, K, V).
    Q, K, V : array or list of per-head arrays
        As in :func:`attention_velocity`.
    t_eval : array_like, shape (n_times,)
        Strictly increasing times at which to return the particles; ``X0`` is the state at
        ``t_eval[0]``.
    kind : {'softmax', 'l2', 'sinkhorn', 'sigmoid', 'masked'}, default='softmax'
    method : {'rk4', 'euler'}, default='rk4'
        Classical fourth-order Runge-Kutta or explicit Euler.
    dt : float, optional
        Largest step. Each interval of ``t_eval`` is split into ``ceil(gap / dt)`` equal steps,
        so the times are hit exactly. Default: 0.05.
    W, mask, epsilon, n_iter, bias, normalize, block_size
        As in :func:`attention_velocity`. Memory stays O(n d) plus one block of scores.
    sphere : bool, default=False
        Particles on the unit sphere: ``X0`` rows are normalised, velocities are projected on
        the tangent space and each step is followed by the retraction
        :math:`x \mapsto x/\|x\|` (Geshkovski et al., 2023).

    Returns
    -------
    trajectory : array, shape (n_times, n, d) or (B, n_times, n, d)
        In the namespace, device and dtype of ``X0``.

    References
    ----------
    Geshkovski, Letrouit, Polyanskiy, Rigollet. The emergence of clusters in self-attention
    dynamics. NeurIPS 2023.
    """
    X0 = check_array(X0, "X0", ndim=(2, 3))
    xp = get_namespace(X0)
    kind, epsilon, n_iter, bias = _velocity_parts(kind, epsilon=epsilon, n_iter=n_iter,
                                                  bias=bias, normalize=normalize)
    heads = check_heads(Q, K, V, W, X0.shape[-1], X0)
    mask = _check_mask(mask, kind, X0.shape[-2], X0)
    block_size = check_block_size(block_size)
    method = check_option(method, "method", ("rk4", "euler"))
    dt = 0.05 if dt is None else check_positive(dt, "dt")
    t_eval = check_t_eval(t_eval)
    if not isinstance(sphere, bool):
        raise TypeError(f"sphere must be a bool, got {sphere!r}")

    def vel(X):
        return _velocity(X, heads, kind, mask=mask, epsilon=epsilon, n_iter=n_iter, bias=bias,
                         normalize=normalize, sphere=sphere, block_size=block_size)

    def retract(X):
        if not sphere:
            return X
        return X / xp.sqrt(xp.sum(X * X, axis=-1, keepdims=True))

    if sphere and not bool(xp.all(xp.sum(X0 * X0, axis=-1) > 0)):
        raise ValueError("X0 must have non-zero rows when sphere=True")
    X = retract(X0 * 1.0)
    out = [X]
    for t0, t1 in zip(t_eval[:-1], t_eval[1:], strict=True):
        n_steps = max(1, math.ceil((t1 - t0) / dt - 1e-9))
        h = float(t1 - t0) / n_steps
        for _ in range(n_steps):
            if method == "euler":
                X = X + h * vel(X)
            else:
                X = rk4_step(vel, X, h)
            X = retract(X)
        out.append(X)
    return xp.stack(out, axis=X0.ndim - 2)
