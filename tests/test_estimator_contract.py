"""The one estimator contract (sciml_toolbox/_base.py), tested on every estimator.

``check_estimator`` for every estimator (the 3-D multiview models declare their input through
tags and run the data-free checks), the declared expected failures, pickling round trips, torch
in / torch out, pandas in / out, the ``history_`` schema and ``check_is_fitted``.

The estimators run with small ``max_iter`` / ``max_epochs`` / grids: a test-only configuration,
the defaults are unchanged.
"""

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_param_validation,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
)

from sciml_toolbox._base import HISTORY_KEYS, Estimator, expected_failed_checks
from sciml_toolbox.bilevel import BilevelLogisticRegressionCV, BilevelRidgeCV
from sciml_toolbox.multiview import MVICA, MVICAD, MVICAD2
from sciml_toolbox.scaling import (
    ChinchillaLaw,
    CustomLaw,
    FinetuningLaw,
    ForgettingLaw,
    make_grid,
)
from sciml_toolbox.stiefel import LandingCCA, LandingICA, generalized_eigh


def _tanh_law(theta, X):
    """log L = a + b tanh(x_0): a law defined for any X (picklable: module level)."""
    return theta[:, :1] + theta[:, 1:2] * np.tanh(X[None, :, 0])


# test-only configurations: small iteration counts and grids
ESTIMATORS_2D = {
    "LandingCCA": lambda: LandingCCA(n_components=1, max_epochs=2, batch_size=50,
                                     random_state=0),
    "LandingICA": lambda: LandingICA(n_components=1, max_epochs=2, batch_size=50,
                                     random_state=0),
    "BilevelRidgeCV": lambda: BilevelRidgeCV(max_iter=5, random_state=0),
    "BilevelLogisticRegressionCV": lambda: BilevelLogisticRegressionCV(max_iter=5,
                                                                       random_state=0),
    "ChinchillaLaw": lambda: ChinchillaLaw(grid=make_grid([0, 5], [0, 5], [0], [0.5], [0.5]),
                                           max_iter=20),
    "ForgettingLaw": lambda: ForgettingLaw(
        grid=make_grid([0], [0], [0.5], [0.5], [0], [0], [0.3]), max_iter=20),
    "FinetuningLaw": lambda: FinetuningLaw(grid=make_grid([0], [0], [0.5], [0.5], [0], [0]),
                                           max_iter=20),
    "CustomLaw": lambda: CustomLaw(_tanh_law, ["a", "b"], grid=make_grid([0], [0.5]),
                                   max_iter=20),
}
ESTIMATORS_3D = {
    "MVICA": lambda: MVICA(noise=0.1, max_iter=20, random_state=0),
    "MVICAD": lambda: MVICAD(noise=0.1, max_iter=20, n_concat=2, random_state=0),
    "MVICAD2": lambda: MVICAD2(noise=0.1, max_iter=20, n_concat=2, onset=50, random_state=0),
}
ALL = {**ESTIMATORS_2D, **ESTIMATORS_3D}

# the checks that each estimator cannot pass by design (declared on the classes, listed here
# again so that a change of either list is a visible decision)
_FIXED_COLUMNS = {
    "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimators_dtypes", "check_estimators_fit_returns_self", "check_estimators_nan_inf",
    "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample",
    "check_fit2d_predict1d", "check_fit_check_is_fitted", "check_fit_idempotent",
    "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_non_transformer_estimators_n_iter",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_regressor_data_not_an_array", "check_regressors_int",
    "check_regressors_no_decision_function", "check_regressors_train",
    "check_requires_y_none", "check_supervised_y_2d",
}
EXPECTED_FAILURES = {
    "LandingCCA": {"check_transformer_general", "check_transformer_data_not_an_array"},
    "LandingICA": set(),
    "BilevelRidgeCV": set(),
    "BilevelLogisticRegressionCV": set(),
    "ChinchillaLaw": _FIXED_COLUMNS,
    "ForgettingLaw": _FIXED_COLUMNS,
    "FinetuningLaw": _FIXED_COLUMNS,
    "CustomLaw": set(),
}


# ------------------------------------------------------------------ data
def _xy_regression(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    return X, y


def _chinchilla_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 9, n)
    D = 10 ** rng.uniform(9, 11, n)
    return np.c_[N, D], 1.7 + 400 / N ** 0.34 + 410 / D ** 0.28


