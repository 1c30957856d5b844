r"""Stochastic canonical correlation analysis by landing (no whitening, no matrix inverse)."""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    ClassNamePrefixFeaturesOutMixin,
    MultiOutputMixin,
    RegressorMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning

from .._array_api import cholesky, eigh, get_namespace, inv, make_generator, qr, svd
from .._base import Estimator, Interval, StrOptions, reject_unsupported
from .._numerics import power_iteration
from .._validation import (
    check_array,
    check_consistent_length,
    check_n_components,
)
from ._landing import _two_estimate_direction, landing_block_step
from ._stochastic import (
    _check_decay_epochs,
    _lr_factor,
    _xtv,
    _xw,
    epoch_batches,
    power_lambda_max,
    split_products,
    whiten_init,
)

__all__ = ["LandingCCA"]

# rows used to estimate the preconditioner and its step size (O(rows d k) once)
_PRECOND_ROWS = 8192
# rows per block of the full-data (anchor) passes of variance reduction
_ANCHOR_CHUNK = 16384
# rows of each variance-reduced batch that estimate the curvature of the safe step
_CURVATURE_ROWS = 2048
# variance-reduced steps between two anchor passes (at most one epoch)
_INNER_STEPS = 32
# at most this many warm-up steps with vr_warmup='auto' (and at most half an epoch)
_WARMUP_STEPS = 200


# ------------------------------------------------------------------------ preconditioning
def fit_preconditioner(Xs, kind, rank, reg, rng):
    r"""A preconditioner :math:`P \approx (S + \rho I)^{-1}` from the centred rows ``Xs``.

    ``'diagonal'``: :math:`P = D^{-1}` with :math:`D = \mathrm{diag}(S) + \rho I`.
    ``'low-rank'``: :math:`P = D^{-1/2}\,[U\Lambda^{-1}U^\top + \sigma^{-2}(I - UU^\top)]\,
    D^{-1/2}`, the inverse of the rank-k-plus-isotropic approximation of the scaled covariance
    :math:`C = D^{-1/2}(S + \rho I)D^{-1/2}`: :math:`U, \Lambda` are its top k eigenpairs
    (randomised range finder with one power iteration, Halko, Martinsson & Tropp, SIAM Rev.
    53, 2011, Algorithms 4.3 and 5.3) and :math:`\sigma^2 = (\mathrm{tr}\,C -
    \mathrm{tr}\,\Lambda)/(d - k)` (the maximum-likelihood isotropic part of probabilistic PCA,
    Tipping & Bishop, JRSS-B 61, 1999), with :math:`\mathrm{tr}\,C = d`. Costs
    :math:`O(m d (k + 10))` for m rows; never forms a (d, d) matrix.

    Parameters
    ----------
    Xs : array, shape (m, d)
        Centred rows.
    kind : {'diagonal', 'low-rank'}
    rank : int
        k (``'low-rank'`` only; reduced to ``d - 1``; ``d = 1`` falls back to diagonal).
    reg : float
        Ridge :math:`\rho`.
    rng : Generator
        From ``make_generator`` (the random test matrix).

    Returns
    -------
    precond : tuple of arrays
        ``(scale,)`` or ``(scale, U, coef, sigma2)`` with ``scale`` (d,) the diagonal
        :math:`D^{-1/2}`, ``U`` (d, k), ``coef`` (k,) :math:`= 1/\lambda - 1/\sigma^2`;
        applied by :func:`apply_preconditioner`.
    """
    xp = get_namespace(Xs)
    m, d = Xs.shape
    var = xp.sum(Xs * Xs, axis=0) / m
    scale = 1.0 / xp.sqrt(var + reg)
    tiny = float(xp.finfo(Xs.dtype).smallest_normal) ** 0.5
    if not bool(xp.all(var + reg > tiny)):
        # a constant feature without ridge: leave its scale at 1 rather than divide by 0
        scale = xp.where(var + reg > tiny, scale, xp.ones_like(scale))
    k = min(int(rank), d - 1)
    if kind == "diagonal" or k < 1:
        return (scale,)
    Z = Xs * scale
    ell = min(k + 10, d)
    Q, _ = qr(_xtv(Z, _xw(Z, rng.normal((d, ell), dtype=Xs.dtype))))
    Q, _ = qr(_xtv(Z, _xw(Z, Q)))
    ZQ = _xw(Z, Q)
    T = ZQ.T @ ZQ / m + reg * ((Q.T * (scale * scale)) @ Q)
    lam, V = eigh(0.5 * (T + T.T))
    lam = xp.clip(xp.flip(lam)[:k], min=tiny)
    U = Q @ xp.flip(V, axis=1)[:, :k]
    trace = float(xp.sum(var / (var + reg))) + reg * float(xp.sum(scale * scale))
    sigma2 = max((trace - float(xp.sum(lam))) / (d - k), tiny)
    return (scale, U, 1.0 / lam - 1.0 / sigma2, sigma2)


