"""API of the multi-view ICA estimators: namespaces, shapes, round trips, bad input, sklearn."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from sciml_toolbox._array_api import from_numpy, get_namespace, namespace_name, to_numpy
from sciml_toolbox.datasets import make_multiview_sources
from sciml_toolbox.multiview import MVICA, MVICAD, MVICAD2, amari_distance

ESTIMATORS = [MVICA, MVICAD, MVICAD2]


@pytest.fixture(scope="module")
def small():
    return make_multiview_sources(3, 2, 200, n_concat=2, noise=0.01, onset=50, random_state=0)


def _make(cls, **kw):
    base = dict(noise=0.1, random_state=0, max_iter=200)
    if cls is not MVICA:
        base.update(n_concat=2)
    if cls is MVICAD2:
        base.update(onset=50)
    base.update(kw)
    return cls(**base)


_NUMPY_FITS = {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_in_every_namespace(xp, cls, small):
    like = xp.asarray([0.0], dtype=xp.float64)
    X = from_numpy(small.X, like)
    est = _make(cls, max_iter=30).fit(X)
    if cls not in _NUMPY_FITS:
        _NUMPY_FITS[cls] = _make(cls, max_iter=30).fit(small.X)
    ref = _NUMPY_FITS[cls]
    for name in ("components_", "mixings_", "unmixings_", "projections_", "dilations_",
                 "shifts_", "sources_"):
        value = getattr(est, name)
        assert namespace_name(get_namespace(value)) == namespace_name(xp)
        np.testing.assert_allclose(to_numpy(value), to_numpy(getattr(ref, name)), atol=1e-6)
    S = est.transform(X)
    assert S.shape == (3, 2, 400)
    assert namespace_name(get_namespace(S)) == namespace_name(xp)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shapes_and_round_trip(cls, small):
    X = small.X.copy()
    est = _make(cls).fit(X)
    np.testing.assert_array_equal(X, small.X)  # input untouched
    assert est.components_.shape == (3, 2, 2)
    assert est.mixings_.shape == (3, 2, 2)
    assert est.unmixings_.shape == (3, 2, 2)
    assert est.dilations_.shape == est.shifts_.shape == (3, 2)
    assert est.sources_.shape == (2, 400)
    assert est.n_iter_ >= 1 and len(est.loss_history_) == est.n_iter_
    S = est.transform(X)
    np.testing.assert_allclose(est.inverse_transform(S), X, atol=1e-8)
    assert amari_distance(est.components_, small.mixings) < 0.1


def test_mvica_has_no_warps(small):
    est = _make(MVICA).fit(small.X)
    np.testing.assert_array_equal(est.dilations_, 1.0)
    np.testing.assert_array_equal(est.shifts_, 0.0)
    est = _make(MVICAD).fit(small.X)
    np.testing.assert_array_equal(est.dilations_, 1.0)


def test_list_input_with_different_channel_counts():
    d = make_multiview_sources(3, 2, 200, n_concat=2, n_channels=5, random_state=1, onset=50)
    views = [d.X[0], d.X[1][:4], d.X[2][:3]]
    est = _make(MVICAD2, n_components=2).fit(views)
    assert isinstance(est.components_, list)
    assert [c.shape for c in est.components_] == [(2, 5), (2, 4), (2, 3)]
    back = est.inverse_transform(est.transform(views))
    assert [b.shape for b in back] == [(5, 400), (4, 400), (3, 400)]


def test_shared_sources_inverse_transform(small):
    est = _make(MVICAD2).fit(small.X)
    X_hat = est.inverse_transform(est.sources_)
    assert X_hat.shape == small.X.shape
    # the shared sources explain the data of every subject
    resid = np.linalg.norm(X_hat - small.X) / np.linalg.norm(small.X - small.X.mean(-1,
                                                                                     keepdims=True))
    assert resid < 0.3


def test_groupica_init_and_array_init(small):
    g = _make(MVICA, init="groupica", max_iter=0).fit(small.X)
    assert g.n_iter_ == 0
    est = _make(MVICA, init=g.unmixings_).fit(small.X)
    assert amari_distance(est.components_, small.mixings) < 0.1


def test_convergence_warning(small):
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        _make(MVICAD2, max_iter=1, tol=1e-12).fit(small.X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sklearn_conventions(cls):
    name = cls.__name__
    check_parameters_default_constructible(name, cls())
    check_no_attributes_set_in_init(name, cls())
    check_get_params_invariance(name, cls())
    check_set_params(name, cls())
    assert clone(cls(n_components=3)).get_params()["n_components"] == 3


# ------------------------------------------------------------------------- bad input
def test_bad_nan(small):
    X = small.X.copy()
    X[1, 0, 5] = np.nan
    with pytest.raises(ValueError, match="X"):
        MVICAD2().fit(X)


def test_bad_inf(small):
    X = small.X.copy()
    X[0, 1, 3] = np.inf
    with pytest.raises(ValueError, match="finite"):
        MVICA().fit(X)


def test_bad_mismatched_n_times(small):
    with pytest.raises(ValueError, match="same number of samples"):
        MVICA().fit([small.X[0], small.X[1][:, :300], small.X[2]])


def test_bad_n_components_above_rank(small):
    with pytest.raises(ValueError, match="n_components"):
        MVICA(n_components=3).fit(small.X)


def test_bad_rank_deficient():
    d = make_multiview_sources(3, 2, 200, n_channels=4, onset=50, random_state=0)
    X = d.X.copy()  # 4 channels but rank 2
    with pytest.raises(ValueError, match="rank"):
        MVICA(n_components=3).fit(X)


def test_bad_max_dilation(small):
    with pytest.raises(ValueError, match="max_dilation"):
        MVICAD2(max_dilation=0.9, n_concat=2).fit(small.X)


def test_bad_max_shift(small):
    with pytest.raises(ValueError, match="max_shift"):
        MVICAD(max_shift=-0.1, n_concat=2).fit(small.X)


def test_bad_n_concat(small):
    with pytest.raises(ValueError, match="n_concat"):
        MVICAD2(n_concat=3).fit(small.X)


def test_bad_onset(small):
    with pytest.raises(ValueError, match="onset"):
        MVICAD2(n_concat=2, onset=200).fit(small.X)


def test_bad_init(small):
    with pytest.raises(ValueError, match="init"):
        MVICA(init="random").fit(small.X)
    with pytest.raises(ValueError, match="init"):
        MVICA(init=np.eye(2)).fit(small.X)


def test_bad_smoothing(small):
    with pytest.raises(ValueError, match="smoothing"):
        MVICAD2(n_concat=2, smoothing=0).fit(small.X)


def test_smoothing_fit(small):
    est = _make(MVICAD2, smoothing=3).fit(small.X)
    assert amari_distance(est.components_, small.mixings) < 0.1


def test_bad_noise(small):
    with pytest.raises(ValueError, match="noise"):
        MVICA(noise=0.0).fit(small.X)


def test_bad_single_subject(small):
    with pytest.raises(ValueError, match="at least 2"):
        MVICA().fit(small.X[:1])


def test_bad_type():
    with pytest.raises(TypeError, match="X"):
        MVICA().fit("not data")


def test_bad_transform_subjects(small):
    est = _make(MVICA).fit(small.X)
    with pytest.raises(ValueError, match="subjects"):
        est.transform(small.X[:2])


def test_generator_bad_input():
    with pytest.raises(ValueError, match="max_dilation"):
        make_multiview_sources(max_dilation=0.5)
    with pytest.raises(ValueError, match="max_shift"):
        make_multiview_sources(max_shift=-0.01)
    with pytest.raises(ValueError, match="onset"):
        make_multiview_sources(n_times=100, onset=100)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", [MVICAD, MVICAD2])
def test_inverse_transform_rejects_shared_sources_with_wrong_rows(cls, small):
    # issue 17: (k + 1, T) shared sources used to be warped with the (m, k) warps and the
    # extra row silently dropped
    est = _make(cls, max_iter=5).fit(small.X)
    S = est.sources_
    np.testing.assert_allclose(est.inverse_transform(S).shape, small.X.shape)
    for bad in (np.concatenate([S, S[:1]], axis=0), S[:1]):
        before = bad.copy()
        with pytest.raises(ValueError, match=r"X must have shape \(3, 2, T\) or \(2, T\)"):
            est.inverse_transform(bad)
        np.testing.assert_array_equal(bad, before)


def test_warp_rejects_sources_not_matching_the_warps():
    from sciml_toolbox.multiview import warp

    rng = np.random.default_rng(0)
    S = rng.standard_normal((2, 3, 40))
    rho, tau = np.ones((2, 3)), np.zeros((2, 3))
    np.testing.assert_allclose(warp(S, rho, tau), S)  # identity warp, the good call
    with pytest.raises(ValueError, match="rho must have shape"):
        warp(S, rho[:, :2], tau[:, :2])  # one source more than warps: used to drop it
    with pytest.raises(ValueError, match="tau must have shape"):
        warp(S, rho, tau[:1])
    with pytest.raises(ValueError, match="n_concat"):
        warp(S, rho, tau, n_concat=3)  # 40 samples are not 3 epochs
    with pytest.raises(ValueError, match="rho must hold positive"):
        warp(S, -rho, tau)
    with pytest.raises(ValueError, match="onset"):
        warp(S, rho, tau, onset=40)
    with pytest.raises(ValueError, match="S must be a 3-D"):
        warp(S[0], rho, tau)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_shows_progress_bars_and_silent_by_default(small, capsys):
    est = _make(MVICAD2, max_iter=5)
    est.fit(small.X)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    est.set_params(verbose=True).fit(small.X)
    err = capsys.readouterr().err
    for bar in ("single-subject ICA (init)", "warp search (init)", "multi-view ICA"):
        assert bar in err
    assert f"{est.n_iter_}/5" in err
