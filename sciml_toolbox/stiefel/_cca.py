r"""Stochastic canonical correlation analysis by landing (no whitening, no matrix inverse)."""

from __future__ import annotations

import time
import warnings

from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from .._array_api import cholesky, get_namespace, inv, make_generator, svd
from .._validation import (
    check_array,
    check_consistent_length,
    check_int,
    check_n_components,
    check_positive,
)
from ._landing import landing_direction, safe_step_size
from ._stochastic import epoch_batches, power_lambda_max, whiten_init

__all__ = ["LandingCCA"]


def _check_common_params(est):
    if est.batch_size is not None:
        check_int(est.batch_size, "batch_size", min_value=1)
    check_int(est.max_epochs, "max_epochs", min_value=1)
    if est.learning_rate != "auto":
        check_positive(est.learning_rate, "learning_rate")
    if est.omega != "auto":
        check_positive(est.omega, "omega", strict=False)
    if est.epsilon is not None:
        check_positive(est.epsilon, "epsilon")
    check_positive(est.tol, "tol", strict=False)
    check_positive(est.lr_decay, "lr_decay")
    if est.lr_decay_epochs is not None and not (
        isinstance(est.lr_decay_epochs, str) and est.lr_decay_epochs == "auto"
    ):
        if isinstance(est.lr_decay_epochs, str):
            raise ValueError(
                f"lr_decay_epochs must be 'auto', None or a sequence of int, got "
                f"{est.lr_decay_epochs!r}"
            )
        for e in est.lr_decay_epochs:
            check_int(e, "lr_decay_epochs", min_value=1)