def apply_preconditioner(precond, F):
    """``P @ F`` for ``F`` of shape (d, c) and a ``precond`` of :func:`fit_preconditioner`:
    O(d k c) work."""
    scale = precond[0][:, None]
    G = scale * F
    if len(precond) > 1:
        _, U, coef, sigma2 = precond
        G = G / sigma2 + U @ (coef[:, None] * (U.T @ G))
    return scale * G


def preconditioned_lambda_max(Xs, precond, reg, n_iter=20, seed=0):
    r"""Largest eigenvalue of :math:`P(X_s^\top X_s/m + \rho I)` by power iteration (the
    eigenvalues are those of the symmetric :math:`P^{1/2}(S + \rho I)P^{1/2}`)."""
    m, d = Xs.shape
    return power_iteration(lambda v: apply_preconditioner(precond, Xs.T @ (Xs @ v) / m + reg * v),
                           d, Xs, n_iter=n_iter, seed=seed)


def preconditioned_direction(W, G, BW, precond, *, omega, BW2=None, G2=None):
    r"""The landing field after the change of variables :math:`W = P^{1/2}V`.

    In V the constraint is :math:`V^\top B' V = I` with :math:`B' = P^{1/2} B P^{1/2}` (close
    to the identity for :math:`P \approx B^{-1}`) and the gradient is :math:`P^{1/2}G`; the
    landing field there, mapped back by :math:`P^{1/2}`, is
    :math:`P[\tfrac12(G\,M - BW\,K) + \omega\,BW\,h]` with :math:`M = (BW)^\top P\,BW`,
    :math:`K = G^\top P\,BW`, :math:`h = W^\top BW - I`. Only products with P are needed; the
    fixed points are those of the plain field (a linear change of variables), and
    :math:`W^\top B\,(\text{tangent part}) = \tfrac12(K^\top M - MK)` is still skew, so the
    safe step of :func:`~sciml_toolbox.stiefel.safe_step_size` applies unchanged. With
    ``BW2``/``G2`` every product pairs factors from the two halves of the batch, as in
    ``landing_direction(BX2=..., G2=...)``.

    Parameters
    ----------
    W, G, BW : array, shape (d, p)
    precond : tuple
        From :func:`fit_preconditioner`.
    omega : float
    BW2, G2 : array, shape (d, p), optional

    Returns
    -------
    direction : array, shape (d, p)
    """
    xp = get_namespace(W, G, BW)
    return _two_estimate_direction(W, G, BW, BW2, G2, omega, _precondition(precond), xp)


def _precondition(precond):
    """``F -> P @ F`` for a ``precond`` of :func:`fit_preconditioner` (None stays None)."""
    if precond is None:
        return None
    return lambda F: apply_preconditioner(precond, F)


