"""Tuners: against RidgeCV / LogisticRegressionCV on real data, attributes, bad input."""

import functools
import inspect
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV, Ridge, RidgeCV
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sciml_toolbox.bilevel import BilevelLogisticRegressionCV, BilevelRidgeCV


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _diabetes(seed):
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=seed)


def _cancer(seed):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xva), ytr, yva


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("per_feature", [True, False])
def test_ridge_beats_ridgecv_on_diabetes(seed, per_feature):
    Xtr, Xva, ytr, yva = _diabetes(seed)
    rc = RidgeCV(alphas=np.logspace(-6, 6, 100)).fit(Xtr, ytr)
    mse_rc = np.mean((rc.predict(Xva) - yva) ** 2)
    est = BilevelRidgeCV(per_feature=per_feature).fit(Xtr, ytr, Xva, yva)
    mse = np.mean((est.predict(Xva) - yva) ** 2)
    assert mse <= mse_rc * (1 + 1e-6)
    # the refit model is plain sklearn Ridge with the learned penalties (scalar case)
    if not per_feature:
        ref = Ridge(alpha=est.alpha_[0]).fit(Xtr, ytr)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-6)
        np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-6)
    # best_score_ is the negative validation MSE of the best iterate
    np.testing.assert_allclose(-est.best_score_, mse, rtol=1e-3)


def test_ridge_per_feature_refit_matches_closed_form():
    Xtr, Xva, ytr, yva = _diabetes(0)
    est = BilevelRidgeCV(max_iter=20).fit(Xtr, ytr, Xva, yva)
    Xc = Xtr - Xtr.mean(0)
    w = np.linalg.solve(Xc.T @ Xc + np.diag(est.alpha_), Xc.T @ (ytr - ytr.mean()))
    np.testing.assert_allclose(est.coef_, w, rtol=1e-8)


@functools.lru_cache
def _lrcv_loss(seed):
    Xtr, Xva, ytr, yva = _cancer(seed)
    # scikit-learn >= 1.8 warns unless the new attribute layout is chosen; older versions
    # (make test-min) neither know nor need the two arguments
    new_api = "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters
    extra = {"l1_ratios": (0.0,), "use_legacy_attributes": False} if new_api else {}
    lc = LogisticRegressionCV(Cs=20, solver="newton-cholesky", scoring="neg_log_loss",
                              **extra).fit(Xtr, ytr)
    return log_loss(yva, lc.predict_proba(Xva))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("per_feature", [True, False])
def test_logistic_beats_logisticregressioncv_on_breast_cancer(seed, per_feature):
    Xtr, Xva, ytr, yva = _cancer(seed)
    ll_lc = _lrcv_loss(seed)
    est = BilevelLogisticRegressionCV(per_feature=per_feature, max_iter=60).fit(
        Xtr, ytr, Xva, yva)
    ll = log_loss(yva, est.predict_proba(Xva))
    assert ll <= ll_lc * (1 + 1e-6)
    np.testing.assert_allclose(-est.best_score_, ll, rtol=1e-3)


def test_logistic_scalar_refit_matches_sklearn():
    Xtr, Xva, ytr, yva = _cancer(0)
    est = BilevelLogisticRegressionCV(per_feature=False, max_iter=15).fit(Xtr, ytr, Xva, yva)
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=1.0 / est.alpha_[0], tol=1e-12, max_iter=10000).fit(Xtr, ytr)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(est.predict_proba(Xva), ref.predict_proba(Xva), atol=1e-6)
    assert est.score(Xva, yva) == pytest.approx(ref.score(Xva, yva))


@pytest.mark.parametrize("hg", ["ift", "newton", "jacobi", "reparam"])
def test_every_hypergradient_option_runs(hg):
    Xtr, Xva, ytr, yva = _diabetes(2)
    est = BilevelRidgeCV(hypergradient=hg, max_iter=30).fit(Xtr, ytr, Xva, yva)
    assert est.alpha_.shape == (Xtr.shape[1],) and np.all(est.alpha_ > 0)
    assert est.history_["val_loss"][-1] < est.history_["val_loss"][0]
    Xtr, Xva, ytr, yva = _cancer(2)
    clf = BilevelLogisticRegressionCV(hypergradient=hg, max_iter=10).fit(Xtr, ytr, Xva, yva)
    assert clf.coef_.shape == (1, Xtr.shape[1]) and clf.intercept_.shape == (1,)