def _data_for(name):
    """(fit args, predict/transform input) of one estimator: small, well-posed data."""
    rng = np.random.default_rng(0)
    if name in ESTIMATORS_3D:
        from sciml_toolbox.datasets import make_multiview_sources

        X = make_multiview_sources(3, 2, 200, n_concat=2, noise=0.01, onset=50,
                                   random_state=0).X
        return (X,), X
    if name == "LandingCCA":
        Z = rng.standard_normal((300, 2))
        X = np.c_[Z, rng.standard_normal((300, 2))]
        Y = np.c_[Z + 0.3 * rng.standard_normal((300, 2)), rng.standard_normal(300)]
        return (X, Y), X
    if name == "LandingICA":
        X = rng.laplace(size=(300, 3)) @ rng.standard_normal((3, 3))
        return (X,), X
    if name == "BilevelRidgeCV":
        X, y = _xy_regression()
        return (X, y), X
    if name == "BilevelLogisticRegressionCV":
        X, y = _xy_regression()
        return (X, (y > 0).astype(int)), X
    if name == "ForgettingLaw":
        Xc, y = _chinchilla_data()
        p = rng.uniform(0, 0.5, Xc.shape[0])
        return (np.c_[Xc, p], y * (1 + 0.1 * p)), np.c_[Xc, p]
    if name == "FinetuningLaw":
        Xc, y = _chinchilla_data()
        p = rng.uniform(0, 0.5, Xc.shape[0])
        return (np.c_[Xc, p], y * (1 + 0.1 * p)), np.c_[Xc, p]
    if name == "CustomLaw":
        X = rng.uniform(0.5, 2.0, (40, 1))
        return (X, np.exp(0.3 + 0.5 * np.tanh(X[:, 0]))), X
    Xc, y = _chinchilla_data()
    return (Xc, y), Xc


def _fit(name, *args):
    est = ALL[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args)


def _output(est, X):
    """The main output of a fitted estimator: ``transform`` for transformers, else
    ``predict``."""
    return est.transform(X) if hasattr(est, "transform") else est.predict(X)


# ------------------------------------------------------------------ check_estimator
def test_every_estimator_is_covered():
    """Every BaseEstimator subclass exported by the package is in this file's lists."""
    from sklearn.base import BaseEstimator

    import sciml_toolbox.bilevel as b
    import sciml_toolbox.multiview as m
    import sciml_toolbox.scaling as s
    import sciml_toolbox.stiefel as st

    found = {name for mod in (b, m, s, st) for name in mod.__all__
             if isinstance(getattr(mod, name), type)
             and issubclass(getattr(mod, name), BaseEstimator)
             and not getattr(mod, name).__name__ == "ScalingLaw"}
    assert found == set(ALL)
    for name in ALL:
        assert isinstance(ALL[name](), Estimator)


@pytest.mark.parametrize("name", sorted(ESTIMATORS_2D))
def test_check_estimator(name):
    est = ESTIMATORS_2D[name]()
    declared = expected_failed_checks(est)
    assert set(declared) == EXPECTED_FAILURES[name]
    assert all(isinstance(r, str) and r for r in declared.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, expected_failed_checks=declared, on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])[:300]) for r in results
              if r["status"] == "failed"]
    assert not failed
    # every declared failure does fail (a check that starts passing must leave the list)
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed == set(declared)
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API=1


@pytest.mark.parametrize("name", sorted(ESTIMATORS_3D))
def test_check_estimator_3d(name):
    """3-D input is declared by tags: check_estimator says so; the data-free checks run."""
    est = ESTIMATORS_3D[name]()
    tags = est.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array
    with pytest.warns(Warning, match="Can't test estimator"):
        results = check_estimator(est, on_fail=None)
    assert not [r for r in results if r["status"] == "failed"]
    for check in (check_estimator_cloneable, check_estimator_repr,
                  check_no_attributes_set_in_init, check_parameters_default_constructible,
                  check_get_params_invariance, check_set_params, check_mixin_order,
                  check_valid_tag_types, check_estimator_tags_renamed,
                  check_do_not_raise_errors_in_init_or_set_params, check_param_validation):
        check(name, est)