class LandingCCA(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, RegressorMixin, MultiOutputMixin,
    Estimator,
):
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
        landing field scales as the fourth power of the data scale. With a ``preconditioner``,
        :math:`\min(2/\hat\lambda^2, 1/\hat\lambda)` with :math:`\hat\lambda` the largest
        eigenvalue of :math:`P(S + \rho I)` on the rows the preconditioner was estimated from
        (about 1 when P whitens well, where :math:`2/\hat\lambda^2` is at the stability edge).
    omega : float or 'auto', default='auto'
        Weight of the normal direction; ``'auto'`` is :math:`0.5/(\eta\hat\lambda)` per block.
    max_epochs : int, default=8
        Passes over the data in :meth:`fit`. With ``variance_reduction``: the number of anchor
        passes followed by a variance-reduced inner loop (see there).
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
        removes. Same cost. Measurements: the user guide (doc/guide/stiefel.rst,
        ``split_batch``) and ``benchmarks/stiefel.md``.
    preconditioner : {None, 'diagonal', 'low-rank'}, default=None
        Landing in the coordinates :math:`V = P^{-1/2}W` with :math:`P \approx
        (S + \rho I)^{-1}` estimated once per view (see ``fit_preconditioner`` in this
        module) from ``min(n, 8192)`` rows (in :meth:`fit` a strided subset with
        ``variance_reduction``, the first rows otherwise; the first batch of
        :meth:`partial_fit`): ``'diagonal'`` divides by the feature variances,
        ``'low-rank'`` also inverts the ``preconditioner_rank`` leading directions of the
        scaled covariance and the average of the rest (O(8192 d k) once, O(d k p) a step, no
        (d, d) matrix). The fixed points do not change (a linear change of variables); the
        step is applied along :math:`P \times` the landing field, so the rate no longer
        depends on the conditioning of the covariances: use ``'low-rank'`` when a few
        directions dominate the variance (the usual case for features with shared factors),
        ``'diagonal'`` for unequal feature scales. ``None`` keeps the plain field.
    preconditioner_rank : int or 'auto', default='auto'
        k of ``'low-rank'`` (and of ``init='subset'``); ``'auto'`` is ``2 p + 10``, at most
        ``d - 1``.
    variance_reduction : bool, default=False
        :meth:`fit` only (ignored by :meth:`partial_fit`, whose stream has no second pass):
        SVRG-style control variates (Johnson & Zhang, NeurIPS 2013). Every term of the CCA
        landing field is built from :math:`S_{xx}W_x, S_{xy}W_y, S_{yy}W_y, S_{yx}W_x`, all
        linear in W; an *anchor pass* computes them exactly on all rows at the anchor
        :math:`\tilde W` (one pass, no (d, d) matrix, also giving the exact full-data
        objective and violation recorded in ``history_``), and each step of the following
        inner loop (at most 32 steps of ``vr_batch_size`` rows, at most one epoch) uses
        :math:`S\tilde W + X_b^\top X_b(W - \tilde W)/r` (per half batch, as with
        ``split_batch``), whose noise vanishes as W and the anchor approach the solution. The
        step stays constant (``lr_decay_epochs`` count anchors; ``'auto'`` means none) and the
        iterate converges to the exact solution on the data rather than to a noise floor.
        After ``max_epochs`` inner loops a last anchor pass gives the final statistics.
        Worth it when the noise floor of plain minibatch steps is above the accuracy wanted,
        and when the data are many times larger than ``vr_batch_size``.
    vr_batch_size : int or 'auto', default='auto'
        Rows per variance-reduced step; ``'auto'`` is ``max(batch_size, 8 d, min(n / 32,
        16 d))`` with ``d = max(d_x, d_y)``: the control variate only helps when the batch
        covariance is close to the full one, which needs several times more rows than
        features, and 16 d when 32 such batches still fit in one epoch.
    vr_warmup : float or 'auto', default='auto'
        Epochs of plain minibatch steps (``batch_size`` rows) before the first anchor pass,
        when the iterate is still far from the solution; ``'auto'`` is half an epoch, at most
        200 steps, with ``init='random'`` and 0 with ``init='subset'``.
    init : {'random', 'subset'}, default='random'
        ``'random'``: Gaussian weights scaled to the constraint on the first batch.
        ``'subset'``: the closed-form CCA of ``min(n, 8192)`` rows (in :meth:`fit` a strided
        subset with ``variance_reduction``) restricted to the k leading principal directions
        of each (diagonally scaled) view, k as in ``preconditioner_rank``: O(8192 d k) once,
        the principal directions are the preconditioner's when it is ``'low-rank'``. A good
        start when the canonical directions lie mostly in the leading principal subspaces
        (shared factors that dominate the variance); otherwise it is only a better-than-random
        start. Falls back to random when there are fewer than ``2 k`` rows.
    tol : float, default=1e-8
        Full-batch mode: stop when the squared norm of the landing direction falls below
        ``tol`` times its initial value. With ``variance_reduction``: stop when the full-data
        objective changes by at most ``tol`` (relative) between two anchor passes.
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
    history_ : dict of lists
        One record per epoch and one before the first step (per call of :meth:`partial_fit`,
        from the moving-average statistics), with the common keys of the
        :ref:`estimator conventions <conventions>`: ``iteration`` (landing steps done),
        ``loss`` (:math:`-\mathrm{tr}(W_x^\top S_{xy}W_y)`, the same number as ``objective``),
        ``constraint_violation``, ``time`` (seconds since the start of :meth:`fit`); and
        ``objective``, ``epoch``.
    x_mean_, y_mean_ : array, shape (d_x,), (d_y,)
    x_loadings_, y_loadings_ : array, shape (d_x, p), (d_y, p)
        Least-squares regression of the centred data on its canonical variates,
        :math:`X_c^\top T_x (T_x^\top T_x)^{-1}`: :meth:`inverse_transform` is
        ``scores @ x_loadings_.T + x_mean_`` (as in :class:`sklearn.cross_decomposition.CCA`).
        After :meth:`partial_fit`, from moving averages (factor 0.9) of the batch products.
    coef_ : array, shape (d_y, d_x)
        Linear predictor of Y used by :meth:`predict` and :meth:`score`:
        ``predict(X) = (X - x_mean_) @ coef_.T + y_mean_``, the least-squares regression of
        :math:`Y_c` on the X canonical variates (the ``coef_`` of
        :class:`sklearn.cross_decomposition.CCA` is defined the same way on its own scores).
    n_iter_ : int
        Number of landing steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Only when ``X`` was a DataFrame with string column names.

    Raises
    ------
    ValueError
        From :meth:`fit`, on a parameter outside its declared range, bad ``X`` or ``Y``
        (NaN/inf, fewer than 2 samples, different numbers of samples), ``n_components`` above
        ``min(d_x, d_y)``, and when ``X`` or ``Y`` is constant (no correlation to estimate).

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

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "omega": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "reg": [Interval(Real, 0, None, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "lr_decay_epochs": ["array-like", StrOptions({"auto"}), None],
        "lr_decay": [Interval(Real, 0, None, closed="neither")],
        "split_batch": ["boolean"],
        "preconditioner": [StrOptions({"diagonal", "low-rank"}), None],
        "preconditioner_rank": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "variance_reduction": ["boolean"],
        "vr_batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "vr_warmup": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "init": [StrOptions({"random", "subset"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
    }

    _expected_failed_checks: dict = {
        name: "fit_transform(X, Y) returns (x_scores, y_scores) like "
        "sklearn.cross_decomposition.CCA, which scikit-learn exempts from this check by name"
        for name in ("check_transformer_general", "check_transformer_data_not_an_array")
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # Y is the second view
        tags.regressor_tags.poor_score = True  # p canonical variates predict Y only in part
        return tags

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
        preconditioner=None,
        preconditioner_rank="auto",
        variance_reduction=False,
        vr_batch_size="auto",
        vr_warmup="auto",
        init="random",
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
        self.preconditioner = preconditioner
        self.preconditioner_rank = preconditioner_rank
        self.variance_reduction = variance_reduction
        self.vr_batch_size = vr_batch_size
        self.vr_warmup = vr_warmup
        self.init = init
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation / set-up
    def _check_xy(self, X, Y, reset):
        if reset:
            self._validate_params()
            _check_decay_epochs(self.lr_decay_epochs)
        X = self._validate_X(X, reset=reset, min_samples=2)
        Y = self._check_y(Y, reset=reset)
        get_namespace(X, Y)
        check_consistent_length(X, Y, names=("X", "Y"))
        return X, Y

    def _check_y(self, Y, reset):
        """``Y`` as a 2-D array (a 1-D ``Y`` is one column), checked against the fit."""
        if Y is None:
            raise ValueError(
                "LandingCCA requires y to be passed, but the target y is None: Y is the "
                "second view, whose correlations with X are estimated"
            )
        Y = reject_unsupported(Y, "Y", "LandingCCA", allow_1d=True)
        Y = check_array(Y, "Y", ndim=(1, 2))
        if reset:
            self._y_1d = Y.ndim == 1
        if Y.ndim == 1:
            Y = Y[:, None]
        if not reset and Y.shape[1] != self.y_mean_.shape[0]:
            raise ValueError(
                f"Y has {Y.shape[1]} features, but LandingCCA was fitted with "
                f"{self.y_mean_.shape[0]}"
            )
        return Y

    def _init_state(self, Xc, Yc):
        xp = get_namespace(Xc)
        dx, dy = Xc.shape[1], Yc.shape[1]
        p = check_n_components(self.n_components, min(dx, dy), allow_none=False)
        rng = make_generator(self.random_state, xp, Xc.device)
        sub = min(Xc.shape[0], 4096)
        # with a preconditioner this is only the check for constant data (its own estimate
        # of the step size follows)
        it = 30 if self.preconditioner is None else 2
        lam_x = power_lambda_max(Xc[:sub, ...], n_iter=it)
        lam_y = power_lambda_max(Yc[:sub, ...], n_iter=it)
        for lam, name in ((lam_x, "X"), (lam_y, "Y")):
            if not lam > 0:
                raise ValueError(
                    f"{name} is constant (zero variance in every feature of the data used to "
                    "initialise): there is no correlation to estimate"
                )
        lam_x, lam_y = lam_x + self.reg, lam_y + self.reg
        self._prec = (None, None)
        if self.preconditioner is not None:
            m = min(Xc.shape[0], _PRECOND_ROWS)
            k = 2 * p + 10 if self.preconditioner_rank == "auto" else self.preconditioner_rank
            self._prec = tuple(
                fit_preconditioner(Z[:m, ...], self.preconditioner, k, self.reg, rng)
                for Z in (Xc, Yc)
            )
            lam_x, lam_y = (
                preconditioned_lambda_max(Z[:m, ...], P, self.reg, n_iter=12)
                for Z, P in zip((Xc, Yc), self._prec, strict=True)
            )
        if self.learning_rate == "auto" and self.preconditioner is not None:
            # 2 / lambda^2 is the stability edge when P whitens well (lambda ~ 1): cap it
            self._lr = tuple(min(2.0 / lam**2, 1.0 / lam) for lam in (lam_x, lam_y))
        elif self.learning_rate == "auto":
            self._lr = (2.0 / lam_x**2, 2.0 / lam_y**2)
        else:
            self._lr = (float(self.learning_rate),) * 2
        if self.omega == "auto":
            self._omega = (0.5 / (self._lr[0] * lam_x), 0.5 / (self._lr[1] * lam_y))
        else:
            self._omega = (float(self.omega),) * 2
        Wx = rng.normal((dx, p), dtype=Xc.dtype)
        Wy = rng.normal((dy, p), dtype=Xc.dtype)
        if self.init == "subset":
            Wx, Wy = self._subset_init(Xc, Yc, p, rng, Wx, Wy)
        r = Xc.shape[0] if self.batch_size is None else min(self.batch_size, Xc.shape[0])
        Xb, Yb = Xc[:r, ...], Yc[:r, ...]
        self._Wx = whiten_init(Wx, Xb.T @ (Xb @ Wx) / r + self.reg * Wx)
        self._Wy = whiten_init(Wy, Yb.T @ (Yb @ Wy) / r + self.reg * Wy)
        self.n_iter_ = 0
        self.history_ = self._new_history("objective", "epoch")
        self._deterministic = False
        self._t0 = time.perf_counter()
        self._ema = None
        self._ema_reg = None
        return rng

    def _subset_init(self, Xc, Yc, p, rng, Wx, Wy):
        """Closed-form CCA of the first ``_PRECOND_ROWS`` rows within the span of their k
        leading (diagonally scaled) principal directions; ``(Wx, Wy)`` unchanged when there
        are too few rows or features for k >= p."""
        m = min(Xc.shape[0], _PRECOND_ROWS)
        k = 2 * p + 10 if self.preconditioner_rank == "auto" else self.preconditioner_rank
        bases = []
        for Z, P in zip((Xc, Yc), self._prec, strict=True):
            if P is None or len(P) == 1:
                P = fit_preconditioner(Z[:m, ...], "low-rank", k, self.reg, rng)
            if len(P) == 1:
                return Wx, Wy
            bases.append(P[0][:, None] * P[1])
        kk = min(bases[0].shape[1], bases[1].shape[1])
        if kk < p or m < 2 * kk:
            return Wx, Wy
        Bx, By = bases[0][:, :kk], bases[1][:, :kk]
        A, C = _xw(Xc[:m, ...], Bx), _xw(Yc[:m, ...], By)
        Lx = cholesky(A.T @ A / m + self.reg * (Bx.T @ Bx))
        Ly = cholesky(C.T @ C / m + self.reg * (By.T @ By))
        Lx_inv, Ly_inv = inv(Lx), inv(Ly)
        U, _, Vt = svd(Lx_inv @ (A.T @ C / m) @ Ly_inv.T)
        return Bx @ (Lx_inv.T @ U[:, :p]), By @ (Ly_inv.T @ Vt[:p, :].T)

    # ------------------------------------------------------------------ landing step
    def _step(self, Xb, Yb, factor, anchor=None, curvature_rows=None):
        xp = get_namespace(Xb)
        if anchor is None:
            XW = _xw(Xb, self._Wx)
            YW = _xw(Yb, self._Wy)
        else:
            # variance reduction: minibatch products of W - W_anchor only, plus the exact
            # full-data products of the anchor (all terms are linear in W)
            XW = _xw(Xb, self._Wx - anchor["Wx"])
            YW = _xw(Yb, self._Wy - anchor["Wy"])
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
        if anchor is not None:
            Gx, Gx2 = Gx - anchor["SxyWy"], Gx2 - anchor["SxyWy"]
            Gy, Gy2 = Gy - anchor["SyxWx"], Gy2 - anchor["SyxWx"]
            BWx, BWx2 = BWx + anchor["SxxWx"], BWx2 + anchor["SxxWx"]
            BWy, BWy2 = BWy + anchor["SyyWy"], BWy2 + anchor["SyyWy"]
        self._Wx, dx = landing_block_step(
            self._Wx, Gx, Xb, self.reg, BWx, learning_rate=self._lr[0] * factor,
            omega=self._omega[0], epsilon=self.epsilon,
            BW2=BWx2 if two else None, G2=Gx2 if two else None,
            precondition=_precondition(self._prec[0]),
            curvature_rows=curvature_rows,
        )
        self._Wy, dy = landing_block_step(
            self._Wy, Gy, Yb, self.reg, BWy, learning_rate=self._lr[1] * factor,
            omega=self._omega[1], epsilon=self.epsilon,
            BW2=BWy2 if two else None, G2=Gy2 if two else None,
            precondition=_precondition(self._prec[1]),
            curvature_rows=curvature_rows,
        )
        self.n_iter_ += 1
        return dx + dy

    def _stats(self, Xc, Yc):
        """p x p matrices Wx^T Sxx Wx, Wy^T Syy Wy, Wx^T Sxy Wy on the given (centered) data."""
        n = Xc.shape[0]
        XW = _xw(Xc, self._Wx)
        YW = _xw(Yc, self._Wy)
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
        self._record_history(iteration=self.n_iter_, loss=obj, constraint_violation=viol,
                             time=t, objective=obj, epoch=epoch)
        self.constraint_violation_ = viol
        if self.verbose:
            print(f"[LandingCCA] epoch {epoch}: objective {obj:.6g}, violation {viol:.3g}")

    def _finalize(self, stats):
        """Rotate the landing iterate into individual canonical pairs (p x p work only);
        returns the (p, p) maps ``Rx, Ry`` with ``x_weights_ = W_x Rx``."""
        Cx, Cy, Cxy = stats
        Lx_inv = inv(cholesky(0.5 * (Cx + Cx.T)))
        Ly_inv = inv(cholesky(0.5 * (Cy + Cy.T)))
        U, s, Vt = svd(Lx_inv @ Cxy @ Ly_inv.T)
        Rx, Ry = Lx_inv.T @ U, Ly_inv.T @ Vt.T
        self.x_weights_ = self._Wx @ Rx
        self.y_weights_ = self._Wy @ Ry
        self.canonical_correlations_ = s
        return Rx, Ry

    # ------------------------------------------------------------------ variance reduction
    def _on_checkpoint(self):
        """Called by the variance-reduced :meth:`fit` after every anchor pass and four times
        per inner pass; does nothing (benchmarks override it to store the iterates)."""

    def _anchor_pass(self, X, Y):
        """Exact full-data products at the current iterate, by blocks of rows (no copy of the
        data): ``S_xx W_x``, ``S_xy W_y``, ``S_yy W_y``, ``S_yx W_x`` (d x p) and the p x p
        statistics of :meth:`_stats`. Costs one pass, 3 p (d_x + d_y) multiply-adds a row."""
        xp = get_namespace(X)
        n = X.shape[0]
        p = self._Wx.shape[1]
        Wx, Wy = self._Wx, self._Wy
        PX = xp.zeros((X.shape[1], 2 * p), dtype=X.dtype, device=X.device)
        PY = xp.zeros((Y.shape[1], 2 * p), dtype=X.dtype, device=X.device)
        Txx = xp.zeros((p, p), dtype=X.dtype, device=X.device)
        Tyy, Txy = Txx, Txx
        # centred products without a centred copy: Xc W = X W - 1 (mu^T W) and
        # Xc^T V = X^T V - mu (1^T V); the variates XW, YW are exactly centred
        mxW = self.x_mean_[None, :] @ Wx
        myW = self.y_mean_[None, :] @ Wy
        cx = xp.zeros((1, 2 * p), dtype=X.dtype, device=X.device)
        cy = cx
        for s in range(0, n, _ANCHOR_CHUNK):
            e = min(s + _ANCHOR_CHUNK, n)
            XW = _xw(X[s:e, ...], Wx) - mxW
            YW = _xw(Y[s:e, ...], Wy) - myW
            VX = xp.concat([YW, XW], axis=1)
            VY = xp.concat([XW, YW], axis=1)
            PX = PX + _xtv(X[s:e, ...], VX)
            PY = PY + _xtv(Y[s:e, ...], VY)
            cx = cx + xp.sum(VX, axis=0, keepdims=True)
            cy = cy + xp.sum(VY, axis=0, keepdims=True)
            Txx = Txx + XW.T @ XW
            Tyy = Tyy + YW.T @ YW
            Txy = Txy + XW.T @ YW
        PX = PX - self.x_mean_[:, None] @ cx
        PY = PY - self.y_mean_[:, None] @ cy
        PX, PY, Txx, Tyy, Txy = (a / n for a in (PX, PY, Txx, Tyy, Txy))
        anchor = {"Wx": Wx, "Wy": Wy, "SxyWy": PX[:, :p], "SxxWx": PX[:, p:],
                  "SyxWx": PY[:, :p], "SyyWy": PY[:, p:], "Txx": Txx, "Tyy": Tyy}
        stats = (Txx + self.reg * (Wx.T @ Wx), Tyy + self.reg * (Wy.T @ Wy), Txy)
        return anchor, stats

    def _fit_variance_reduced(self, X, Y):
        """``fit`` with ``variance_reduction=True`` (see the class docstring)."""
        xp = get_namespace(X, Y)
        n, dx = X.shape
        dy = Y.shape[1]
        # a strided subset (representative even if the rows are sorted) for the set-up
        stride = max(1, n // _PRECOND_ROWS)
        m = min(_PRECOND_ROWS, (n + stride - 1) // stride)
        rng = self._init_state(X[::stride, ...][:m, ...] - self.x_mean_,
                               Y[::stride, ...][:m, ...] - self.y_mean_)
        r = min(self.batch_size, n)
        if self.vr_batch_size == "auto":
            d = max(dx, dy)
            r_vr = min(n, max(r, 8 * d, min(n // _INNER_STEPS, 16 * d)))
        else:
            r_vr = min(self.vr_batch_size, n)
        t0 = time.perf_counter()

        def batch(idx):
            Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            Xb -= self.x_mean_  # in place on the gathered copy
            Yb -= self.y_mean_
            return Xb, Yb

        # warm-up: plain minibatch steps while far from the solution
        warm = self.vr_warmup
        if warm == "auto":
            warm = 0.0 if self.init == "subset" else min(0.5, _WARMUP_STEPS * r / n)
        n_warm, nb = int(warm * n) // r, n // r
        for b in range(n_warm):
            if b % nb == 0:
                perm = rng.permutation(n)
            j = b % nb
            self._step(*batch(perm[j * r : (j + 1) * r]), 1.0)
        self._on_checkpoint()
        prev = None
        for epoch in range(self.max_epochs + 1):
            anchor, stats = self._anchor_pass(X, Y)
            self._record(stats, epoch, time.perf_counter() - t0)
            obj = self.history_["objective"][-1]
            if not obj == obj:
                raise FloatingPointError(
                    "LandingCCA diverged (NaN objective); decrease learning_rate"
                )
            self._on_checkpoint()
            if epoch == self.max_epochs or (
                prev is not None and abs(prev - obj) <= self.tol * abs(obj)
            ):
                break
            prev = obj
            factor = _lr_factor(self, epoch, no_auto=True)
            n_inner = max(1, min(n // r_vr, _INNER_STEPS))
            every = max(1, n_inner // 4)
            perm = rng.permutation(n)
            for b in range(n_inner):
                self._step(*batch(perm[b * r_vr : (b + 1) * r_vr]), factor, anchor=anchor,
                           curvature_rows=_CURVATURE_ROWS)
                if (b + 1) % every == 0 and b + 1 < n_inner:
                    self._on_checkpoint()
        self._n_seen = n
        Rx, Ry = self._finalize(stats)
        # regression products of the final variates T = Xc Wx Rx, U = Yc Wy Ry from the
        # last anchor pass (linear in the weights: no further pass over the data)
        self._regress((anchor["SxxWx"] @ Rx, anchor["SyyWy"] @ Ry, Rx.T @ anchor["Txx"] @ Rx,
                       Ry.T @ anchor["Tyy"] @ Ry, (anchor["SyxWx"] @ Rx).T))
        return self

    # ------------------------------------------------------------------ public API
    def fit(self, X, Y):
        """Fit on all samples with ``max_epochs`` passes of minibatch landing.

        Parameters
        ----------
        X : array, shape (n_samples, d_x)
            Any array namespace, list or DataFrame (see :ref:`conventions`).
        Y : array, shape (n_samples, d_y) or (n_samples,)
            The second view; a 1-D ``Y`` is one column (and :meth:`predict` is then 1-D).

        Returns
        -------
        self : LandingCCA
        """
        X, Y = self._check_xy(X, Y, reset=True)
        xp = get_namespace(X, Y)
        self.x_mean_ = xp.mean(X, axis=0)
        self.y_mean_ = xp.mean(Y, axis=0)
        n = X.shape[0]
        if self.variance_reduction and self.batch_size is not None and self.batch_size < n:
            return self._fit_variance_reduced(X, Y)
        Xc = X - self.x_mean_
        Yc = Y - self.y_mean_
        rng = self._init_state(Xc, Yc)
        r = n if self.batch_size is None else min(self.batch_size, n)
        full = r >= n
        self._deterministic = full
        t0 = time.perf_counter()
        self._record(self._stats(Xc, Yc), 0, 0.0)
        d0 = None
        converged = False
        for epoch in range(1, self.max_epochs + 1):
            factor = _lr_factor(self, epoch - 1, no_auto=full)
            for Xb, Yb in epoch_batches(Xc, Yc, r, rng):
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
        self._regress(_regression_products(Xc, Yc, self.x_weights_, self.y_weights_))
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
        prods = _regression_products(Xc, Yc, self.x_weights_, self.y_weights_)
        if self._ema_reg is not None:
            prods = tuple(0.9 * a + 0.1 * b for a, b in zip(self._ema_reg, prods, strict=True))
        self._ema_reg = prods
        self._regress(prods)
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
        self._check_fitted()
        X = self._validate_X(X, reset=False)
        xs = (X - self.x_mean_) @ self.x_weights_
        if Y is None:
            return xs
        Y = self._check_y(Y, reset=False)
        return xs, (Y - self.y_mean_) @ self.y_weights_

    def fit_transform(self, X, y=None):
        """Fit, then return ``transform(X, y)``: ``(x_scores, y_scores)``.

        ``y`` is the second view ``Y`` (named ``y`` as in scikit-learn's ``fit_transform``).
        """
        return self.fit(X, y).transform(X, y)

    def _regress(self, prods):
        """Loadings and ``coef_`` from the p x p and d x p products of the variates."""
        XtT, YtU, TtT, UtU, TtY = prods
        inv_tt = inv(0.5 * (TtT + TtT.T))
        self.x_loadings_ = XtT @ inv_tt
        self.y_loadings_ = YtU @ inv(0.5 * (UtU + UtU.T))
        self.coef_ = (self.x_weights_ @ (inv_tt @ TtY)).T

    @property
    def _n_features_out(self):
        """Number of canonical pairs (names of :meth:`get_feature_names_out`)."""
        return self.x_weights_.shape[1]

    def inverse_transform(self, X, Y=None):
        """Map canonical variates back to the data spaces (least-squares reconstruction).

        Parameters
        ----------
        X : array, shape (n_samples, p)
            X canonical variates (the first output of :meth:`transform`).
        Y : array, shape (n_samples, p), optional
            Y canonical variates.

        Returns
        -------
        X_rec : array, shape (n_samples, d_x)
            ``X @ x_loadings_.T + x_mean_``.
        Y_rec : array, shape (n_samples, d_y)
            Only when ``Y`` is given.
        """
        self._check_fitted()
        p = self.x_weights_.shape[1]
        out = []
        for arr, name, load, mean in ((X, "X", self.x_loadings_, self.x_mean_),
                                      (Y, "Y", self.y_loadings_, self.y_mean_)):
            if arr is None:
                continue
            arr = check_array(reject_unsupported(arr, name, "LandingCCA"), name, ndim=2)
            if arr.shape[1] != p:
                raise ValueError(
                    f"{name} has {arr.shape[1]} components, but LandingCCA is expecting {p} "
                    "components as input"
                )
            out.append(arr @ load.T + mean)
        return out[0] if len(out) == 1 else tuple(out)

    def predict(self, X):
        """Predict Y from X through the X canonical variates.

        Parameters
        ----------
        X : array, shape (n_samples, d_x)

        Returns
        -------
        Y_pred : array, shape (n_samples, d_y) or (n_samples,)
            ``(X - x_mean_) @ coef_.T + y_mean_``; 1-D when ``Y`` was 1-D in :meth:`fit`.
        """
        self._check_fitted()
        X = self._validate_X(X, reset=False)
        pred = (X - self.x_mean_) @ self.coef_.T + self.y_mean_
        return pred[:, 0] if self._y_1d else pred

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination :math:`R^2` of :meth:`predict` (uniform average).

        As :meth:`sklearn.cross_decomposition.CCA.score`; higher is better, so model
        selection (``GridSearchCV``) can choose ``n_components`` or ``reg`` with it.

        Parameters
        ----------
        X : array, shape (n_samples, d_x)
        y : array, shape (n_samples, d_y) or (n_samples,)
            The second view ``Y``.
        sample_weight : array, shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import r2_score

        from .._array_api import to_numpy

        self._check_fitted()
        Y = self._check_y(y, reset=False)
        pred = self.predict(X)
        pred = pred[:, None] if pred.ndim == 1 else pred
        return float(r2_score(to_numpy(Y), to_numpy(pred),
                              sample_weight=None if sample_weight is None
                              else to_numpy(sample_weight)))


def _regression_products(Xc, Yc, Wx, Wy):
    """``(Xc^T T, Yc^T U, T^T T, U^T U, T^T Yc) / n`` for the variates ``T = Xc Wx``,
    ``U = Yc Wy``: O(n (d_x + d_y) p) work, no (d, d) matrix."""
    n = Xc.shape[0]
    T = Xc @ Wx
    U = Yc @ Wy
    return (Xc.T @ T / n, Yc.T @ U / n, T.T @ T / n, U.T @ U / n, T.T @ Yc / n)
