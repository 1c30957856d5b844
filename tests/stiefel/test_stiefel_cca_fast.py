"""LandingCCA's preconditioner and variance reduction against closed forms and the plain field."""

import numpy as np
import pytest
import scipy.linalg as sl

from sciml_toolbox._array_api import make_generator, namespace_name, to_numpy
from sciml_toolbox.stiefel import LandingCCA, landing_direction, make_cca_data
from sciml_toolbox.stiefel._cca import (
    apply_preconditioner,
    fit_preconditioner,
    preconditioned_direction,
    preconditioned_lambda_max,
)


def _closed_form(X, Y, p, reg):
    """Correlations and weights by whitening with scipy eigh (independent of the package)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    n = X.shape[0]
    Sxx = Xc.T @ Xc / n + reg * np.eye(X.shape[1])
    Syy = Yc.T @ Yc / n + reg * np.eye(Y.shape[1])
    Sxy = Xc.T @ Yc / n
    wx, Vx = sl.eigh(Sxx)
    wy, Vy = sl.eigh(Syy)
    Kx, Ky = (Vx / np.sqrt(wx)) @ Vx.T, (Vy / np.sqrt(wy)) @ Vy.T
    U, s, Vt = np.linalg.svd(Kx @ Sxy @ Ky)
    return s[:p], Kx @ U[:, :p], Ky @ Vt[:p].T, (Sxx, Syy, Sxy)


def _sin_max_angle(U, V):
    Qu, _ = np.linalg.qr(U)
    Qv, _ = np.linalg.qr(V)
    return np.linalg.norm(Qv - Qu @ (Qu.T @ Qv), 2)


def _rel_gap(Wx, Wy, S, s_ref):
    """1 - (best sum of correlations within span(Wx) x span(Wy)) / closed form's."""
    Sxx, Syy, Sxy = S
    Lx = np.linalg.cholesky(Wx.T @ Sxx @ Wx)
    Ly = np.linalg.cholesky(Wy.T @ Syy @ Wy)
    M = np.linalg.solve(Lx, np.linalg.solve(Ly, (Wx.T @ Sxy @ Wy).T).T)
    return 1.0 - np.sum(np.linalg.svd(M, compute_uv=False)) / np.sum(s_ref)


def _correlated_rows(m=400, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) @ rng.standard_normal((d, d)) * np.linspace(0.5, 3.0, d)
    return X - X.mean(0)


# ------------------------------------------------------------------------- preconditioner
def test_low_rank_preconditioner_of_rank_d_minus_1_is_the_exact_inverse():
    # with k = d - 1 the range finder spans R^d and the isotropic part is the last
    # eigenvalue: P must equal (S + reg I)^{-1} exactly
    Xs = _correlated_rows()
    reg = 1e-2
    S = Xs.T @ Xs / Xs.shape[0] + reg * np.eye(Xs.shape[1])
    prec = fit_preconditioner(Xs, "low-rank", Xs.shape[1] - 1, reg,
                              make_generator(0, np))
    F = np.random.default_rng(1).standard_normal((Xs.shape[1], 5))
    np.testing.assert_allclose(apply_preconditioner(prec, F), np.linalg.solve(S, F),
                               rtol=1e-8, atol=1e-10)
    lam = preconditioned_lambda_max(Xs, prec, reg, n_iter=50)
    assert abs(lam - 1.0) < 1e-6  # P S = I


def test_diagonal_preconditioner_and_low_rank_lambda_max():
    Xs = _correlated_rows(seed=2)
    reg = 1e-3
    var = np.mean(Xs**2, axis=0) + reg
    F = np.random.default_rng(3).standard_normal((Xs.shape[1], 3))
    prec = fit_preconditioner(Xs, "diagonal", 5, reg, make_generator(0, np))
    np.testing.assert_allclose(apply_preconditioner(prec, F), F / var[:, None], rtol=1e-12)
    # the power iteration finds the top eigenvalue of P (S + reg I) (scipy's generalized eigh)
    S = Xs.T @ Xs / Xs.shape[0] + reg * np.eye(Xs.shape[1])
    low = fit_preconditioner(Xs, "low-rank", 3, reg, make_generator(0, np))
    P = apply_preconditioner(low, np.eye(Xs.shape[1]))
    top = sl.eigh(S, np.linalg.inv(0.5 * (P + P.T)), eigvals_only=True)[-1]
    assert abs(preconditioned_lambda_max(Xs, low, reg, n_iter=300) - top) < 1e-6 * top