# ------------------------------------------------------------------ fitted state
@pytest.mark.parametrize("name", sorted(ALL))
def test_check_is_fitted_everywhere(name):
    args, X = _data_for(name)
    est = ALL[name]()
    for method in ("transform", "predict", "inverse_transform", "score", "get_feature_names_out"):
        if not hasattr(est, method):
            continue
        if method == "score":
            def call():
                return est.score(*args)
        elif method == "get_feature_names_out":
            call = est.get_feature_names_out
        else:
            def call(m=method):
                return getattr(est, m)(X)
        with pytest.raises(NotFittedError):
            call()
    est = _fit(name, *args)
    assert isinstance(est.n_iter_, int) and est.n_iter_ >= 0


@pytest.mark.parametrize("name", sorted(ALL))
def test_pickle_round_trip(name):
    args, X = _data_for(name)
    est = _fit(name, *args)
    est2 = pickle.loads(pickle.dumps(est))
    out, out2 = _output(est, X), _output(est2, X)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out2))
    if hasattr(est, "score"):
        assert est.score(*args) == est2.score(*args)


@pytest.mark.parametrize("name", sorted(ESTIMATORS_2D))
def test_output_in_the_input_namespace(name, xp):
    """NumPy in, NumPy out; torch in, torch out; array_api_strict in, array_api_strict out;
    same numbers as the NumPy fit."""
    from sciml_toolbox._array_api import get_namespace, namespace_name, to_numpy

    args, X = _data_for(name)
    ref = _output(_fit(name, *args), X)
    assert isinstance(ref, np.ndarray)
    est = _fit(name, *(xp.asarray(a) for a in args))
    Xx = xp.asarray(X)
    outs = [_output(est, Xx)]
    if hasattr(est, "predict_proba"):
        outs += [est.predict_proba(Xx), est.decision_function(Xx)]
    if hasattr(est, "inverse_transform"):
        outs.append(est.inverse_transform(outs[0]))
    for out in outs:
        assert namespace_name(get_namespace(out)) == namespace_name(xp)
    np.testing.assert_allclose(to_numpy(outs[0]), ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ESTIMATORS_3D))
def test_multiview_torch_in_torch_out(name):
    torch = pytest.importorskip("torch")
    args, X = _data_for(name)
    ref = _output(_fit(name, *args), X)
    est = _fit(name, torch.as_tensor(args[0]))
    out = _output(est, torch.as_tensor(X))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-8)
    assert isinstance(est.score(torch.as_tensor(X)), float)


@pytest.mark.filterwarnings("error::UserWarning")  # e.g. a feature-name mismatch
@pytest.mark.parametrize("name", sorted(ESTIMATORS_2D))
def test_pandas_in(name):
    """DataFrames (and a Series target) are accepted where scikit-learn accepts them, and
    give the same fit as the NumPy arrays; column names are recorded."""
    pd = pytest.importorskip("pandas")
    args, X = _data_for(name)
    cols = [f"c{i}" for i in range(X.shape[1])]
    Xdf = pd.DataFrame(X, columns=cols)
    rest = [pd.Series(a) if a.ndim == 1 else pd.DataFrame(a) for a in args[1:]]
    est = _fit(name, Xdf, *rest)
    assert list(est.feature_names_in_) == cols
    ref = _fit(name, *args)
    np.testing.assert_allclose(np.asarray(_output(est, Xdf)), np.asarray(_output(ref, X)))
    if not hasattr(est, "transform"):
        assert np.allclose(ref.predict(X.tolist()), ref.predict(X))  # lists too


@pytest.mark.parametrize("name", ["LandingCCA", "LandingICA"])
def test_set_output_pandas_and_feature_names(name):
    pd = pytest.importorskip("pandas")
    args, X = _data_for(name)
    est = _fit(name, *args)
    names = est.get_feature_names_out()
    prefix = name.lower()
    assert list(names) == [f"{prefix}{i}" for i in range(len(names))]
    est.set_output(transform="pandas")
    out = est.transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    est.set_output(transform="default")
    np.testing.assert_allclose(out.to_numpy(), est.transform(X))


@pytest.mark.parametrize("name", sorted(ESTIMATORS_3D))
def test_multiview_feature_names(name):
    args, X = _data_for(name)
    est = _fit(name, *args)
    prefix = name.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}{i}"
                                                 for i in range(est.n_components_)]


# ------------------------------------------------------------------ history_
def _check_schema(hist):
    assert set(HISTORY_KEYS) <= set(hist)
    lengths = {len(v) for v in hist.values() if isinstance(v, list)}
    assert len(lengths) == 1 and lengths.pop() >= 1
    assert all(isinstance(i, int) for i in hist["iteration"])
    assert hist["iteration"] == sorted(hist["iteration"])
    assert all(math.isfinite(v) for v in hist["loss"])
    assert all(v >= 0 for v in hist["constraint_violation"])
    # wall-clock seconds since the fit started, recorded at every iteration
    assert all(math.isfinite(t) and t >= 0 for t in hist["time"])
    assert hist["time"] == sorted(hist["time"])