def test_cv_splitter_and_attributes():
    X, y = load_diabetes(return_X_y=True)
    est = BilevelRidgeCV(cv=3, max_iter=15, per_feature=False).fit(X, y)
    assert np.all(est.alpha_ == est.alpha_[0])
    assert len(est.history_["val_loss"]) == est.n_iter_ <= 15
    assert set(est.history_) == {"val_loss", "grad_norm", "inner_iter", "inner_tol", "time",
                                 "iteration", "loss", "constraint_violation"}
    assert est.n_features_in_ == X.shape[1]
    # decreasing inner tolerance schedule
    tols = est.history_["inner_tol"]
    assert all(a >= b for a, b in zip(tols, tols[1:], strict=False))
    est2 = BilevelRidgeCV(max_iter=5, random_state=0).fit(X, y)  # held-out split
    assert est2.predict(X).shape == (X.shape[0],)


def test_classifier_string_labels_and_proba():
    Xtr, Xva, ytr, yva = _cancer(0)
    names = np.array(["benign", "malignant"])
    clf = BilevelLogisticRegressionCV(max_iter=5, cv=3).fit(Xtr, names[ytr])
    assert list(clf.classes_) == ["benign", "malignant"]
    P = clf.predict_proba(Xva)
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert set(clf.predict(Xva)) <= set(names)


def test_convergence_warning_names_tolerance():
    Xtr, Xva, ytr, yva = _diabetes(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="tol"):
            BilevelRidgeCV(max_iter=12, tol=0.0).fit(Xtr, ytr, Xva, yva)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_bad_validation_shape():
    Xtr, Xva, ytr, yva = _diabetes(0)
    with pytest.raises(ValueError, match="X_val"):
        BilevelRidgeCV().fit(Xtr, ytr, Xva[:, :3], yva)
    with pytest.raises(ValueError, match="X_val"):
        BilevelRidgeCV().fit(Xtr, ytr, Xva, yva[:4])
    with pytest.raises(ValueError, match="X_val"):
        BilevelRidgeCV().fit(Xtr, ytr, Xva)


def test_bad_nonfinite_input():
    Xtr, Xva, ytr, yva = _diabetes(0)
    Xbad = Xtr.copy()
    Xbad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BilevelRidgeCV().fit(Xbad, ytr)
    Xvb = Xva.copy()
    Xvb[1, 1] = np.inf
    with pytest.raises(ValueError, match="X_val"):
        BilevelRidgeCV().fit(Xtr, ytr, Xvb, yva)


def test_bad_negative_tolerances():
    Xtr, Xva, ytr, yva = _diabetes(0)
    with pytest.raises(ValueError, match="inner_tol"):
        BilevelRidgeCV(inner_tol=-1e-3).fit(Xtr, ytr, Xva, yva)
    with pytest.raises(ValueError, match="'tol'"):
        BilevelRidgeCV(tol=-1.0).fit(Xtr, ytr, Xva, yva)


def test_bad_options():
    Xtr, Xva, ytr, yva = _diabetes(0)
    with pytest.raises(ValueError, match="hypergradient"):
        BilevelRidgeCV(hypergradient="exact").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="learning_rate"):
        BilevelRidgeCV(learning_rate=0.0).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="alpha_init"):
        BilevelRidgeCV(alpha_init=-1.0).fit(Xtr, ytr)


def test_bad_classifier_labels():
    Xtr, Xva, ytr, yva = _cancer(0)
    y3 = ytr.copy()
    y3[:5] = 2
    with pytest.raises(ValueError, match="two classes"):
        BilevelLogisticRegressionCV().fit(Xtr, y3)
    with pytest.raises(ValueError, match="y_val"):
        BilevelLogisticRegressionCV().fit(Xtr, ytr, Xva, yva + 5)