@pytest.mark.parametrize("split", [False, True])
def test_preconditioned_direction_is_landing_in_whitened_coordinates(split):
    """P^{1/2} Lambda_V(P^{-1/2} W) with the plain landing field of the change of variables
    (G -> P^{1/2} G, BW -> P^{1/2} BW) equals preconditioned_direction."""
    rng = np.random.default_rng(4)
    d, p, omega = 9, 3, 0.7
    Xs = _correlated_rows(m=300, d=d, seed=5)
    prec = fit_preconditioner(Xs, "low-rank", 4, 1e-3, make_generator(0, np))
    P = apply_preconditioner(prec, np.eye(d))
    w, V = np.linalg.eigh(0.5 * (P + P.T))
    Ph, Pmh = (V * np.sqrt(w)) @ V.T, (V / np.sqrt(w)) @ V.T
    W, G, BW, G2, BW2 = (rng.standard_normal((d, p)) for _ in range(5))
    kw = dict(BW2=BW2, G2=G2) if split else {}
    ours = preconditioned_direction(W, G, BW, prec, omega=omega, **kw)
    kwV = dict(BX2=Ph @ BW2, G2=Ph @ G2) if split else {}
    ref = Ph @ landing_direction(Pmh @ W, Ph @ G, Ph @ BW, omega=omega, **kwV)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------------------- estimator
@pytest.mark.parametrize("kind", ["diagonal", "low-rank"])
def test_preconditioned_minibatch_fit_matches_closed_form(kind):
    X, Y = make_cca_data(8000, 12, 3, random_state=0)
    X = X * np.linspace(0.2, 5.0, 12)  # unequal feature scales: what 'diagonal' corrects
    s_ref, Wx_ref, Wy_ref, S = _closed_form(X, Y, 3, 1e-3)
    cca = LandingCCA(n_components=3, batch_size=200, max_epochs=12, lr_decay=0.3,
                     lr_decay_epochs=(4, 6, 8, 10), preconditioner=kind, random_state=0)
    cca.fit(X, Y)
    np.testing.assert_allclose(cca.canonical_correlations_, s_ref, atol=0.01)
    assert _rel_gap(cca._Wx, cca._Wy, S, s_ref) < 2e-3
    assert cca.constraint_violation_ < 0.05


@pytest.mark.parametrize("kind, init", [(None, "random"), ("low-rank", "random"),
                                        ("low-rank", "subset"), (None, "subset")])