@pytest.mark.parametrize("name", ["LandingCCA", "LandingICA", "BilevelRidgeCV",
                                  "BilevelLogisticRegressionCV", *sorted(ESTIMATORS_3D)])
def test_history_schema(name):
    args, X = _data_for(name)
    est = _fit(name, *args)
    _check_schema(est.history_)
    if "objective" in est.history_:  # older key kept, same numbers
        assert est.history_["loss"] == est.history_["objective"]
    if "val_loss" in est.history_:
        assert est.history_["loss"] == est.history_["val_loss"]
    if name in ESTIMATORS_3D:
        assert est.history_["loss"] == est.loss_history_
        assert len(est.history_["loss"]) == est.n_iter_


def test_history_constraint_violation_is_the_whitening_error():
    """LandingICA's last record equals ||W^T Cov(X) W - I||_F computed here from the fit."""
    args, X = _data_for("LandingICA")
    est = _fit("LandingICA", *args)
    Z = (X - X.mean(axis=0)) @ est.components_.T
    C = Z.T @ Z / X.shape[0]
    expected = np.linalg.norm(C - np.eye(C.shape[0]))
    np.testing.assert_allclose(est.history_["constraint_violation"][-1], expected, rtol=1e-10)


def test_generalized_eigh_history_schema():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((8, 8))
    A = M + M.T
    N = rng.standard_normal((8, 8))
    B = N @ N.T + 8 * np.eye(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, V, hist = generalized_eigh(A, B, 2, return_history=True, max_iter=50,
                                      random_state=0)
    core = {k: hist[k] for k in (*HISTORY_KEYS, "objective", "violation")}
    _check_schema(core)
    np.testing.assert_allclose(hist["constraint_violation"],
                               2 * np.sqrt(np.asarray(hist["violation"])), rtol=1e-12)
    assert hist["loss"] == hist["objective"]


# ------------------------------------------------------------------ parameters and errors
@pytest.mark.parametrize("name, bad", [
    ("LandingICA", {"batch_size": 0}), ("LandingCCA", {"reg": -1.0}),
    ("BilevelRidgeCV", {"alpha_init": 0.0}), ("ChinchillaLaw", {"confidence": 1.5}),
    ("MVICA", {"noise": -1.0}), ("MVICAD", {"max_shift": 0.5}),
    ("MVICAD2", {"max_dilation": 0.5}),
])
def test_parameters_checked_at_fit_by_the_table(name, bad):
    args, _ = _data_for(name)
    est = ALL[name]().set_params(**bad)  # the constructor stores, fit validates
    (param,) = bad
    with pytest.raises(ValueError, match=f"'{param}' parameter of {type(est).__name__}"):
        est.fit(*args)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("seed", range(4))
def test_landing_ica_rank_deficient_data_clear_error(order, seed):
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(300, 3))
    X = np.asarray(np.c_[S, S[:, :1] + S[:, 1:2]], order=order)  # rank 3, 4 features
    with pytest.raises(ValueError, match="exceeds the numerical rank 3"):
        LandingICA(random_state=seed, max_epochs=2).fit(X)
    LandingICA(n_components=3, random_state=seed, max_epochs=2).fit(X)  # within the rank


@pytest.mark.parametrize("which", ["X", "Y"])
def test_landing_cca_constant_view_raises(which):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((100, 3)), rng.standard_normal((100, 2))
    if which == "X":
        X = np.ones_like(X)
    else:
        Y = np.full_like(Y, 2.0)
    with pytest.raises(ValueError, match=f"{which} is constant"):
        LandingCCA(n_components=1, random_state=0).fit(X, Y)


