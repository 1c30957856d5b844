"""scikit-learn estimators that learn (per-feature) regularisation by hypergradient descent."""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import ShuffleSplit, check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import metadata_routing
from sklearn.utils.multiclass import check_classification_targets

from .._array_api import solve, to_numpy
from .._base import Estimator, Interval, StrOptions
from .._validation import check_array
from ._hypergradient import hypergradient, solve_inner
from ._problems import LogisticProblem, RidgeProblem

__all__ = ["BilevelRidgeCV", "BilevelLogisticRegressionCV"]

_METHODS = {"ift": "ift", "newton": "newton", "jacobi": "jacobi", "reparam": "reparam_diag"}


class _BilevelTuner(Estimator):
    """Hypergradient descent on log-regularisation weights, shared by the two tuners."""

    # validation data is passed to fit directly, never routed as metadata
    __metadata_request__fit = {"X_val": metadata_routing.UNUSED,
                               "y_val": metadata_routing.UNUSED}
    __metadata_request__score = {"sample_weight": metadata_routing.UNUSED}

    _parameter_constraints: dict = {
        "alpha_init": [Interval(Real, 0, None, closed="neither")],
        "per_feature": ["boolean"],
        "hypergradient": [StrOptions(set(_METHODS))],
        "cv": ["cv_object", None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "inner_tol": [Interval(Real, 0, None, closed="neither")],
        "tol_decay": [Interval(Real, 0, 1, closed="right")],
        "min_inner_tol": [Interval(Real, 0, None, closed="left")],
        "inner_max_iter": [Interval(Integral, 1, None, closed="left")],
        "inner_warm_start": ["boolean"],
        "solver": [StrOptions({"auto", "direct", "cg"})],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ---- subclasses --------------------------------------------------------------------------
    def _make_problem(self, Xtr, ytr, Xva, yva):
        raise NotImplementedError

    def _inner_method(self):
        raise NotImplementedError

    def _val_loss(self, prob, z, x):
        return float(prob.outer_value(z, x))

    # ---- fitting ----------------------------------------------------------------------------
    def _folds(self, X, y, X_val, y_val):
        if X_val is not None:
            return [(X, y, X_val, y_val)]
        if self.cv is None:
            splitter = ShuffleSplit(1, test_size=self.validation_fraction,
                                    random_state=self.random_state)
        else:
            splitter = check_cv(self.cv, to_numpy(y), classifier=isinstance(self, ClassifierMixin))
        Xn, yn = to_numpy(X), to_numpy(y)
        folds = []
        for tr, va in splitter.split(Xn, yn):
            folds.append((Xn[tr], yn[tr], Xn[va], yn[va]))
        return folds

    def _check_X_y(self, X, y, *, numeric, held_out):
        """Validated ``(X_in, X, y)``: ``X_in`` in the caller's namespace (for the outputs),
        ``X`` and ``y`` as float64 NumPy arrays for the solver (labels kept when not
        ``numeric``). ``held_out``: validation data are split off ``X``, which then needs at
        least 2 samples."""
        X_in = self._validate_X(X, reset=True, min_samples=2 if held_out else 1)
        y = self._validate_y(y, X_in, numeric=numeric)
        return X_in, np.asarray(to_numpy(X_in), dtype=np.float64), y

    def _check_X_predict(self, X):
        """Validated ``(X_in, X)`` for prediction: caller's namespace, float64 NumPy."""
        self._check_fitted()
        X_in = self._validate_X(X, reset=False)
        return X_in, np.asarray(to_numpy(X_in), dtype=np.float64)

    def _check_val(self, X, X_val, y_val):
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together")
        if X_val is None:
            return None, None
        X_val = check_array(X_val, "X_val", ndim=2)
        y_val = check_array(y_val, "y_val", ndim=1)
        if X_val.shape[1] != X.shape[1]:
            raise ValueError(
                f"X_val must have {X.shape[1]} features like X, got shape {tuple(X_val.shape)}"
            )
        if X_val.shape[0] != y_val.shape[0]:
            raise ValueError(
                f"X_val and y_val have inconsistent numbers of samples ({X_val.shape[0]} and "
                f"{y_val.shape[0]})"
            )
        return X_val, y_val

    def _tune(self, folds):
        t0 = time.perf_counter()
        method = _METHODS[self.hypergradient]
        probs = [self._make_problem(*f) for f in folds]
        solver = self.solver
        if solver == "auto":
            solver = "direct" if probs[0].n_inner <= 2000 else "cg"
        xp = probs[0]._xp
        p = probs[0].n_features
        q = p if self.per_feature else 1
        dtype, dev = xp.float64, None
        x = xp.full((q,), math.log(self.alpha_init), dtype=dtype)
        zs = [None] * len(probs)
        # inner tolerances relative to the gradient at z = 0 (scale-free)
        g0 = [float(xp.linalg.vector_norm(pr.inner_grad(
            xp.zeros(pr.n_inner, dtype=dtype, device=dev), x))) for pr in probs]
        m = xp.zeros_like(x)
        v = xp.zeros_like(x)
        b1, b2, eps = 0.9, 0.999, 1e-8
        hist = self._new_history("val_loss", "grad_norm", "inner_iter", "inner_tol")
        best, best_x = math.inf, x
        converged = False
        rel_change = math.inf
        for k in range(self.max_iter):
            rtol = max(self.inner_tol * self.tol_decay**k, self.min_inner_tol)
            grad = xp.zeros_like(x)
            loss = 0.0
            n_inner = 0
            for i, pr in enumerate(probs):
                z0 = zs[i] if self.inner_warm_start else None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    res = solve_inner(pr, x, z0, method=self._inner_method(),
                                      tol=rtol * g0[i], max_iter=self.inner_max_iter)
                zs[i] = res.z
                n_inner += res.n_iter
                loss += self._val_loss(pr, res.z, x) / len(probs)
                grad = grad + hypergradient(pr, res.z, x, method=method,
                                            solver=solver) / len(probs)
            gnorm = float(xp.linalg.vector_norm(grad))
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                raise FloatingPointError(
                    f"non-finite validation loss or hypergradient at iteration {k}; lower "
                    "learning_rate"
                )
            hist["iteration"].append(k + 1)
            hist["loss"].append(loss)
            hist["constraint_violation"].append(0.0)  # unconstrained log-penalties
            hist["val_loss"].append(loss)
            hist["grad_norm"].append(gnorm)
            hist["inner_iter"].append(n_inner)
            hist["inner_tol"].append(rtol)
            hist["time"].append(time.perf_counter() - t0)
            if loss < best:
                best, best_x = loss, x
            if self.verbose:
                print(f"[{type(self).__name__}] iter {k:4d} val_loss {loss:.6g} "
                      f"|grad| {gnorm:.3g} inner iters {n_inner}")
            w = self.n_iter_no_change
            if k >= w:
                ref = min(hist["val_loss"][: k - w + 1])
                rel_change = (ref - best) / max(abs(ref), 1e-300)
                if rel_change <= self.tol:
                    converged = True
                    break
            # Adam step on log-weights (Kingma & Ba, 2015)
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * grad * grad
            mh = m / (1 - b1 ** (k + 1))
            vh = v / (1 - b2 ** (k + 1))
            x = x - self.learning_rate * mh / (xp.sqrt(vh) + eps)
        if not converged:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter}; the best validation "
                f"loss still changed by {rel_change:.3g} (relative) over the last "
                f"{self.n_iter_no_change} iterations, more than tol={self.tol}",
                ConvergenceWarning,
            )
        # validation loss at the best weights with tightly solved inner problems
        exact = 0.0
        for pr, z0, g0i in zip(probs, zs, g0, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                z = solve_inner(pr, best_x, z0, method=self._inner_method(), tol=1e-10 * g0i,
                                max_iter=max(self.inner_max_iter, 1000)).z
            exact += self._val_loss(pr, z, best_x) / len(probs)
        best = exact
        self.n_iter_ = len(hist["val_loss"])
        self.history_ = hist
        x_np = to_numpy(best_x)
        if not self.per_feature:
            x_np = np.full(p, float(x_np[0]))
        return np.exp(x_np), best


class BilevelRidgeCV(RegressorMixin, _BilevelTuner):
    """Ridge regression with per-feature penalties tuned by hypergradient descent.

    Minimises the held-out squared error of ridge regression over the log of one penalty per
    feature (``per_feature=True``) or of a single penalty, with Adam steps on hypergradients
    computed from inexact inner solutions (warm-started conjugate gradients with a decreasing
    tolerance, as in HOAG; Pedregosa 2016). The hypergradient estimator is the plain implicit
    function theorem or its preconditioned / reparameterized variants of Ye, Peyre, Cremers &
    Ablin (2024); on ridge the Newton-preconditioned estimate is exact at any inner iterate.

    The penalty follows :class:`sklearn.linear_model.Ridge`: the model minimises
    ||y - X w||^2 + sum_i alpha_i w_i^2.

    Parameters
    ----------
    alpha_init : float, default=1.0
        Starting penalty (every feature).
    per_feature : bool, default=True
        Learn one penalty per feature; ``False`` learns a single scalar penalty.
    hypergradient : {'newton', 'ift', 'jacobi', 'reparam'}, default='newton'
        Estimator (``'reparam'`` is the diagonal rescaling ``reparam_diag``).
    cv : int, cross-validation generator or iterable, optional
        Splits used when no validation data is passed to ``fit``; the hypergradients of the
        folds are averaged. ``None`` holds out ``validation_fraction`` of the data once.
    validation_fraction : float, default=0.2
        Held-out fraction when ``cv=None`` and no validation data is given.
    max_iter : int, default=100
        Outer (hypergradient) iterations.
    learning_rate : float, default=0.2
        Adam step size on the log-penalties.
    inner_tol : float, default=1e-2
        Initial inner tolerance, relative to ||grad G(0)||.
    tol_decay : float, default=0.8
        The inner tolerance is multiplied by this at every outer iteration ...
    min_inner_tol : float, default=1e-8
        ... down to this floor.
    inner_max_iter : int, default=1000
    inner_warm_start : bool, default=True
        Start each inner solve from the previous outer iteration's solution.
    solver : {'auto', 'cg', 'direct'}, default='auto'
        Linear solves inside the hypergradient: dense ('direct', chosen by 'auto' up to 2000
        features) or conjugate gradients.
    fit_intercept : bool, default=True
        Centre X and y on the training folds (the intercept is not penalised).
    tol : float, default=1e-4
        Stop when the best validation loss improved by less than this (relative) over the last
        ``n_iter_no_change`` iterations.
    n_iter_no_change : int, default=10
    random_state : int, RandomState or None, default=None
        Shuffling of the held-out split when ``cv=None``.
    verbose : int, default=0

    Attributes
    ----------
    alpha_ : ndarray of shape (n_features,)
        Learned penalties (the best iterate on the validation loss).
    coef_ : ndarray of shape (n_features,)
        Ridge coefficients refitted on all of ``X`` with ``alpha_``.
    intercept_ : float
    best_score_ : float
        Negative mean squared error on the validation data (averaged over folds) at ``alpha_``,
        with the inner problems solved to a relative gradient norm of 1e-10.
    history_ : dict of lists
        Per outer iteration, the common keys of the :ref:`estimator conventions
        <conventions>`: ``iteration``, ``loss`` (the validation loss, same as ``val_loss``),
        ``constraint_violation`` (always 0: the log-penalties are unconstrained), ``time``
        (seconds since the start of tuning, including the set-up of the problems); and
        ``val_loss`` (half mean squared error), ``grad_norm``, ``inner_iter``, ``inner_tol``.
    n_iter_ : int
    n_features_in_ : int

    References
    ----------
    Ye, Peyre, Cremers & Ablin (2024), "Enhancing hypergradients estimation: a study of
    preconditioning and reparameterization", AISTATS. Pedregosa (2016), "Hyperparameter
    optimization with approximate gradient", ICML.
    """

    def __init__(self, alpha_init=1.0, *, per_feature=True, hypergradient="newton", cv=None,
                 validation_fraction=0.2, max_iter=100, learning_rate=0.2, inner_tol=1e-2,
                 tol_decay=0.8, min_inner_tol=1e-8, inner_max_iter=1000, inner_warm_start=True,
                 solver="auto", fit_intercept=True, tol=1e-4, n_iter_no_change=10,
                 random_state=None, verbose=0):
        self.alpha_init = alpha_init
        self.per_feature = per_feature
        self.hypergradient = hypergradient
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.inner_tol = inner_tol
        self.tol_decay = tol_decay
        self.min_inner_tol = min_inner_tol
        self.inner_max_iter = inner_max_iter
        self.inner_warm_start = inner_warm_start
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def _inner_method(self):
        return "cg"

    def _center(self, X, y):
        if not self.fit_intercept:
            return X, y, 0.0, 0.0
        xm, ym = X.mean(axis=0), y.mean()
        return X - xm, y - ym, xm, ym

    def _make_problem(self, Xtr, ytr, Xva, yva):
        Xc, yc, xm, ym = self._center(Xtr, ytr)
        return RidgeProblem(Xc, yc, Xva - xm, yva - ym, per_feature=self.per_feature,
                            reg_scale=1.0 / Xtr.shape[0])

    def fit(self, X, y, X_val=None, y_val=None):
        """Tune the penalties on validation data (or folds) and refit on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        X_val : array-like of shape (n_val, n_features), optional
            Validation data; when omitted, ``cv`` / ``validation_fraction`` split ``X``.
        y_val : array-like of shape (n_val,), optional

        Returns
        -------
        self : BilevelRidgeCV
        """
        self._validate_params()
        _, X, y = self._check_X_y(X, y, numeric=True, held_out=X_val is None)
        X_val, y_val = self._check_val(X, X_val, y_val)
        if X_val is not None:
            X_val, y_val = np.asarray(to_numpy(X_val), float), np.asarray(to_numpy(y_val), float)
        self.alpha_, best = self._tune(self._folds(X, y, X_val, y_val))
        self.best_score_ = -2.0 * best
        Xc, yc, xm, ym = self._center(X, y)
        H = Xc.T @ Xc + np.diag(self.alpha_)
        self.coef_ = solve(H, Xc.T @ yc)
        self.intercept_ = float(ym - xm @ self.coef_) if self.fit_intercept else 0.0
        return self

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of the predictions on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import r2_score

        return float(r2_score(to_numpy(y), to_numpy(self.predict(X)),
                              sample_weight=_host(sample_weight)))

    def predict(self, X):
        """Predictions ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, torch, ... (computed on the host in float64).

        Returns
        -------
        y_pred : array of shape (n_samples,)
            In the namespace, on the device and in the floating dtype of ``X`` (NumPy for
            lists and DataFrames).
        """
        X_in, X = self._check_X_predict(X)
        return self._to_input_namespace(X @ self.coef_ + self.intercept_, X_in)


class BilevelLogisticRegressionCV(ClassifierMixin, _BilevelTuner):
    """Binary logistic regression with per-feature penalties tuned by hypergradient descent.

    Minimises the held-out logistic loss over the log of one L2 penalty per feature (or of a
    single one) with Adam steps on hypergradients from inexact, warm-started inner solutions
    (Newton's method or gradient descent with a decreasing tolerance). Estimators as in
    :class:`BilevelRidgeCV` (Ye, Peyre, Cremers & Ablin, 2024).

    The model minimises sum_j log(1 + exp(-y_j (x_j^T w + b))) + 1/2 sum_i alpha_i w_i^2,
    i.e. ``alpha_i = 1 / C`` in :class:`sklearn.linear_model.LogisticRegression` terms; the
    intercept is not penalised.

    Parameters
    ----------
    alpha_init : float, default=1.0
    per_feature : bool, default=True
    hypergradient : {'newton', 'ift', 'jacobi', 'reparam'}, default='newton'
    cv : int, cross-validation generator or iterable, optional
        Stratified folds for an int.
    validation_fraction : float, default=0.2
    max_iter : int, default=100
    learning_rate : float, default=0.2
    inner_tol : float, default=1e-2
        Initial inner tolerance relative to ||grad G(0)||.
    tol_decay : float, default=0.8
    min_inner_tol : float, default=1e-8
    inner_max_iter : int, default=1000
    inner_warm_start : bool, default=True
    inner_solver : {'newton', 'gd'}, default='newton'
    solver : {'auto', 'cg', 'direct'}, default='auto'
    fit_intercept : bool, default=True
    tol : float, default=1e-4
    n_iter_no_change : int, default=10
    random_state : int, RandomState or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    alpha_ : ndarray of shape (n_features,)
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    best_score_ : float
        Negative validation log-loss at ``alpha_`` (averaged over folds), with the inner
        problems solved to a relative gradient norm of 1e-10.
    history_ : dict of lists
        As for :class:`BilevelRidgeCV`, with ``val_loss`` (and ``loss``) the log-loss.
    n_iter_ : int
    n_features_in_ : int
    """

    _parameter_constraints: dict = {
        **_BilevelTuner._parameter_constraints,
        "inner_solver": [StrOptions({"newton", "gd"})],
    }

    def __init__(self, alpha_init=1.0, *, per_feature=True, hypergradient="newton", cv=None,
                 validation_fraction=0.2, max_iter=100, learning_rate=0.2, inner_tol=1e-2,
                 tol_decay=0.8, min_inner_tol=1e-8, inner_max_iter=1000, inner_warm_start=True,
                 inner_solver="newton", solver="auto", fit_intercept=True, tol=1e-4,
                 n_iter_no_change=10, random_state=None, verbose=0):
        self.alpha_init = alpha_init
        self.per_feature = per_feature
        self.hypergradient = hypergradient
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.inner_tol = inner_tol
        self.tol_decay = tol_decay
        self.min_inner_tol = min_inner_tol
        self.inner_max_iter = inner_max_iter
        self.inner_warm_start = inner_warm_start
        self.inner_solver = inner_solver
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary logistic regression only
        return tags

    def _inner_method(self):
        return self.inner_solver

    def _make_problem(self, Xtr, ytr, Xva, yva):
        return LogisticProblem(Xtr, ytr, Xva, yva, per_feature=self.per_feature,
                               reg_scale=1.0 / Xtr.shape[0], fit_intercept=self.fit_intercept)

    def fit(self, X, y, X_val=None, y_val=None):
        """Tune the penalties on validation data (or folds) and refit on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes.
        X_val : array-like of shape (n_val, n_features), optional
        y_val : array-like of shape (n_val,), optional
            Labels among the classes of ``y``.

        Returns
        -------
        self : BilevelLogisticRegressionCV
        """
        self._validate_params()
        _, X, y = self._check_X_y(X, y, numeric=False, held_out=X_val is None)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        if self.classes_.shape[0] < 2:
            raise ValueError("y must hold two classes, got 1 class")
        if self.classes_.shape[0] != 2:
            raise ValueError(
                "Only binary classification is supported: y must hold exactly two classes, "
                f"got {self.classes_.shape[0]}"
            )
        yb = enc.transform(y).astype(float)
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together")
        if X_val is not None:
            y_val = np.asarray(to_numpy(y_val))
            if y_val.ndim != 1:
                raise ValueError(f"y_val must be a 1-D array, got shape {y_val.shape}")
            if not np.isin(y_val, self.classes_).all():
                raise ValueError("y_val must hold labels among the classes of y")
            y_val = enc.transform(y_val).astype(float)
        X_val, y_val = self._check_val(X, X_val, y_val)
        if X_val is not None:
            X_val = np.asarray(to_numpy(X_val), float)
        self.alpha_, best = self._tune(self._folds(X, yb, X_val, y_val))
        self.best_score_ = -best
        prob = LogisticProblem(X, yb, X[:1], yb[:1], reg_scale=1.0 / X.shape[0],
                               fit_intercept=self.fit_intercept)
        res = solve_inner(prob, np.log(self.alpha_), None, method="newton", tol=1e-10,
                          max_iter=200)
        z = to_numpy(res.z)
        p = X.shape[1]
        self.coef_ = z[None, :p]
        self.intercept_ = z[p:] if self.fit_intercept else np.zeros(1)
        return self

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(to_numpy(y), to_numpy(self.predict(X)),
                                    sample_weight=_host(sample_weight)))

    def _decision(self, X):
        X_in, X = self._check_X_predict(X)
        return X_in, X @ self.coef_[0] + self.intercept_[0]

    def decision_function(self, X):
        """Signed scores ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : array of shape (n_samples,)
            In the namespace and on the device of ``X`` (NumPy for lists and DataFrames).
        """
        X_in, s = self._decision(X)
        return self._to_input_namespace(s, X_in)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : array of shape (n_samples, 2)
            Columns ordered as ``classes_``; namespace and device of ``X``.
        """
        X_in, s = self._decision(X)
        p1 = 1.0 / (1.0 + np.exp(-s))
        return self._to_input_namespace(np.stack([1.0 - p1, p1], axis=1), X_in)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : array of shape (n_samples,)
            Entries of ``classes_``: in the namespace and on the device of ``X`` when the
            labels are numbers, a NumPy array otherwise (string labels).
        """
        X_in, s = self._decision(X)
        labels = self.classes_[(s > 0).astype(int)]
        if labels.dtype.kind not in "biuf":
            return labels
        return self._to_input_namespace(labels, X_in)


def _host(a):
    """``a`` as a NumPy array (``None`` stays ``None``)."""
    return None if a is None else np.asarray(to_numpy(a))