def _decay_epochs(est, no_auto=False):
    """The resolved decay epochs: 'auto' is ``max_epochs // 2`` in minibatch ``fit`` (the
    protocol of Vary et al. 2024: x0.1 at epoch 4 of 8) and no decay when ``no_auto``
    (``partial_fit``, full-batch ``fit``)."""
    e = est.lr_decay_epochs
    if isinstance(e, str):
        return () if no_auto or est.max_epochs < 2 else (est.max_epochs // 2,)
    return () if e is None else tuple(e)


def _lr_factor(est, epoch, no_auto=False):
    return est.lr_decay ** sum(1 for e in _decay_epochs(est, no_auto) if epoch >= e)


def landing_block_step(
    W, G, Xb, reg, BW, *, learning_rate, omega, epsilon, BW2=None, G2=None
):
    """One landing step for ``W^T (Xb^T Xb / r + reg I) W = I``; returns (W_new, ||D||^2).

    With ``BW2`` (the estimate from the second half of the batch, ``BW`` and ``G`` from the
    first, ``G2`` from the second) the direction uses the two independent estimates (see
    ``landing_direction(BX2=..., G2=...)``); ``G`` is then the first half's gradient only.
    """
    xp = get_namespace(W)
    D = landing_direction(W, G, BW, omega=omega, BX2=BW2, G2=G2)
    dn = xp.sum(D * D)
    if epsilon is None:
        return W - learning_rate * D, dn
    r = Xb.shape[0]
    XD = Xb @ D
    q = xp.sum(XD * XD) / r + reg * dn
    BWm = BW if BW2 is None else 0.5 * (BW + BW2)
    eta = xp.clip(safe_step_size(W, BWm, D, q, epsilon=epsilon), max=learning_rate)
    return W - eta * D, dn


def split_products(Xb, cols, split):
    """``(P1, P2, two)``: ``Xb.T @ cols / r`` on the two halves of the batch when ``split``
    (``two=True``; an odd last row is dropped), else the full-batch product twice."""
    r = Xb.shape[0]
    if not split or r < 4:
        P = Xb.T @ cols / r
        return P, P, False
    h = r // 2
    P1 = Xb[:h, ...].T @ cols[:h, ...] / h
    P2 = Xb[h : 2 * h, ...].T @ cols[h : 2 * h, ...] / h
    return P1, P2, True


class LandingCCA(BaseEstimator):
    r"""Canonical correlation analysis by stochastic landing on two generalized Stiefel manifolds.

    Maximises :math:`\mathrm{tr}(W_x^\top S_{xy} W_y)` subject to
    :math:`W_x^\top (S_{xx} + \rho I) W_x = I_p` and :math:`W_y^\top (S_{yy} + \rho I) W_y = I_p`
    [1]_, where the covariances are only seen through minibatches: each step forms
    :math:`X_b^\top (X_b W_x) / r` and never a (d, d) matrix, an inverse or a whitening transform.
    Each step costs :math:`O(r (d_x + d_y) p)`.

    Parameters
    ----------
    n_components : int, default=2
        Number p of canonical pairs (at most ``min(d_x, d_y)``).
    batch_size : int or None, default=512
        Minibatch size r; ``None`` (or ``>= n_samples``) runs deterministic full-batch landing.
    learning_rate : float or 'auto', default='auto'
        Step size :math:`\eta`. ``'auto'`` uses :math:`2/\hat\lambda_x^2` and
        :math:`2/\hat\lambda_y^2` for the two blocks, with :math:`\hat\lambda` the largest
        eigenvalue of the regularised covariance (power iteration on at most 4096 samples): the
        landing field scales as the fourth power of the data scale.
    omega : float or 'auto', default='auto'
        Weight of the normal direction; ``'auto'`` is :math:`0.5/(\eta\hat\lambda)` per block.
    max_epochs : int, default=8
        Passes over the data in :meth:`fit`.
    reg : float, default=1e-3
        Ridge :math:`\rho` added to both covariances (regularised CCA).
    epsilon : float or None, default=0.5
        Safe-region radius (see :func:`~sciml_toolbox.stiefel.safe_step_size`; computed with the
        minibatch covariance); ``None`` disables the safe step.
    lr_decay_epochs : 'auto', sequence of int or None, default='auto'
        Epochs at which the step is multiplied by ``lr_decay``. In :meth:`partial_fit` they
        count calls (minibatches), not epochs. ``'auto'``: ``(max_epochs // 2,)`` in
        minibatch :meth:`fit` (the protocol of [1]_ divides the step by 10 at epoch 4 of 8),
        no decay in full-batch :meth:`fit` and in :meth:`partial_fit`; ``None``: constant
        step. With a constant step the iterate fluctuates around the manifold at a distance
        that grows with the step; a decreasing step is what drives the constraint violation
        to 0 (with ``split_batch=True``).
    lr_decay : float, default=0.1
    split_batch : bool, default=True
        Minibatch mode: estimate the gradient and :math:`B_\zeta W` separately on the two
        halves of each batch and combine them as in ``landing_direction(BX2=..., G2=...)``, so
        that both the normal direction and the constraint drift of the tangent part are
        unbiased. One batch used for every factor leaves an :math:`O(1/r)` bias: a drift off
        the manifold that the normal term balances at a violation that no step-size decay
        removes (measured on 20k x (20 + 20), p = 3, r = 200, step x0.3 every 2 epochs from
        epoch 4, 16 epochs, 2 data sets x 5 batch orders: full-data violation 0.062-0.071
        without the split, 0.006-0.011 with it; ``benchmarks/bench_stiefel.py --only
        split``). Same cost.
    tol : float, default=1e-8
        Full-batch mode only: stop when the squared norm of the landing direction falls below
        ``tol`` times its initial value.
    random_state : int, numpy Generator or None
        Seeds the initial weights and the minibatch order.
    verbose : bool, default=False
        Print the objective and violation after each epoch.

    Attributes
    ----------
    x_weights_ : array, shape (d_x, p)
        Canonical weights of X, :math:`S_{xx}`-orthonormal, ordered by decreasing correlation
        (unlike scikit-learn's unit-norm NIPALS weights, these are the closed-form CCA
        directions; ``transform`` uses them directly).
    y_weights_ : array, shape (d_y, p)
        Canonical weights of Y.
    canonical_correlations_ : array, shape (p,)
        Regularised canonical correlations, decreasing.
    constraint_violation_ : float
        :math:`\|W_x^\top S_{xx} W_x - I\|_F + \|W_y^\top S_{yy} W_y - I\|_F` of the landing
        iterate on the data of the last :meth:`fit`, before the final p x p normalisation of
        ``x_weights_`` / ``y_weights_``. After :meth:`partial_fit` the covariances are the
        moving average of the batch statistics (itself noisy, about
        :math:`p/\sqrt{10 r}` for batches of r rows).
    history_ : dict
        Per epoch (per call of :meth:`partial_fit`, from the moving-average statistics):
        ``objective`` (:math:`-\mathrm{tr}(W_x^\top S_{xy}W_y)`), ``constraint_violation``,
        ``time``, ``epoch``.
    x_mean_, y_mean_ : array, shape (d_x,), (d_y,)
    n_iter_ : int
        Number of landing steps taken.
    n_features_in_ : int

    References
    ----------
    .. [1] S. Vary, P. Ablin, B. Gao, P.-A. Absil, "Optimization without retraction on the
       random generalized Stiefel manifold", ICML 2024, Section 5.

    Examples
    --------
    >>> import numpy as np
    >>> from sciml_toolbox.stiefel import LandingCCA
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((2000, 2))
    >>> X = np.c_[Z, rng.standard_normal((2000, 3))]
    >>> Y = np.c_[Z + 0.3 * rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2))]
    >>> cca = LandingCCA(n_components=2, batch_size=200, max_epochs=20, random_state=0)
    >>> cca = cca.fit(X, Y)
    >>> bool(cca.canonical_correlations_[0] > 0.9)
    True
    """

    def __init__(
        self,
        n_components=2,
        *,
        batch_size=512,
        learning_rate="auto",
        omega="auto",
        max_epochs=8,
        reg=1e-3,
        epsilon=0.5,
        lr_decay_epochs="auto",
        lr_decay=0.1,
        split_batch=True,
        tol=1e-8,
        random_state=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.omega = omega
        self.max_epochs = max_epochs
        self.reg = reg
        self.epsilon = epsilon
        self.lr_decay_epochs = lr_decay_epochs
        self.lr_decay = lr_decay
        self.split_batch = split_batch
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation / set-up
    def _check_xy(self, X, Y, reset):
        X = check_array(X, "X", ndim=2)
        Y = check_array(Y, "Y", ndim=2)
        get_namespace(X, Y)
        check_consistent_length(X, Y, names=("X", "Y"))
        if X.shape[0] < 2:
            raise ValueError(f"X needs at least 2 samples, got {X.shape[0]}")
        if not reset:
            if X.shape[1] != self.x_mean_.shape[0]:
                raise ValueError(
                    f"X has {X.shape[1]} features, but LandingCCA was fitted with "
                    f"{self.x_mean_.shape[0]}"
                )
            if Y.shape[1] != self.y_mean_.shape[0]:
                raise ValueError(
                    f"Y has {Y.shape[1]} features, but LandingCCA was fitted with "
                    f"{self.y_mean_.shape[0]}"
                )
        return X, Y

    def _init_state(self, Xc, Yc):
        xp = get_namespace(Xc)
        _check_common_params(self)
        check_positive(self.reg, "reg", strict=False)
        dx, dy = Xc.shape[1], Yc.shape[1]
        p = check_n_components(self.n_components, min(dx, dy), allow_none=False)
        self._rng = make_generator(self.random_state, xp, Xc.device)
        sub = min(Xc.shape[0], 4096)
        lam_x = power_lambda_max(Xc[:sub, ...]) + self.reg
        lam_y = power_lambda_max(Yc[:sub, ...]) + self.reg
        if lam_x <= 0 or lam_y <= 0:
            raise ValueError("X and Y must not be constant (zero covariance): nothing to correlate")
        if self.learning_rate == "auto":
            self._lr = (2.0 / lam_x**2, 2.0 / lam_y**2)
        else:
            self._lr = (float(self.learning_rate),) * 2
        if self.omega == "auto":
            self._omega = (0.5 / (self._lr[0] * lam_x), 0.5 / (self._lr[1] * lam_y))
        else:
            self._omega = (float(self.omega),) * 2
        Wx = self._rng.normal((dx, p), dtype=Xc.dtype)
        Wy = self._rng.normal((dy, p), dtype=Xc.dtype)
        r = Xc.shape[0] if self.batch_size is None else min(self.batch_size, Xc.shape[0])
        Xb, Yb = Xc[:r, ...], Yc[:r, ...]
        self._Wx = whiten_init(Wx, Xb.T @ (Xb @ Wx) / r + self.reg * Wx)
        self._Wy = whiten_init(Wy, Yb.T @ (Yb @ Wy) / r + self.reg * Wy)
        self.n_iter_ = 0
        self.history_ = {"objective": [], "constraint_violation": [], "time": [], "epoch": []}
        self.n_features_in_ = dx
        self._deterministic = False

    # ------------------------------------------------------------------ landing step
    def _step(self, Xb, Yb, factor):
        xp = get_namespace(Xb)
        XW = Xb @ self._Wx
        YW = Yb @ self._Wy
        p = XW.shape[1]
        # one product per view (per half) gives both the gradient and B_zeta W
        split = self.split_batch and not self._deterministic
        PX1, PX2, two = split_products(Xb, xp.concat([YW, XW], axis=1), split)
        PY1, PY2, _ = split_products(Yb, xp.concat([XW, YW], axis=1), split)
        # per-half gradients: each half's skew factor multiplies the other half's B W
        Gx, Gx2 = -PX1[:, :p], -PX2[:, :p]
        Gy, Gy2 = -PY1[:, :p], -PY2[:, :p]
        BWx, BWx2 = PX1[:, p:] + self.reg * self._Wx, PX2[:, p:] + self.reg * self._Wx
        BWy, BWy2 = PY1[:, p:] + self.reg * self._Wy, PY2[:, p:] + self.reg * self._Wy
        self._Wx, dx = landing_block_step(
            self._Wx, Gx, Xb, self.reg, BWx, learning_rate=self._lr[0] * factor,
            omega=self._omega[0], epsilon=self.epsilon,
            BW2=BWx2 if two else None, G2=Gx2 if two else None,
        )
        self._Wy, dy = landing_block_step(
            self._Wy, Gy, Yb, self.reg, BWy, learning_rate=self._lr[1] * factor,
            omega=self._omega[1], epsilon=self.epsilon,
            BW2=BWy2 if two else None, G2=Gy2 if two else None,
        )
        self.n_iter_ += 1
        return dx + dy

    def _stats(self, Xc, Yc):
        """p x p matrices Wx^T Sxx Wx, Wy^T Syy Wy, Wx^T Sxy Wy on the given (centered) data."""
        n = Xc.shape[0]
        XW = Xc @ self._Wx
        YW = Yc @ self._Wy
        Cx = XW.T @ XW / n + self.reg * (self._Wx.T @ self._Wx)
        Cy = YW.T @ YW / n + self.reg * (self._Wy.T @ self._Wy)
        Cxy = XW.T @ YW / n
        return Cx, Cy, Cxy

    def _record(self, stats, epoch, t):
        xp = get_namespace(stats[0])
        Cx, Cy, Cxy = stats
        eye = xp.eye(Cx.shape[0], dtype=Cx.dtype, device=Cx.device)
        viol = float(xp.linalg.matrix_norm(Cx - eye)) + float(xp.linalg.matrix_norm(Cy - eye))
        obj = -float(xp.linalg.trace(Cxy))
        self.history_["objective"].append(obj)
        self.history_["constraint_violation"].append(viol)
        self.history_["time"].append(t)
        self.history_["epoch"].append(epoch)
        self.constraint_violation_ = viol
        if self.verbose:
            print(f"[LandingCCA] epoch {epoch}: objective {obj:.6g}, violation {viol:.3g}")

    def _finalize(self, stats):
        """Rotate the landing iterate into individual canonical pairs (p x p work only)."""
        xp = get_namespace(stats[0])
        Cx, Cy, Cxy = stats
        Lx_inv = inv(cholesky(0.5 * (Cx + Cx.T)))
        Ly_inv = inv(cholesky(0.5 * (Cy + Cy.T)))
        U, s, Vt = svd(Lx_inv @ Cxy @ Ly_inv.T)
        self.x_weights_ = self._Wx @ (Lx_inv.T @ U)
        self.y_weights_ = self._Wy @ (Ly_inv.T @ Vt.T)
        self.canonical_correlations_ = s
        return xp

    # ------------------------------------------------------------------ public API
    def fit(self, X, Y):
        """Fit on all samples with ``max_epochs`` passes of minibatch landing.

        Parameters
        ----------
        X : array, shape (n_samples, d_x)
        Y : array, shape (n_samples, d_y)

        Returns
        -------
        self : LandingCCA
        """
        X, Y = self._check_xy(X, Y, reset=True)
        xp = get_namespace(X, Y)
        self.x_mean_ = xp.mean(X, axis=0)
        self.y_mean_ = xp.mean(Y, axis=0)
        Xc = X - self.x_mean_
        Yc = Y - self.y_mean_
        self._init_state(Xc, Yc)
        n = X.shape[0]
        r = n if self.batch_size is None else min(self.batch_size, n)
        full = r >= n
        self._deterministic = full
        t0 = time.perf_counter()
        self._record(self._stats(Xc, Yc), 0, 0.0)
        d0 = None
        converged = False
        for epoch in range(1, self.max_epochs + 1):
            factor = _lr_factor(self, epoch - 1, no_auto=full)
            for Xb, Yb in epoch_batches(Xc, Yc, r, self._rng):
                dn = self._step(Xb, Yb, factor)
            if full:
                dn = float(dn)
                if dn != dn:
                    raise FloatingPointError(
                        "LandingCCA diverged; decrease learning_rate"
                    )
                d0 = dn if d0 is None else d0
                if dn <= self.tol * max(d0, 1e-300):
                    converged = True
            self._record(self._stats(Xc, Yc), epoch, time.perf_counter() - t0)
            if converged:
                break
        if not (self.history_["objective"][-1] == self.history_["objective"][-1]):
            raise FloatingPointError("LandingCCA diverged (NaN objective); decrease learning_rate")
        if full and not converged:
            warnings.warn(
                f"LandingCCA did not converge in {self.max_epochs} full-batch iterations: "
                f"relative squared direction norm {dn / max(d0, 1e-300):.3g} > tol={self.tol:.3g}",
                ConvergenceWarning,
            )
        self._n_seen = n
        self._finalize(self._stats(Xc, Yc))
        return self

    def partial_fit(self, X, Y):
        """One landing step on the minibatch ``(X, Y)`` (streaming use).

        Means are running averages over all batches seen; the first call initialises the
        weights and the step sizes from that batch. The canonical pairs are extracted from an
        exponential moving average (factor 0.9) of the p x p batch statistics.

        Parameters
        ----------
        X : array, shape (r, d_x)
        Y : array, shape (r, d_y)

        Returns
        -------
        self : LandingCCA
        """
        first = not hasattr(self, "_Wx")
        X, Y = self._check_xy(X, Y, reset=first)
        xp = get_namespace(X, Y)
        r = X.shape[0]
        if first:
            self.x_mean_ = xp.mean(X, axis=0)
            self.y_mean_ = xp.mean(Y, axis=0)
            self._n_seen = 0
            self._init_state(X - self.x_mean_, Y - self.y_mean_)
            self._t0 = time.perf_counter()
            self._ema = None
        else:
            tot = self._n_seen + r
            self.x_mean_ = self.x_mean_ + (xp.mean(X, axis=0) - self.x_mean_) * (r / tot)
            self.y_mean_ = self.y_mean_ + (xp.mean(Y, axis=0) - self.y_mean_) * (r / tot)
        self._n_seen += r
        Xc = X - self.x_mean_
        Yc = Y - self.y_mean_
        self._step(Xc, Yc, _lr_factor(self, len(self.history_["epoch"]), no_auto=True))
        stats = self._stats(Xc, Yc)
        if self._ema is None:
            self._ema = stats
        else:
            self._ema = tuple(0.9 * a + 0.1 * b for a, b in zip(self._ema, stats, strict=True))
        self._record(self._ema, len(self.history_["epoch"]) + 1, time.perf_counter() - self._t0)
        self._finalize(self._ema)
        return self

    def transform(self, X, Y=None):
        """Canonical variates.

        Parameters
        ----------
        X : array, shape (n_samples, d_x)
        Y : array, shape (n_samples, d_y), optional

        Returns
        -------
        x_scores : array, shape (n_samples, p)
        y_scores : array, shape (n_samples, p)
            Only when ``Y`` is given.
        """
        if not hasattr(self, "x_weights_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("LandingCCA is not fitted yet; call fit or partial_fit")
        X = check_array(X, "X", ndim=2)
        if X.shape[1] != self.x_weights_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features, but LandingCCA was fitted with "
                f"{self.x_weights_.shape[0]}"
            )
        xs = (X - self.x_mean_) @ self.x_weights_
        if Y is None:
            return xs
        Y = check_array(Y, "Y", ndim=2)
        if Y.shape[1] != self.y_weights_.shape[0]:
            raise ValueError(
                f"Y has {Y.shape[1]} features, but LandingCCA was fitted with "
                f"{self.y_weights_.shape[0]}"
            )
        return xs, (Y - self.y_mean_) @ self.y_weights_

    def fit_transform(self, X, Y):
        """Fit, then return ``transform(X, Y)``."""
        return self.fit(X, Y).transform(X, Y)
