"""API tests: every function and estimator on numpy, array_api_strict and torch; bad input."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sciml_toolbox._array_api import namespace_name, to_numpy
from sciml_toolbox.stiefel import (
    LandingCCA,
    LandingICA,
    cholesky_retraction,
    generalized_eigh,
    landing_direction,
    landing_step,
    normal_direction,
    penalty,
    plam_direction,
    polar_retraction,
    relative_gradient,
    riemannian_gradient,
    safe_step_size,
)


def _spd(n, evals, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * evals) @ Q.T


def _pencil(n=20, seed=0):
    rng = np.random.default_rng(seed)
    A = _spd(n, np.linspace(1.0, 0.01, n), rng)
    B = _spd(n, np.exp(np.log(0.2) * np.linspace(0, 1, n)), rng)
    return A / np.linalg.norm(A), B / np.linalg.norm(B)


def _cca_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 2))
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    X = np.c_[Z, rng.standard_normal((n, 4))] @ (Q * np.linspace(1.0, 2.0, 6))
    Y = np.c_[Z + 0.5 * rng.standard_normal((n, 2)), rng.standard_normal((n, 3))]
    return X, Y


# ------------------------------------------------------------------------- core, every namespace
def test_core_functions_all_namespaces(xp):
    rng = np.random.default_rng(0)
    n, p = 12, 3
    _, B = _pencil(n)
    X = rng.standard_normal((n, p))
    G = rng.standard_normal((n, p))
    BX = B @ X
    BinvG = np.linalg.solve(B, G)
    Xx, Gx, BXx, Bx = (xp.asarray(a) for a in (X, G, BX, B))
    cases = [
        (penalty(Xx, BXx), penalty(X, BX)),
        (normal_direction(Xx, BXx), normal_direction(X, BX)),
        (relative_gradient(Xx, Gx, BXx), relative_gradient(X, G, BX)),
        (riemannian_gradient(Xx, Gx, xp.asarray(BinvG)), riemannian_gradient(X, G, BinvG)),
        (plam_direction(Xx, Gx, BXx, omega=2.0), plam_direction(X, G, BX, omega=2.0)),
        (landing_direction(Xx, Gx, BXx, omega=0.3), landing_direction(X, G, BX, omega=0.3)),
        (
            landing_direction(Xx, Gx, BXx, gradient="riemannian", BinvG=xp.asarray(BinvG)),
            landing_direction(X, G, BX, gradient="riemannian", BinvG=BinvG),
        ),
    ]
    D = landing_direction(X, G, BX)
    Dx = xp.asarray(D)
    cases.append((safe_step_size(Xx, BXx, Dx, xp.sum(Dx * (Bx @ Dx))),
                  safe_step_size(X, BX, D, np.sum(D * (B @ D)))))
    Xn, _ = landing_step(Xx, Gx, BXx, learning_rate=0.1, B=Bx)
    cases.append((Xn, landing_step(X, G, BX, learning_rate=0.1, B=B)[0]))
    Xn, _ = landing_step(Xx, Gx, BXx, learning_rate=0.1, B=lambda V: Bx @ V)
    cases.append((Xn, landing_step(X, G, BX, learning_rate=0.1, B=B)[0]))
    for retract in (cholesky_retraction, polar_retraction):
        cases.append((retract(Xx, BXx)[0], retract(X, BX)[0]))
    import array_api_compat

    for got, ref in cases:
        assert namespace_name(array_api_compat.array_namespace(got)) == namespace_name(xp)
        np.testing.assert_allclose(to_numpy(got), np.asarray(ref), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["landing", "riemannian", "plam", "exact"])
def test_generalized_eigh_all_namespaces(xp, method):
    import array_api_compat

    n, p = 16, 2
    A, B = _pencil(n, seed=1)
    w_ref, V_ref = generalized_eigh(A, B, p, method=method, tol=1e-10, max_iter=20000,
                                    random_state=0)
    w, V = generalized_eigh(xp.asarray(A), xp.asarray(B), p, method=method, tol=1e-10,
                            max_iter=20000, random_state=0)
    for a in (w, V):
        assert namespace_name(array_api_compat.array_namespace(a)) == namespace_name(xp)
    assert V.shape == (n, p) and w.shape == (p,)
    np.testing.assert_allclose(to_numpy(w), w_ref, rtol=1e-8)
    Vn = to_numpy(V)
    np.testing.assert_allclose(np.abs(np.sum(Vn * (B @ V_ref), axis=0)), 1.0, atol=1e-6)
    np.testing.assert_allclose(Vn.T @ B @ Vn, np.eye(p), atol=1e-10)


def test_generalized_eigh_history_and_max_time():
    A, B = _pencil(20)
    w, V, hist = generalized_eigh(A, B, 2, return_history=True, max_time=1e-9, random_state=0)
    assert set(hist) >= {"objective", "violation", "time", "iteration", "learning_rate"}
    assert len(hist["objective"]) == len(hist["time"]) >= 2


def test_generalized_eigh_convergence_warning():
    A, B = _pencil(20)
    with pytest.warns(Warning, match="did not converge"):
        generalized_eigh(A, B, 2, max_iter=3, random_state=0)


def test_generalized_eigh_does_not_modify_input():
    A, B = _pencil(15)
    A0, B0 = A.copy(), B.copy()
    X0 = np.random.default_rng(0).standard_normal((15, 2))
    X00 = X0.copy()
    generalized_eigh(A, B, 2, X0=X0, max_iter=50, tol=0.0 + 1e-3)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)
    np.testing.assert_array_equal(X0, X00)


def test_landing_cca_all_namespaces(xp):
    import array_api_compat

    X, Y = _cca_data()
    kw = dict(n_components=2, batch_size=100, max_epochs=15, random_state=0)
    ref = LandingCCA(**kw).fit(X, Y)
    cca = LandingCCA(**kw).fit(xp.asarray(X), xp.asarray(Y))
    for a in (cca.x_weights_, cca.y_weights_, cca.canonical_correlations_, cca.x_mean_):
        assert namespace_name(array_api_compat.array_namespace(a)) == namespace_name(xp)
    np.testing.assert_allclose(to_numpy(cca.canonical_correlations_),
                               ref.canonical_correlations_, rtol=1e-8)
    xs, ys = cca.transform(xp.asarray(X), xp.asarray(Y))
    assert xs.shape == (X.shape[0], 2) and ys.shape == (X.shape[0], 2)
    # canonical variates are (nearly) uncorrelated with unit variance; pairs correlate
    xs, ys = to_numpy(xs), to_numpy(ys)
    C = np.corrcoef(xs.T, ys.T)
    np.testing.assert_allclose(np.diag(C[:2, 2:]), ref.canonical_correlations_, atol=0.02)
    assert cca.canonical_correlations_[0] > 0.85
    assert cca.constraint_violation_ < 0.5


def test_landing_cca_partial_fit_stream(xp):
    X, Y = _cca_data(n=3000)
    # in partial_fit the decay points count calls: x0.3 after 4, 6 and 8 passes of 15 batches
    # (with a constant step the streamed correlations sit 0.02-0.04 below the full fit)
    cca = LandingCCA(n_components=2, lr_decay_epochs=(60, 90, 120), lr_decay=0.3,
                     random_state=0)
    Xx, Yx = xp.asarray(X), xp.asarray(Y)
    for _ in range(10):
        for s in range(0, 3000, 200):
            cca.partial_fit(Xx[s : s + 200, ...], Yx[s : s + 200, ...])
    full = LandingCCA(n_components=2, batch_size=None, max_epochs=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full.fit(X, Y)
    np.testing.assert_allclose(to_numpy(cca.canonical_correlations_),
                               full.canonical_correlations_, atol=0.01)
    np.testing.assert_allclose(to_numpy(cca.x_mean_), X.mean(0), atol=1e-10)
    assert len(cca.history_["objective"]) == 150


def test_landing_ica_all_namespaces(xp):
    import array_api_compat

    rng = np.random.default_rng(0)
    S = rng.laplace(size=(4000, 3))
    Amix = rng.standard_normal((3, 3))
    X = S @ Amix.T + 1.0
    kw = dict(n_components=3, batch_size=500, max_epochs=5, random_state=0)
    ref = LandingICA(**kw).fit(X)
    ica = LandingICA(**kw).fit(xp.asarray(X))
    for a in (ica.components_, ica.mixing_, ica.mean_):
        assert namespace_name(array_api_compat.array_namespace(a)) == namespace_name(xp)
    np.testing.assert_allclose(to_numpy(ica.components_), ref.components_, rtol=1e-8, atol=1e-10)
    Sx = ica.transform(xp.asarray(X))
    Xr = ica.inverse_transform(Sx)
    np.testing.assert_allclose(to_numpy(Xr), X, atol=1e-8)  # p = d: exact round trip


def test_landing_ica_split_batch_all_namespaces(xp):
    """split_batch=True (odd batch: the last row is dropped) agrees across namespaces and
    differs from the one-batch run."""
    rng = np.random.default_rng(1)
    X = rng.laplace(size=(3000, 3)) @ rng.standard_normal((3, 3))
    kw = dict(n_components=3, batch_size=301, max_epochs=3, random_state=0)
    ref = LandingICA(split_batch=True, **kw).fit(X)
    ica = LandingICA(split_batch=True, **kw).fit(xp.asarray(X))
    np.testing.assert_allclose(to_numpy(ica.components_), ref.components_, rtol=1e-8, atol=1e-10)
    one = LandingICA(split_batch=False, **kw).fit(X)
    assert np.max(np.abs(one.components_ - ref.components_)) > 1e-6
    assert ref.get_params()["split_batch"] is True

# ------------------------------------------------------------------------- bad input
def test_bad_B_not_psd():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="B must be positive"):
        generalized_eigh(A, -B, 2)


def test_bad_B_not_psd_without_checks():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="B must be positive"):
        generalized_eigh(A, -B, 2, check_input=False)
    with pytest.raises(ValueError, match="B must be positive"):
        generalized_eigh(A, lambda V: -(B @ V), 2, n_features=10)


def test_bad_B_not_symmetric():
    A, B = _pencil(10)
    B[0, 1] += 1.0
    with pytest.raises(ValueError, match="B must be symmetric"):
        generalized_eigh(A, B, 2)


def test_bad_A_not_symmetric():
    A, B = _pencil(10)
    A[0, 1] += 1.0
    with pytest.raises(ValueError, match="A must be symmetric"):
        generalized_eigh(A, B, 2)


def test_bad_A_not_square():
    _, B = _pencil(10)
    with pytest.raises(ValueError, match="A must be a square"):
        generalized_eigh(np.ones((10, 9)), B, 2)


def test_bad_shapes_mismatch():
    A, _ = _pencil(10)
    _, B = _pencil(12)
    with pytest.raises(ValueError, match="B must have shape"):
        generalized_eigh(A, B, 2)


def test_bad_n_components_too_large():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="n_components"):
        generalized_eigh(A, B, 11)


def test_bad_n_components_type():
    A, B = _pencil(10)
    with pytest.raises(TypeError, match="n_components"):
        generalized_eigh(A, B, 2.5)


def test_bad_nan_in_A():
    A, B = _pencil(10)
    A[0, 0] = np.nan
    with pytest.raises(ValueError, match="A must contain only finite"):
        generalized_eigh(A, B, 2)


def test_bad_method():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="method"):
        generalized_eigh(A, B, 2, method="newton")


def test_bad_gradient():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="gradient"):
        generalized_eigh(A, B, 2, gradient="euclidean")


def test_bad_learning_rate():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="learning_rate"):
        generalized_eigh(A, B, 2, learning_rate=-1.0)


def test_bad_epsilon():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="epsilon"):
        generalized_eigh(A, B, 2, epsilon=0.0)


def test_bad_callables_without_n_features():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="n_features"):
        generalized_eigh(lambda V: A @ V, lambda V: B @ V, 2)


def test_bad_riemannian_with_callable_B():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="B must be a dense array"):
        generalized_eigh(A, lambda V: B @ V, 2, method="riemannian")


def test_bad_X0_shape():
    A, B = _pencil(10)
    with pytest.raises(ValueError, match="X0"):
        generalized_eigh(A, B, 2, X0=np.ones((10, 3)))


def test_bad_landing_direction_gradient_option():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="gradient"):
        landing_direction(X, X, X, gradient="nope")
    with pytest.raises(ValueError, match="BinvG"):
        landing_direction(X, X, X, gradient="riemannian")


def test_bad_cca_mismatched_rows():
    X, Y = _cca_data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LandingCCA().fit(X, Y[:-1])


def test_bad_cca_nan():
    X, Y = _cca_data()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="X must contain only finite"):
        LandingCCA().fit(X, Y)
    X, Y = _cca_data()
    Y[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y must contain only finite"):
        LandingCCA().fit(X, Y)


def test_bad_cca_n_components():
    X, Y = _cca_data()
    with pytest.raises(ValueError, match="n_components"):
        LandingCCA(n_components=6).fit(X, Y)  # Y has 5 features


def test_bad_cca_batch_size():
    X, Y = _cca_data()
    with pytest.raises(ValueError, match="batch_size"):
        LandingCCA(batch_size=0).fit(X, Y)


def test_bad_cca_reg():
    X, Y = _cca_data()
    with pytest.raises(ValueError, match="reg"):
        LandingCCA(reg=-1.0).fit(X, Y)


def test_bad_cca_transform_features_and_not_fitted():
    X, Y = _cca_data()
    with pytest.raises(NotFittedError):
        LandingCCA().transform(X)
    cca = LandingCCA(max_epochs=1, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features"):
        cca.transform(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        cca.partial_fit(X[:, :3], Y)


def test_bad_ica_nan_and_n_components():
    X = np.random.default_rng(0).laplace(size=(200, 3))
    with pytest.raises(ValueError, match="n_components"):
        LandingICA(n_components=4).fit(X)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must contain only finite"):
        LandingICA().fit(X)


def test_bad_ica_fun_and_not_fitted():
    X = np.random.default_rng(0).laplace(size=(200, 3))
    with pytest.raises(ValueError, match="fun"):
        LandingICA(fun="cube").fit(X)
    with pytest.raises(NotFittedError):
        LandingICA().transform(X)


def test_estimators_do_not_modify_input():
    X, Y = _cca_data()
    X0, Y0 = X.copy(), Y.copy()
    LandingCCA(max_epochs=1, random_state=0).fit(X, Y)
    LandingICA(max_epochs=1, random_state=0).fit(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