def test_variance_reduced_fit_converges_to_closed_form(kind, init):
    """Variance reduction makes minibatch landing converge to the exact (finite-sample)
    solution with a constant step: correlations, subspaces and feasibility to high accuracy."""
    X, Y = make_cca_data(12000, 15, 3, random_state=1)
    s_ref, Wx_ref, Wy_ref, S = _closed_form(X, Y, 3, 1e-3)
    epochs = 12 if kind else 24  # without preconditioner the rate is about half
    cca = LandingCCA(n_components=3, batch_size=200, max_epochs=epochs, preconditioner=kind,
                     variance_reduction=True, init=init, tol=0.0, random_state=0)
    X0, Y0 = X.copy(), Y.copy()
    cca.fit(X, Y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_allclose(cca.canonical_correlations_, s_ref, rtol=1e-5)
    assert _sin_max_angle(Wx_ref, cca.x_weights_) < 1e-3
    assert _sin_max_angle(Wy_ref, cca.y_weights_) < 1e-3
    assert cca.constraint_violation_ < 1e-4
    # history: one exact full-data record per anchor pass, the objective tends to -sum(s)
    obj = cca.history_["objective"]
    assert len(obj) == epochs + 1
    assert abs(obj[-1] + np.sum(s_ref)) < 1e-5 * np.sum(s_ref)
    # loadings and coef_ from the last anchor pass equal the direct least-squares formulas
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    T, U = Xc @ cca.x_weights_, Yc @ cca.y_weights_
    np.testing.assert_allclose(cca.x_loadings_, Xc.T @ T @ np.linalg.inv(T.T @ T), rtol=1e-8)
    np.testing.assert_allclose(cca.y_loadings_, Yc.T @ U @ np.linalg.inv(U.T @ U), rtol=1e-8)
    coef = (cca.x_weights_ @ np.linalg.solve(T.T @ T, T.T @ Yc)).T
    np.testing.assert_allclose(cca.coef_, coef, rtol=1e-8, atol=1e-12)


def test_variance_reduced_reaches_a_smaller_gap_than_plain_sgd_in_the_same_passes():
    # 8 passes each: plain minibatch landing with its decay vs warm-up + 4 anchors + 3 inner
    X, Y = make_cca_data(12000, 30, 3, random_state=2)
    s_ref, _, _, S = _closed_form(X, Y, 3, 1e-3)
    plain = LandingCCA(n_components=3, batch_size=200, max_epochs=8, random_state=0).fit(X, Y)
    fast = LandingCCA(n_components=3, batch_size=200, max_epochs=3, preconditioner="low-rank",
                      variance_reduction=True, vr_warmup=0.5, random_state=0).fit(X, Y)
    g_plain = _rel_gap(plain._Wx, plain._Wy, S, s_ref)
    g_fast = _rel_gap(fast._Wx, fast._Wy, S, s_ref)
    assert g_fast < 0.1 * g_plain


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_subset_init_is_the_closed_form_within_the_leading_principal_subspaces():
    # when k covers all features (rank d - 1 plus the isotropic rest is not used by the
    # init: k = d - 1 columns) and the subset is the whole data, the init of a rank-(d - 1)
    # basis is the closed form restricted to a (d - 1)-dimensional subspace: close to it
    X, Y = make_cca_data(4000, 6, 2, random_state=5)
    s_ref, _, _, S = _closed_form(X, Y, 2, 1e-3)
    cca = LandingCCA(n_components=2, batch_size=4000, max_epochs=1, init="subset",
                     preconditioner_rank=5, learning_rate=1e-12, epsilon=None,
                     random_state=0)
    cca.fit(X, Y)  # one full-batch step of size 1e-12: the initial point
    assert _rel_gap(cca._Wx, cca._Wy, S, s_ref) < 1e-2
    rand = LandingCCA(n_components=2, batch_size=4000, max_epochs=1, learning_rate=1e-12,
                      epsilon=None, random_state=0).fit(X, Y)
    assert _rel_gap(rand._Wx, rand._Wy, S, s_ref) > 5 * _rel_gap(cca._Wx, cca._Wy, S, s_ref)


def test_preconditioned_partial_fit_stream():
    X, Y = make_cca_data(6000, 10, 2, random_state=3)
    s_ref, _, _, _ = _closed_form(X, Y, 2, 1e-3)
    cca = LandingCCA(n_components=2, preconditioner="low-rank", lr_decay_epochs=(90, 120),
                     lr_decay=0.3, random_state=0)
    for _ in range(5):
        for s in range(0, 6000, 200):
            cca.partial_fit(X[s : s + 200], Y[s : s + 200])
    np.testing.assert_allclose(cca.canonical_correlations_, s_ref, atol=0.03)


def test_variance_reduced_all_namespaces(xp):
    import array_api_compat

    X, Y = make_cca_data(3000, 8, 2, random_state=4)
    kw = dict(n_components=2, batch_size=100, max_epochs=3, preconditioner="low-rank",
              variance_reduction=True, random_state=0)
    ref = LandingCCA(**kw).fit(X, Y)
    cca = LandingCCA(**kw).fit(xp.asarray(X), xp.asarray(Y))
    for a in (cca.x_weights_, cca.canonical_correlations_, cca.coef_):
        assert namespace_name(array_api_compat.array_namespace(a)) == namespace_name(xp)
    np.testing.assert_allclose(to_numpy(cca.canonical_correlations_),
                               ref.canonical_correlations_, rtol=1e-8)
    np.testing.assert_allclose(to_numpy(cca.x_weights_), ref.x_weights_, rtol=1e-6,
                               atol=1e-9)


@pytest.mark.parametrize("kw, name", [
    (dict(preconditioner="full"), "preconditioner"),
    (dict(preconditioner_rank=0), "preconditioner_rank"),
    (dict(variance_reduction="yes"), "variance_reduction"),
    (dict(vr_batch_size=0), "vr_batch_size"),
    (dict(vr_warmup=-0.5), "vr_warmup"),
    (dict(init="pca"), "init"),
])
def test_bad_new_options(kw, name):
    X, Y = make_cca_data(200, 4, 2, random_state=0)
    with pytest.raises(ValueError, match=name):
        LandingCCA(**kw).fit(X, Y)