# ------------------------------------------------------------------ new methods against truth
def test_landing_cca_inverse_transform_predict_score_against_least_squares():
    """With p = d_x the X variates span X: inverse_transform is exact; predict is the
    least-squares regression of Y on the X variates (numpy lstsq), score its R^2."""
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(1)
    Z = rng.standard_normal((400, 2))
    X = Z + 0.5 * rng.standard_normal((400, 2))
    Y = np.c_[Z @ rng.standard_normal((2, 2)), rng.standard_normal(400)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cca = LandingCCA(n_components=2, batch_size=None, max_epochs=200,
                         random_state=0).fit(X, Y)
    T, U = cca.transform(X, Y)
    Xr, Yr = cca.inverse_transform(T, U)
    np.testing.assert_allclose(Xr, X, atol=1e-10)
    Tc = np.c_[T, np.ones(len(T))]
    coef, *_ = np.linalg.lstsq(Tc, Y, rcond=None)
    np.testing.assert_allclose(cca.predict(X), Tc @ coef, atol=1e-10)
    assert cca.score(X, Y) == pytest.approx(r2_score(Y, Tc @ coef), abs=1e-12)


def test_mvica_score_against_naive_formula():
    """score = the mean log-likelihood of Richard et al. (2020, eq. 5) written out here."""
    from scipy.special import logsumexp

    args, X = _data_for("MVICA")
    est = _fit("MVICA", *args)
    m, k = est.unmixings_.shape[:2]
    Y = np.stack([est.unmixings_[i] @ est.projections_[i] @ (X[i] - est.means_[i])
                  for i in range(m)])
    Ybar = Y.mean(axis=0)
    T = X.shape[-1]
    sigma2 = est.noise
    logcosh = logsumexp(np.stack([Ybar, -Ybar]), axis=0) - np.log(2.0)
    ll = (-logcosh.sum() / T - ((Y - Ybar) ** 2).sum() / (2 * sigma2 * T)
          + sum(np.linalg.slogdet(est.unmixings_[i])[1] for i in range(m))
          - k * np.log(np.pi) - 0.5 * (m - 1) * k * np.log(2 * np.pi * sigma2)
          - 0.5 * k * np.log(m))
    assert est.score(X) == pytest.approx(ll, rel=1e-10)


def test_mvica_score_in_grid_search():
    """GridSearchCV runs on MVICA with its score (higher is better) and ranks the candidates
    by the scores of separately fitted models.

    scikit-learn's splitters index the first axis of X, which holds the subjects of the
    (m, p, T) input, so the folds here are given explicitly (all subjects in both): the test
    checks that the score plugs into model selection, not a cross-validation protocol.
    """
    from sklearn.model_selection import GridSearchCV

    from sciml_toolbox.datasets import make_multiview_sources

    X = make_multiview_sources(3, 2, 400, noise=0.5, random_state=0).X
    grid = [0.01, 1.0]
    search = GridSearchCV(MVICA(max_iter=50, random_state=0), {"noise": grid},
                          cv=[(np.arange(3), np.arange(3))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X)
        direct = [MVICA(noise=v, max_iter=50, random_state=0).fit(X).score(X) for v in grid]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], direct, rtol=1e-12)
    assert search.best_params_["noise"] == grid[int(np.argmax(direct))]


def test_clone_keeps_parameters_only():
    for name, make in ALL.items():
        est = make()
        c = clone(est)
        for key, value in est.get_params().items():
            assert c.get_params()[key] is value or np.array_equal(c.get_params()[key], value), (
                name, key)


def test_one_parameter_validation_path():
    """Only _base.py imports scikit-learn's private _param_validation; no estimator overrides
    the _validate_params that check_estimator's check_param_validation exercises."""
    from pathlib import Path

    import sciml_toolbox

    root = Path(sciml_toolbox.__file__).parent
    users = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                   if "_param_validation" in p.read_text(encoding="utf-8"))
    assert users == ["_base.py"]
    for make in ALL.values():
        cls = type(make())
        owner = next(k for k in cls.__mro__ if "_validate_params" in vars(k))
        assert owner.__module__.startswith("sklearn."), cls


def test_landing_cca_partial_fit_survives_pickling():
    """A LandingCCA pickled between partial_fit calls continues exactly as the original."""
    (X, Y), _ = _data_for("LandingCCA")
    est = LandingCCA(n_components=2, random_state=0)
    for s in range(0, 150, 50):
        est.partial_fit(X[s:s + 50], Y[s:s + 50])
    twin = pickle.loads(pickle.dumps(est))
    for e in (est, twin):
        e.partial_fit(X[150:200], Y[150:200])
    np.testing.assert_array_equal(est.transform(X), twin.transform(X))
    np.testing.assert_array_equal(est.predict(X), twin.predict(X))
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    assert est.history_["iteration"] == [1, 2, 3, 4] == twin.history_["iteration"]
