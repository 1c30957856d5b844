r"""Independent component analysis with the whitening constraint handled by landing."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from .._array_api import eigh, get_namespace, make_generator
from .._base import Estimator, Interval, StrOptions
from .._validation import check_n_components
from ._landing import landing_block_step
from ._stochastic import (
    _check_decay_epochs,
    _lr_factor,
    epoch_batches,
    power_lambda_max,
    split_products,
    whiten_init,
)

__all__ = ["LandingICA"]


def ica_batch_estimates(W, Xb, split):
    r"""Minibatch estimates for one ICA landing step, from one product per half of the batch.

    Parameters
    ----------
    W : array, shape (d, p)
        Current unmixing weights.
    Xb : array, shape (r, d)
        Centered minibatch.
    split : bool
        Estimate on the two halves of the batch (rows ``[:h]`` and ``[h:2h]``,
        ``h = r // 2``; an odd last row is dropped; no split when ``r < 4``).

    Returns
    -------
    G, BW : array, shape (d, p)
        Gradient :math:`X_b^\top \tanh(X_b W)/r_h` of the log-cosh contrast and
        :math:`B_\zeta W = X_b^\top (X_b W)/r_h` on the first half (the whole batch when not
        split).
    G2, BW2 : array, shape (d, p), or None
        The same on the second half; ``None`` when not split.
    Xs : array, shape (r', d)
        The rows those estimates use (``Xb[:2h]`` when split, else ``Xb``): the safe step
        computes its curvature on them, so that it and ``(BW + BW2) / 2`` describe the same
        minibatch covariance.
    """
    xp = get_namespace(W, Xb)
    p = W.shape[1]
    Z = Xb @ W
    P1, P2, two = split_products(Xb, xp.concat([xp.tanh(Z), Z], axis=1), split)
    if not two:
        return P1[:, :p], P1[:, p:], None, None, Xb
    h = Xb.shape[0] // 2
    return P1[:, :p], P1[:, p:], P2[:, :p], P2[:, p:], Xb[: 2 * h, ...]


class LandingICA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, Estimator):
    r"""ICA by stochastic landing: no whitening pass, whitening is the constraint.

    Minimises :math:`\mathbb{E}\big[\sum_i \log\cosh(w_i^\top x)\big]` subject to
    :math:`W^\top \mathrm{Cov}(x) W = I_p` [1]_ (the constraint makes the outputs white; the
    log-cosh contrast is the maximum-likelihood choice for super-Gaussian sources, Hyvärinen &
    Oja 2000). The covariance is only seen through minibatches, :math:`X_b^\top(X_bW)/r`, so
    each step costs :math:`O(rdp)` and no (d, d) matrix is formed.

    Parameters
    ----------
    n_components : int or None, default=None
        Number p of sources (``None``: all ``n_features``).
    batch_size : int or None, default=1000
        Minibatch size r (``None``: full batch).
    learning_rate : float or 'auto', default='auto'
        Step :math:`\eta`; ``'auto'`` is :math:`20/\hat\lambda^2` with :math:`\hat\lambda` the
        largest eigenvalue of the covariance (power iteration on at most 4096 samples). The
        field scales as the fourth power of the data scale; the constant is larger than for CCA
        because the Gaussian (linear) part of the ICA gradient, :math:`\propto BW`, is removed
        by the relative gradient.
    omega : float or 'auto', default='auto'
        Normal-direction weight; ``'auto'`` is :math:`0.5/(\eta\hat\lambda)`.
    max_epochs : int, default=20
    epsilon : float or None, default=0.5
        Safe-region radius (minibatch covariance); ``None`` disables the safe step. With
        ``split_batch=True`` the safe step uses the covariance of the rows of both halves,
        :math:`(B_\zeta W + B_{\zeta'} W)/2` and its curvature on the same rows, so its
        guarantee is for that one minibatch covariance.
    lr_decay_epochs : sequence of int, optional
        Epochs at which the step is multiplied by ``lr_decay``. With a constant step the
        iterate fluctuates around the manifold at a distance that grows with the step; a
        decreasing step is what drives the constraint violation down (with
        ``split_batch=True``).
    lr_decay : float, default=0.1
    split_batch : bool, default=False
        Minibatch mode: estimate the gradient :math:`X_b^\top\tanh(X_bW)/r_h` and
        :math:`B_\zeta W = X_b^\top(X_bW)/r_h` separately on the two halves of each batch
        (an odd last row is dropped) and combine them as in
        ``landing_direction(BX2=..., G2=...)``, so that the normal direction and the
        constraint drift of the tangent part are unbiased, at the same cost (one product per
        half). One batch in every factor leaves an :math:`O(1/r)` bias: the iterate settles
        inside the manifold at a violation that no step-size decay removes. Use it when the
        whitening of the outputs (:math:`W^\top \mathrm{Cov}(x) W = I`) matters, e.g. for
        small batches; default ``False`` because it can slow the convergence of the unmixing
        itself (Amari distance). Measurements: the user guide (doc/guide/stiefel.rst,
        ``split_batch``) and ``benchmarks/stiefel.md``.
    tol : float, default=1e-8
        Full-batch mode only: stop when the squared direction norm is below ``tol`` times its
        initial value.
    fun : {'logcosh'}, default='logcosh'
        Contrast function (super-Gaussian sources).
    random_state : int, numpy Generator or None
    verbose : bool, default=False

    Attributes
    ----------
    components_ : array, shape (p, n_features)
        Unmixing matrix: ``sources = (X - mean_) @ components_.T``.
    mixing_ : array, shape (n_features, p)
        Pseudo-inverse of ``components_``.
    mean_ : array, shape (n_features,)
    constraint_violation_ : float
        :math:`\|W^\top \mathrm{Cov}(x) W - I\|_F` at the end of :meth:`fit`.
    history_ : dict of lists
        One record per epoch (and one before the first step), with the common keys of the
        :ref:`estimator conventions <conventions>`: ``iteration`` (landing steps done),
        ``loss`` (mean log-cosh contrast, the same number as ``objective``),
        ``constraint_violation``, ``time`` (seconds since the start of :meth:`fit`); and
        ``objective``, ``epoch``.
    n_iter_ : int
        Number of landing steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Only when ``X`` was a DataFrame with string column names.

    Raises
    ------
    ValueError
        From :meth:`fit`, on a parameter outside its declared range, on bad ``X`` (NaN/inf,
        fewer than 2 samples, constant) and when ``n_components`` exceeds the numerical rank
        of ``X``.

    References
    ----------
    .. [1] S. Vary, P. Ablin, B. Gao, P.-A. Absil, "Optimization without retraction on the
       random generalized Stiefel manifold", ICML 2024, Section 5.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "omega": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "lr_decay_epochs": ["array-like", None],
        "lr_decay": [Interval(Real, 0, None, closed="neither")],
        "split_batch": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "fun": [StrOptions({"logcosh"})],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        batch_size=1000,
        learning_rate="auto",
        omega="auto",
        max_epochs=20,
        epsilon=0.5,
        lr_decay_epochs=None,
        lr_decay=0.1,
        split_batch=False,
        tol=1e-8,
        fun="logcosh",
        random_state=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.omega = omega
        self.max_epochs = max_epochs
        self.epsilon = epsilon
        self.lr_decay_epochs = lr_decay_epochs
        self.lr_decay = lr_decay
        self.split_batch = split_batch
        self.tol = tol
        self.fun = fun
        self.random_state = random_state
        self.verbose = verbose

    def _record(self, Xc, epoch, t):
        xp = get_namespace(Xc)
        n = Xc.shape[0]
        Z = Xc @ self._W
        C = Z.T @ Z / n
        eye = xp.eye(C.shape[0], dtype=C.dtype, device=C.device)
        viol = float(xp.linalg.matrix_norm(C - eye))
        # log cosh(z) = |z| + log1p(exp(-2|z|)) - log 2, stable for large |z|
        az = xp.abs(Z)
        obj = float(xp.mean(xp.sum(az + xp.log1p(xp.exp(-2.0 * az)), axis=1))) - Z.shape[
            1
        ] * 0.6931471805599453
        self._record_history(iteration=self.n_iter_, loss=obj, constraint_violation=viol,
                             time=t, objective=obj, epoch=epoch)
        self.constraint_violation_ = viol
        if self.verbose:
            print(f"[LandingICA] epoch {epoch}: objective {obj:.6g}, violation {viol:.3g}")

    def fit(self, X, y=None):
        """Fit the unmixing matrix.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : LandingICA
        """
        self._validate_params()
        _check_decay_epochs(self.lr_decay_epochs)
        X = self._validate_X(X, reset=True, min_samples=2)
        xp = get_namespace(X)
        n, d = X.shape
        p = check_n_components(self.n_components, d)
        self.mean_ = xp.mean(X, axis=0)
        Xc = X - self.mean_
        rng = make_generator(self.random_state, xp, X.device)
        lam = power_lambda_max(Xc[: min(n, 4096), ...])
        if lam <= 0:
            raise ValueError("X must not be constant (zero covariance)")
        lr = 20.0 / lam**2 if self.learning_rate == "auto" else float(self.learning_rate)
        omega = 0.5 / (lr * lam) if self.omega == "auto" else float(self.omega)
        r = n if self.batch_size is None else min(self.batch_size, n)
        W = rng.normal((d, p), dtype=Xc.dtype)
        Xb = Xc[:r, ...]
        BW = Xb.T @ (Xb @ W) / r
        _check_rank(W.T @ BW, p, r)
        self._W = whiten_init(W, BW)
        self.n_iter_ = 0
        self.history_ = self._new_history("objective", "epoch")
        t0 = time.perf_counter()
        self._record(Xc, 0, 0.0)
        d0 = None
        split = bool(self.split_batch) and r < n
        for epoch in range(1, self.max_epochs + 1):
            factor = _lr_factor(self, epoch - 1)
            for Xb, _ in epoch_batches(Xc, None, r, rng):
                G, BW, G2, BW2, Xs = ica_batch_estimates(self._W, Xb, split)
                self._W, dn = landing_block_step(
                    self._W, G, Xs, 0.0, BW, learning_rate=lr * factor, omega=omega,
                    epsilon=self.epsilon, BW2=BW2, G2=G2,
                )
                self.n_iter_ += 1
            self._record(Xc, epoch, time.perf_counter() - t0)
            if self.history_["objective"][-1] != self.history_["objective"][-1]:
                raise FloatingPointError("LandingICA diverged (NaN); decrease learning_rate")
            if r >= n:
                dn = float(dn)
                d0 = dn if d0 is None else d0
                if dn <= self.tol * max(d0, 1e-300):
                    break
        self.components_ = self._W.T
        self.mixing_ = xp.linalg.pinv(self.components_)
        return self

    @property
    def _n_features_out(self):
        """Number of sources (names of :meth:`get_feature_names_out`)."""
        return self.components_.shape[0]

    def transform(self, X):
        """Estimated sources.

        Parameters
        ----------
        X : array, shape (n_samples, n_features)

        Returns
        -------
        S : array, shape (n_samples, p)
        """
        self._check_fitted()
        X = self._validate_X(X, reset=False)
        return (X - self.mean_) @ self.components_.T

    def inverse_transform(self, X):
        """Map sources back to the data space.

        Parameters
        ----------
        X : array, shape (n_samples, p)
            Sources.

        Returns
        -------
        X_rec : array, shape (n_samples, n_features)
        """
        self._check_fitted()
        X = self._validate_X(X, name="X", reset=None)
        if X.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} components, but LandingICA is expecting "
                f"{self.components_.shape[0]} components as input"
            )
        return X @ self.mixing_.T + self.mean_


def _check_rank(M, p, r, rtol=1e-8):
    """Raise a clear ``ValueError`` when ``M = W^T B W`` (p x p, random ``W``) is singular.

    For a Gaussian ``W`` of p columns, ``M`` has the rank of the covariance ``B`` of the first
    ``r`` samples, capped at p: a numerically singular ``M`` means that ``n_components`` exceeds
    the rank of the data, and the Cholesky factorisation of the whitening would fail (at
    random, depending on rounding).
    """
    xp = get_namespace(M)
    w, _ = eigh(0.5 * (M + M.T))
    w_max = float(xp.max(w))
    rank = int(xp.sum(xp.astype(w > rtol * w_max, xp.int64))) if w_max > 0 else 0
    if rank < p:
        raise ValueError(
            f"n_components={p} exceeds the numerical rank {rank} of X (rank-deficient data, "
            f"measured on the first {r} samples): lower n_components or remove the degenerate "
            "features"
        )
