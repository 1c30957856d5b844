"""Scaling-law estimators: Chinchilla, forgetting with pretraining-data injection,
finetuning loss, and user-defined laws. NumPy/SciPy; inputs from any array namespace."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from .._array_api import to_numpy
from .._base import Estimator, Interval, StrOptions
from .._validation import check_array, check_consistent_length, check_int
from ._fit import batched_lbfgs, make_grid, polish

__all__ = ["ScalingLaw", "ChinchillaLaw", "ForgettingLaw", "FinetuningLaw", "CustomLaw",
           "compare_laws"]


def _lse(*terms):
    """log(sum_k exp(t_k)) of same-shape arrays and the softmax weights (one per term)."""
    m = terms[0]
    for t in terms[1:]:
        m = np.maximum(m, t)
    ex = [np.exp(t - m) for t in terms]
    tot = ex[0]
    for e in ex[1:]:
        tot = tot + e
    return m + np.log(tot), [e / tot for e in ex]


def _buffers(work, m, n, k):
    """``k`` scratch arrays of shape (m, n), views of buffers cached in ``work``."""
    buf = work.get("buffers")
    if buf is None or buf.shape[1] < m or buf.shape[2] != n or buf.shape[0] < k:
        buf = work["buffers"] = np.empty((k, m, n))
    return [buf[i, :m] for i in range(k)]


def _huber_parts(r, c, delta, w):
    """Huber objective of the residuals ``r`` (m, n), one value per row.

    Uses ``huber(r) = c (r - c / 2)`` with ``c = clip(r, -delta, delta) = huber'(r)``. Rows
    are averaged over the points (``w`` None) or weighted by ``w`` (m, n). On return ``c``
    holds the weighted derivative (``c / n`` or ``w c``), the factor of the gradient.
    """
    np.clip(r, -delta, delta, out=c)
    if w is None:
        c *= 1.0 / r.shape[1]
        # sum_i (c_i / n) r_i - n / 2 sum_i (c_i / n)^2
        return np.einsum("sn,sn->s", c, r) - 0.5 * r.shape[1] * np.einsum("sn,sn->s", c, c)
    f = np.einsum("sn,sn->s", w, c * (r - 0.5 * c))
    c *= w
    return f


class ScalingLaw(RegressorMixin, Estimator):
    """Base class: a loss law fitted in log space by Huber regression on log losses.

    A subclass defines the parameter names in the fitting (log) space, the default grid of
    starting points, the validation of ``X``, and ``_log_predict(theta, F)`` returning the
    predicted log-loss and its gradient for a batch of parameter vectors. ``fit`` minimises,
    for every start at once,

    ``mean_i huber(log L_hat(x_i; theta) - log y_i, delta)``

    with :func:`batched_lbfgs`, keeps the best start, polishes it with SciPy's L-BFGS-B, and
    optionally bootstraps the points (Hoffmann et al., 2022, approach 3, as replicated by
    Besiroglu et al., 2024, "Chinchilla scaling: a replication attempt").

    The multistart is staged: every start runs 10 L-BFGS iterations, then only the 10% of
    the starts with the lowest objective (at least 64, so small grids run in full) continue
    to their stopping test or ``max_iter``; the others stop where they are. The assumption is
    that the global basin is reached from many starts of a grid, some of which are already
    among the best tenth after 10 iterations (``benchmarks/scaling.md`` checks it on every
    law); a start that needs more than 10 iterations to overtake 90% of the grid is not
    explored further (pass a finer grid if that matters). The five best distinct end points are
    then polished by SciPy's L-BFGS-B to tight tolerances. ``ChinchillaLaw`` evaluates loss and
    gradient in one fused pass; the other laws go through ``_log_predict``. The cost grows
    linearly with the number of starts and of points (``benchmarks/scaling.md``).

    Parameters
    ----------
    delta : float, default=1e-3
        Huber transition point on log-loss residuals.
    grid : ndarray of shape (n_starts, n_params) or None
        Starting points in the fitting space (see ``fit_param_names``); default: the law's
        grid.
    max_iter : int, default=200
        Batched L-BFGS iterations per start (for the starts kept after the first 10); the
        best few distinct end points are then polished by SciPy's L-BFGS-B to tight
        tolerances.
    n_bootstrap : int, default=0
        Bootstrap resamples of the points for confidence intervals (0: none).
    confidence : float, default=0.95
    random_state : int or None, default=0
    verbose : bool, default=False

    Attributes
    ----------
    theta_ : ndarray, shape (n_params,)
        Best parameters in the fitting space.
    params_ : dict of str to float
        Parameters in the law's natural form.
    loss_ : float
        Objective at ``theta_``.
    start_losses_ : ndarray, shape (n_starts,)
        Objective reached from each start by the batched L-BFGS (where it stopped, for the
        starts dropped after the first 10 iterations; ``inf`` where the objective is not
        finite at the start).
    n_starts_ : int
    params_ci_ : dict of str to (float, float)
        Bootstrap confidence intervals (when ``n_bootstrap > 0``).
    bootstrap_params_ : dict of str to ndarray, shape (n_bootstrap,)
    n_features_in_ : int
    """

    fit_param_names: tuple = ()
    _n_columns: tuple = ()
    _n_polish = 5
    # multistart pruning (see the class docstring): iterations run by every start, and the
    # share (at least _min_keep starts) that continues
    _warm_iter = 10
    _keep_fraction = 0.1
    _min_keep = 64
    # first trial step of a line search: at most this (or 4x the last step) per coordinate
    _max_step = 1.0
    # starts x points evaluated per block of the objective (scratch buffers stay in cache)
    _block_elements = 2 ** 15

    _parameter_constraints: dict = {
        "delta": [Interval(numbers.Real, 0, None, closed="neither")],
        "grid": ["array-like", None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_bootstrap": [Interval(numbers.Integral, 0, None, closed="left")],
        "confidence": [Interval(numbers.Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: the law's columns are fixed (N, D, ...), sizes and token counts > 0: the checks below
    #: feed other numbers of columns or, under the positive_only tag, a column minimum of 0
    _expected_failed_checks: dict = dict.fromkeys(
        ("check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
         "check_estimators_dtypes", "check_estimators_fit_returns_self",
         "check_estimators_nan_inf", "check_estimators_overwrite_params",
         "check_estimators_pickle", "check_f_contiguous_array_estimator",
         "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d",
         "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
         "check_methods_sample_order_invariance", "check_methods_subset_invariance",
         "check_n_features_in", "check_n_features_in_after_fitting",
         "check_non_transformer_estimators_n_iter", "check_pipeline_consistency",
         "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
         "check_regressor_data_not_an_array", "check_regressors_int",
         "check_regressors_no_decision_function", "check_regressors_train",
         "check_requires_y_none", "check_supervised_y_2d"),
        "X must have exactly the law's columns (e.g. N, D) with sizes and token counts > 0; "
        "the check feeds another number of columns, or columns shifted to a minimum of 0",
    )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # sizes, token counts
        tags.target_tags.positive_only = True  # losses
        tags.target_tags.required = True
        # a fixed parametric form, not a general regressor: no R^2 > 0.5 on arbitrary data
        tags.regressor_tags.poor_score = True
        return tags

    def __init__(self, *, delta=1e-3, grid=None, max_iter=200, n_bootstrap=0, confidence=0.95,
                 random_state=0, verbose=False):
        self.delta = delta
        self.grid = grid
        self.max_iter = max_iter
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state
        self.verbose = verbose

    # -- to define in subclasses --------------------------------------------------------
    def _default_grid(self):
        raise NotImplementedError

    def _features(self, X):
        return X

    def _log_predict(self, theta, F):
        """Return log L of shape (S, n) and its derivatives: a list of P arrays (S, n)."""
        raise NotImplementedError

    def _natural(self, theta):
        return dict(zip(self.fit_param_names, map(float, theta), strict=True))

    def _check_X(self, X, reset=False):
        """``X`` through the estimator data path, then as float64 NumPy with the law's columns
        (``reset``: as in :meth:`Estimator._validate_X`; ``True`` in ``fit``)."""
        X = np.asarray(to_numpy(self._validate_X(X, reset=reset)), dtype=float)
        if self._n_columns and X.shape[1] not in self._n_columns:
            want = " or ".join(str(c) for c in self._n_columns)
            raise ValueError(f"X must have {want} columns ({self._column_doc}), got "
                             f"{X.shape[1]}")
        return X

    _column_doc = ""

    # -- fitting --------------------------------------------------------------------------
    def _check_grid(self, P):
        try:
            grid = np.asarray(self.grid, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"grid must be a numeric (n_starts, {P}) array: {exc}") from None
        if grid.ndim != 2 or grid.shape[1] != P or grid.shape[0] == 0:
            raise ValueError(f"grid must have shape (n_starts, {P}) with n_starts >= 1, got "
                             f"{grid.shape}")
        if not np.all(np.isfinite(grid)):
            rows = np.flatnonzero(~np.all(np.isfinite(grid), axis=1))
            raise ValueError(f"grid must be finite: {rows.size} of {grid.shape[0]} starting "
                             f"points contain NaN or inf (first rows {rows[:5].tolist()})")
        return grid

    def _loss_grad(self, theta, F, z, w, delta, work):
        """Objective and gradient of a block of starts: shapes (m,) and (m, n_params).

        ``w`` is None (mean over the points) or per-row point weights of shape (m, n_points);
        ``work`` is a dict of scratch buffers owned by the objective (see :func:`_buffers`).
        Generic form through ``_log_predict``; a law may override it with a fused pass.
        """
        pred, jac = self._log_predict(theta, F)
        r = pred - z[None, :]
        c = np.empty_like(r)
        f = _huber_parts(r, c, delta, w)
        g = np.stack([np.einsum("sn,sn->s", c, j) for j in jac], axis=1)
        return f, g

    def _objective(self, F, z, weights=None):
        delta = float(self.delta)
        # blocks of starts whose (block, n_points) scratch buffers stay in cache
        block = max(1, self._block_elements // max(z.shape[0], 1))
        work = {}

        def fun_grad(theta, rows):
            m = theta.shape[0]
            f = np.empty(m)
            g = np.empty((m, theta.shape[1]))
            with np.errstate(all="ignore"):  # overflowing trial points are rejected below
                for i in range(0, m, block):
                    sl = slice(i, i + block)
                    w = None if weights is None else weights[rows[sl]]
                    f[sl], g[sl] = self._loss_grad(theta[sl], F, z, w, delta, work)
            bad = ~np.isfinite(f) | ~np.all(np.isfinite(g), axis=1)
            f[bad] = np.inf
            g[bad] = 0.0
            return f, g

        return fun_grad

    def fit(self, X, y):
        """Fit the law.

        Parameters
        ----------
        X : array_like, shape (n_points, n_columns)
            Columns as documented by the law (e.g. N, D).
        y : array_like, shape (n_points,)
            Observed losses (> 0).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``grid`` is not a finite (n_starts, n_params) array, or if the objective is
            NaN or infinite at every start (the law's prediction is not finite there).

        Warns
        -----
        ConvergenceWarning
            If a parameter of ``params_`` is not finite (its fitting-space value overflows,
            e.g. ``A = exp(a)`` with ``a > 709``), or if the best start did not converge.
        """
        self._validate_params()
        if type(self)._log_predict is ScalingLaw._log_predict:
            raise TypeError(f"{type(self).__name__} defines no law: fit ChinchillaLaw, "
                            "ForgettingLaw, FinetuningLaw or a CustomLaw")
        n_boot = self.n_bootstrap
        X = self._check_X(X, reset=True)
        y = self._check_losses(y, X)
        P = len(self.fit_param_names)
        if X.shape[0] < P + 1:
            raise ValueError(f"too few points: X has n_samples = {X.shape[0]}, the law has {P} "
                             f"parameters "
                             f"and needs at least {P + 1}")
        grid = self._default_grid() if self.grid is None else self._check_grid(P)
        F, z = self._features(X), np.log(y)
        fun_grad = self._objective(F, z)
        S = grid.shape[0]
        n_keep = max(int(np.ceil(self._keep_fraction * S)), self._min_keep)
        xs, fs, n_iters, conv = batched_lbfgs(fun_grad, grid, max_iter=self.max_iter,
                                             max_step=self._max_step,
                                             warm_iter=self._warm_iter, n_keep=n_keep)
        n_finite = int(np.isfinite(fs).sum())
        if n_finite == 0:
            raise ValueError(f"{type(self).__name__}: the objective is NaN or infinite at every "
                             f"one of the {S} starts of grid (the law's predicted log loss is "
                             f"not finite there): no fit; check grid and the law")

        def one(th):
            return (tuple(v[0] for v in fun_grad(th[None, :], np.zeros(1, int))))
        # polish the best few distinct end points with SciPy's L-BFGS-B (tight tolerances)
        order = np.argsort(fs)
        picked = []
        for i in order:
            if len(picked) == self._n_polish or not np.isfinite(fs[i]):
                break
            if all(np.max(np.abs(xs[i] - xs[j])) > 1e-6 for j in picked):
                picked.append(i)
        best, res = int(order[0]), None
        best_f, theta = fs[best], xs[best]
        for i in picked:
            r = polish(one, xs[i])
            if np.isfinite(r.fun) and np.all(np.isfinite(r.x)) and r.fun < best_f:
                best_f, theta, best, res = r.fun, r.x, int(i), r
        self.theta_ = np.asarray(theta, dtype=float)
        self.loss_ = float(best_f)
        self.start_losses_ = fs
        self.n_starts_ = grid.shape[0]
        self.n_iter_ = int(n_iters[best]) + (0 if res is None else int(res.nit))
        self.n_features_in_ = X.shape[1]
        with np.errstate(over="ignore"):
            self.params_ = self._natural(self.theta_)
        bad = [k for k, v in self.params_.items() if not np.isfinite(v)]
        if bad:
            warnings.warn(f"{type(self).__name__} fit is degenerate: parameter(s) "
                          f"{', '.join(bad)} of params_ are not finite (overflow of the "
                          f"fitting-space value {self.theta_}); {S - n_finite} of {S} starts had "
                          f"a non-finite objective", ConvergenceWarning)
        if res is not None and not res.success and not conv[best]:
            gmax = float(np.max(np.abs(res.jac)))
            warnings.warn(f"{type(self).__name__} fit did not converge: max |gradient| "
                          f"{gmax:.3g} at objective {self.loss_:.3g}", ConvergenceWarning)
        if self.verbose:
            print(f"{type(self).__name__}: best of {grid.shape[0]} starts, objective "
                  f"{self.loss_:.4g}, params {self.params_}")
        if n_boot:
            self._bootstrap(F, z, n_boot)
        return self

    def _bootstrap(self, F, z, n_boot):
        rng = np.random.default_rng(self.random_state)
        n = z.shape[0]
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n
        fun_grad = self._objective(F, z, weights=counts)
        xs, _, _, _ = batched_lbfgs(fun_grad, np.tile(self.theta_, (n_boot, 1)),
                                    max_iter=self.max_iter, max_step=self._max_step)
        nat = [self._natural(x) for x in xs]
        self.bootstrap_params_ = {k: np.array([d[k] for d in nat]) for k in self.params_}
        lo, hi = (1 - self.confidence) / 2, 1 - (1 - self.confidence) / 2
        self.params_ci_ = {k: (float(np.quantile(v, lo)), float(np.quantile(v, hi)))
                           for k, v in self.bootstrap_params_.items()}

    def predict(self, X):
        """Predicted loss.

        Parameters
        ----------
        X : array_like, shape (n_points, n_columns)
            Any array namespace, list or DataFrame.

        Returns
        -------
        y : array, shape (n_points,)
            In the namespace and on the device of ``X`` (NumPy for lists and DataFrames).
        """
        self._check_fitted()
        X_in = self._validate_X(X, reset=False)
        Xn = self._check_X(X_in, None)  # features compared above
        logp, _ = self._log_predict(self.theta_[None, :], self._features(Xn))
        return self._to_input_namespace(np.exp(logp[0]), X_in)

    def _check_losses(self, y, X):
        """Observed losses: finite, 1-D, one per row of the validated ``X``, all > 0."""
        y = self._validate_y(y, X)
        if np.any(y <= 0):
            raise ValueError("y (losses) must be > 0 everywhere, got minimum "
                             f"{float(y.min())}")
        return y

    def residuals(self, X, y):
        """Log-loss residuals ``log y_hat - log y``, shape (n_points,)."""
        self._check_fitted()
        X = self._check_X(X)
        y = self._check_losses(y, X)
        return np.log(np.asarray(to_numpy(self.predict(X)))) - np.log(y)

    def score(self, X, y):
        """R^2 of the predicted losses (scikit-learn convention).

        Parameters
        ----------
        X : array, shape (n_points, n_columns)
        y : array, shape (n_points,)

        Returns
        -------
        float
        """
        self._check_fitted()
        X = self._check_X(X)
        return super().score(X, self._check_losses(y, X))


def _check_positive_columns(X, names):
    for j, name in enumerate(names):
        col = X[:, j]
        if np.any(col <= 0):
            raise ValueError(f"X column {j} ({name}) must be > 0, got minimum "
                             f"{float(col.min())}")


class ChinchillaLaw(ScalingLaw):
    """``L(N, D) = E + A / N^alpha + B / D^beta`` (Hoffmann et al., 2022, Eq. 2).

    Fitted as ``log L = logsumexp(a - alpha log N, b - beta log D, e)`` with ``A = e^a``,
    ``B = e^b``, ``E = e^e``. The default grid is that of Hoffmann et al. and of the Epoch AI
    replication (Besiroglu et al., 2024): alpha, beta in {0, 0.5, ..., 2}, e in
    {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 4,500 starts.

    X columns: ``N`` (parameters), ``D`` (training tokens). ``params_`` keys: E, A, B, alpha,
    beta. See :class:`ScalingLaw` for the fitting parameters.
    """

    fit_param_names = ("a", "b", "e", "alpha", "beta")
    _n_columns = (2,)
    _column_doc = "N, D"

    def _default_grid(self):
        return make_grid(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                         np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5))

    def _check_X(self, X, reset=False):
        X = super()._check_X(X, reset)
        _check_positive_columns(X, ("N", "D"))
        return X

    def _features(self, X):
        return np.log(X)

    def _log_predict(self, theta, F):
        a, b, e, al, be = (theta[:, i:i + 1] for i in range(5))
        lN, lD = F[None, :, 0], F[None, :, 1]
        out, (w1, w2, w3) = _lse(a - al * lN, b - be * lD,
                                 np.broadcast_to(e, (theta.shape[0], F.shape[0])))
        return out, [w1, w2, w3, -w1 * lN, -w2 * lD]

    def _loss_grad(self, theta, F, z, w, delta, work):
        # fused pass: L = e^a N^-alpha + e^b D^-beta + e^e summed directly (no log-sum-exp
        # shift: exponents are clipped to +-700, reached only far from any fit, where the
        # line search rejects the trial point), the exponentials shared by loss and gradient,
        # all in reused buffers
        m, n = theta.shape[0], z.shape[0]
        if "lin" not in work:  # rows (1, -log N) and (1, -log D): t = [a, alpha] @ lin
            work["lin"] = (np.stack([np.ones(n), -F[:, 0]]), np.stack([np.ones(n), -F[:, 1]]))
        lin_n, lin_d = work["lin"]
        t_n, t_d, tot, r, c = _buffers(work, m, n, 5)
        for th, lin, t in ((theta[:, [0, 3]], lin_n, t_n), (theta[:, [1, 4]], lin_d, t_d)):
            np.matmul(th, lin, out=t)
            # exponents beyond +-700 are far from any fit (the trial step is rejected); the
            # clip keeps np.exp off its slow under/overflow path (ten to fifty times slower)
            np.clip(t, -700.0, 700.0, out=t)
            np.exp(t, out=t)
        ee = np.exp(theta[:, 2])
        np.add(t_n, t_d, out=tot)
        tot += ee[:, None]
        np.log(tot, out=r)
        r -= z
        f = _huber_parts(r, c, delta, w)
        c /= tot  # d huber / d (term k) = c * term_k / L
        t_n *= c
        t_d *= c
        g = np.empty((m, 5))
        g[:, [0, 3]] = t_n @ lin_n.T
        g[:, [1, 4]] = t_d @ lin_d.T
        g[:, 2] = ee * c.sum(axis=1)
        return f, g

    def _natural(self, theta):
        a, b, e, al, be = map(float, theta)
        return {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": al, "beta": be}


class ForgettingLaw(ScalingLaw):
    """Pretraining loss after finetuning with pretraining-data injection (Bethune et al., 2025,
    "Scaling laws for forgetting during finetuning with pretraining data injection"):

    ``L_pt(N, D, p) = L0(N) + A D^beta / ((1 + B p) N)^alpha``

    where ``N`` is the model size, ``D`` the finetuning tokens, ``p`` the fraction of
    pretraining data injected in the finetuning mixture and ``L0(N)`` the pretraining loss
    before finetuning. Injecting a fraction ``p`` acts like multiplying the parameter count by
    ``1 + B p``.

    Parameters
    ----------
    base_loss : {'power', 'given'}, default='power'
        ``'power'``: ``L0(N) = E + C / N^gamma`` is fitted too (X columns N, D, p).
        ``'given'``: X has a fourth column with the measured ``L0`` of each point.
    **kwargs
        Fitting parameters of :class:`ScalingLaw`.

    Notes
    -----
    Fitting space: ``a = log A``, ``b = log B``, ``alpha``, ``beta`` (and ``e = log E``,
    ``c = log C``, ``gamma`` for ``'power'``). ``params_`` keys: A, B, alpha, beta (and E, C,
    gamma).
    """

    _parameter_constraints: dict = {
        **ScalingLaw._parameter_constraints,
        "base_loss": [StrOptions({"power", "given"})],
    }

    def __init__(self, base_loss="power", *, delta=1e-3, grid=None, max_iter=200,
                 n_bootstrap=0, confidence=0.95, random_state=0, verbose=False):
        super().__init__(delta=delta, grid=grid, max_iter=max_iter, n_bootstrap=n_bootstrap,
                         confidence=confidence, random_state=random_state, verbose=verbose)
        self.base_loss = base_loss

    @property
    def fit_param_names(self):
        base = ("a", "b", "alpha", "beta")
        return base + (("e", "c", "gamma") if self.base_loss == "power" else ())

    @property
    def _n_columns(self):
        return (3,) if self.base_loss == "power" else (4,)

    @property
    def _column_doc(self):
        return "N, D, p" if self.base_loss == "power" else "N, D, p, L0"

    def _default_grid(self):
        axes = [np.array([-4.0, 0.0, 4.0, 8.0]), np.array([0.0, 3.0, 6.0, 9.0]),
                np.array([0.1, 0.5, 1.0]), np.array([0.1, 0.5, 1.0])]
        if self.base_loss == "power":
            axes += [np.array([-1.0, 0.0, 1.0]), np.array([0.0, 5.0, 10.0]),
                     np.array([0.2, 0.6])]
        return make_grid(*axes)

    def _check_X(self, X, reset=False):
        X = super()._check_X(X, reset)
        _check_positive_columns(X, ("N", "D"))
        p = X[:, 2]
        if np.any((p < 0) | (p > 1)):
            raise ValueError(f"X column 2 (p, the injected fraction) must be in [0, 1], got "
                             f"range [{p.min()}, {p.max()}]")
        if self.base_loss == "given":
            _check_positive_columns(X[:, 3:], ("L0",))
        return X

    def _log_predict(self, theta, F):
        lN, lD, p = (np.log(F[None, :, 0]), np.log(F[None, :, 1]), F[None, :, 2])
        a, b, al, be = (theta[:, i:i + 1] for i in range(4))
        Bp = np.exp(b) * p
        l1 = np.log1p(Bp)
        t_f = a + be * lD - al * (l1 + lN)
        S, n = theta.shape[0], F.shape[0]
        if self.base_loss == "power":
            e, c, ga = (theta[:, i:i + 1] for i in range(4, 7))
            out, w = _lse(t_f, np.broadcast_to(e, (S, n)), c - ga * lN)
        else:
            out, w = _lse(t_f, np.broadcast_to(np.log(F[None, :, 3]), (S, n)))
        wf = w[0]
        cols = [wf, wf * (-al) * Bp / (1.0 + Bp), -wf * (l1 + lN), wf * lD]
        if self.base_loss == "power":
            cols += [w[1], w[2], -w[2] * lN]
        return out, cols

    def _natural(self, theta):
        out = {"A": float(np.exp(theta[0])), "B": float(np.exp(theta[1])),
               "alpha": float(theta[2]), "beta": float(theta[3])}
        if self.base_loss == "power":
            out.update(E=float(np.exp(theta[4])), C=float(np.exp(theta[5])),
                       gamma=float(theta[6]))
        return out

    def base_loss_of(self, N):
        """Fitted ``L0(N) = E + C / N^gamma`` (``base_loss='power'``), shape of ``N``."""
        self._check_fitted()
        if self.base_loss != "power":
            raise ValueError("base_loss_of needs base_loss='power' (L0 was given as data)")
        N = np.asarray(N, dtype=float)
        return self.params_["E"] + self.params_["C"] / N ** self.params_["gamma"]


_FT_FORMS = ("additive", "additive_p", "multiplicative", "multiplicative_p")


class FinetuningLaw(ScalingLaw):
    """Finetuning (target-domain) loss as a function of model size, finetuning tokens and the
    injected pretraining fraction. Candidate forms:

    - ``'additive'``: ``E + A / N^alpha + B / D^beta`` (Chinchilla form in N and D);
    - ``'additive_p'``: ``(E + A / N^alpha + B / D^beta) (1 + C p)``;
    - ``'multiplicative'``: ``E + A / (N^alpha D^beta)``;
    - ``'multiplicative_p'``: ``(E + A / (N^alpha D^beta)) (1 + C p)``.

    Bethune et al. (2025) use a Chinchilla-like law; the exact form is not at hand, so the
    forms are compared by held-out error with :func:`compare_laws` (see the user guide for
    the choice made on the workbench study).

    Parameters
    ----------
    form : str, default='additive_p'
    **kwargs
        Fitting parameters of :class:`ScalingLaw`.

    Notes
    -----
    X columns: N, D, p. ``params_`` keys: E, A, alpha, beta, and B (additive forms), C
    (forms with ``_p``).
    """

    _parameter_constraints: dict = {
        **ScalingLaw._parameter_constraints,
        "form": [StrOptions(set(_FT_FORMS))],
    }

    def __init__(self, form="additive_p", *, delta=1e-3, grid=None, max_iter=200,
                 n_bootstrap=0, confidence=0.95, random_state=0, verbose=False):
        super().__init__(delta=delta, grid=grid, max_iter=max_iter, n_bootstrap=n_bootstrap,
                         confidence=confidence, random_state=random_state, verbose=verbose)
        self.form = form

    _n_columns = (3,)
    _column_doc = "N, D, p"

    @property
    def fit_param_names(self):
        names = ("a", "e", "alpha", "beta")
        if self.form.startswith("additive"):
            names += ("b",)
        if self.form.endswith("_p"):
            names += ("c",)
        return names

    def _default_grid(self):
        axes = [np.arange(0, 25, 5.0), np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.5, 1.0]),
                np.array([0.0, 0.5, 1.0])]
        if self.form.startswith("additive"):
            axes.append(np.arange(0, 25, 5.0))
        if self.form.endswith("_p"):
            axes.append(np.array([-4.0, 0.0, 2.0]))
        return make_grid(*axes)

    def _check_X(self, X, reset=False):
        X = super()._check_X(X, reset)
        _check_positive_columns(X, ("N", "D"))
        p = X[:, 2]
        if np.any((p < 0) | (p > 1)):
            raise ValueError(f"X column 2 (p, the injected fraction) must be in [0, 1], got "
                             f"range [{p.min()}, {p.max()}]")
        return X

    def _log_predict(self, theta, F):
        lN, lD, p = (np.log(F[None, :, 0]), np.log(F[None, :, 1]), F[None, :, 2])
        names = self.fit_param_names
        th = {k: theta[:, i:i + 1] for i, k in enumerate(names)}
        S, n = theta.shape[0], F.shape[0]
        e = np.broadcast_to(th["e"], (S, n))
        if self.form.startswith("additive"):
            out, w = _lse(th["a"] - th["alpha"] * lN, th["b"] - th["beta"] * lD, e)
        else:
            out, w = _lse(th["a"] - th["alpha"] * lN - th["beta"] * lD, e)
        jac = {"a": w[0], "e": w[-1], "alpha": -w[0] * lN}
        if self.form.startswith("additive"):
            jac.update(b=w[1], beta=-w[1] * lD)
        else:
            jac["beta"] = -w[0] * lD
        if self.form.endswith("_p"):
            Cp = np.exp(th["c"]) * p
            out = out + np.log1p(Cp)
            jac["c"] = np.broadcast_to(Cp / (1.0 + Cp), (S, n))
        return out, [jac[k] for k in names]

    def _natural(self, theta):
        th = dict(zip(self.fit_param_names, map(float, theta), strict=True))
        out = {"E": np.exp(th["e"]), "A": np.exp(th["a"]), "alpha": th["alpha"],
               "beta": th["beta"]}
        if "b" in th:
            out["B"] = np.exp(th["b"])
        if "c" in th:
            out["C"] = np.exp(th["c"])
        return out


class CustomLaw(ScalingLaw):
    """A user-defined law, fitted with the same robust machinery.

    Parameters
    ----------
    log_predict : callable
        ``log_predict(theta, X) -> log L`` with ``theta`` of shape (n_starts, n_params) and
        ``X`` of shape (n_points, n_columns), returning shape (n_starts, n_points): the
        predicted **log** loss for every parameter vector at once.
    param_names : sequence of str
        Names of the fitting-space parameters (keys of ``params_``).
    grid : ndarray, shape (n_starts, n_params)
        Starting points (required: there is no generic default).
    jac : callable, optional
        ``jac(theta, X) -> (n_starts, n_points, n_params)``; default: central finite
        differences (step ``1e-6``), vectorised over starts.
    positive_columns : sequence of int, default=()
        Columns of ``X`` that must be > 0.
    **kwargs
        Fitting parameters of :class:`ScalingLaw`.

    Examples
    --------
    A power law with an offset, ``L = E + A / N^alpha``:

    >>> def logf(th, X):
    ...     return np.logaddexp(th[:, :1], th[:, 1:2] - th[:, 2:3] * np.log(X[None, :, 0]))
    >>> law = CustomLaw(logf, ["e", "a", "alpha"], grid=make_grid([0, 1], [0, 5], [0.3, 1]))
    """

    _parameter_constraints: dict = {
        **ScalingLaw._parameter_constraints,
        "log_predict": [callable],
        "param_names": ["array-like"],
        "jac": [callable, None],
        "positive_columns": ["array-like"],
    }

    _expected_failed_checks: dict = {}  # any number of columns: every check applies

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = len(self.positive_columns) > 0
        return tags

    def __init__(self, log_predict, param_names, grid, *, jac=None, positive_columns=(),
                 delta=1e-3, max_iter=200, n_bootstrap=0, confidence=0.95, random_state=0,
                 verbose=False):
        super().__init__(delta=delta, grid=grid, max_iter=max_iter, n_bootstrap=n_bootstrap,
                         confidence=confidence, random_state=random_state, verbose=verbose)
        self.log_predict = log_predict
        self.param_names = param_names
        self.jac = jac
        self.positive_columns = positive_columns

    @property
    def fit_param_names(self):
        return tuple(self.param_names)

    @property
    def _block_elements(self):
        # central differences evaluate log_predict at 2 n_params + 1 points per start: smaller
        # blocks keep those temporaries in cache
        return 2 ** 15 if self.jac is not None else 2 ** 13

    def _default_grid(self):
        raise ValueError("grid is required for a CustomLaw")

    def _check_X(self, X, reset=False):
        if self.grid is None:
            raise ValueError("grid is required for a CustomLaw: (n_starts, n_params) array")
        X = super()._check_X(X, reset)
        for j in self.positive_columns:
            if not isinstance(j, numbers.Integral) or not 0 <= j < X.shape[1]:
                raise ValueError(f"positive_columns entry {j!r} is not a column of X")
        _check_positive_columns(X[:, list(self.positive_columns)],
                                [f"column {j}" for j in self.positive_columns])
        return X

    def _log_predict(self, theta, F):
        out = np.asarray(self.log_predict(theta, F), dtype=float)
        if out.shape != (theta.shape[0], F.shape[0]):
            raise ValueError(f"log_predict must return shape (n_starts, n_points) = "
                             f"{(theta.shape[0], F.shape[0])}, got {out.shape}")
        if self.jac is not None:
            j = np.asarray(self.jac(theta, F), dtype=float)
            return out, [j[..., i] for i in range(j.shape[-1])]
        h = 1e-6
        P = theta.shape[1]
        eye = np.eye(P) * h
        th2 = np.concatenate([theta[:, None, :] + eye[None], theta[:, None, :] - eye[None]],
                             axis=1).reshape(-1, P)
        vals = np.asarray(self.log_predict(th2, F), dtype=float).reshape(
            theta.shape[0], 2, P, F.shape[0])
        jac = (vals[:, 0] - vals[:, 1]) / (2 * h)
        return out, [jac[:, i] for i in range(P)]


def compare_laws(laws, X, y, *, groups=None, n_splits=5, random_state=0):
    """Held-out error of candidate laws (cross-validation).

    Parameters
    ----------
    laws : dict of str to ScalingLaw
        Unfitted estimators.
    X : array_like, shape (n_points, n_columns)
    y : array_like, shape (n_points,)
    groups : array_like of shape (n_points,), optional
        Leave-one-group-out splits (e.g. hold out each model size); default: ``n_splits``
        shuffled folds.
    n_splits : int, default=5
    random_state : int, default=0

    Returns
    -------
    results : dict of str to dict
        Per law: ``'rmse_log'`` (root mean squared held-out log-loss residual),
        ``'mae_rel'`` (mean absolute relative error of the held-out loss) and ``'fold_rmse'``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, LeaveOneGroupOut

    if not isinstance(laws, dict) or not all(isinstance(v, ScalingLaw) for v in laws.values()):
        raise TypeError(f"laws must be a dict of name: ScalingLaw, got {type(laws).__name__}")
    X = np.asarray(to_numpy(check_array(X, "X", ndim=2)), float)
    y = np.asarray(to_numpy(check_array(y, "y", ndim=1)), float)
    check_consistent_length(X, y, names=("X", "y"))
    if groups is not None:
        groups = np.asarray(to_numpy(check_array(groups, "groups", ndim=1, dtype=None)))
        check_consistent_length(X, groups, names=("X", "groups"))
        splits = list(LeaveOneGroupOut().split(X, y, groups))
    else:
        splits = list(KFold(check_int(n_splits, "n_splits", min_value=2), shuffle=True,
                            random_state=random_state).split(X))
    out = {}
    for name, law in laws.items():
        res, fold = [], []
        for tr, te in splits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = clone(law).fit(X[tr], y[tr])
            r = np.log(est.predict(X[te])) - np.log(y[te])
            res.append(r)
            fold.append(float(np.sqrt(np.mean(r ** 2))))
        r = np.concatenate(res)
        out[name] = {"rmse_log": float(np.sqrt(np.mean(r ** 2))),
                     "mae_rel": float(np.mean(np.abs(np.expm1(r)))), "fold_rmse": fold}
    return out
