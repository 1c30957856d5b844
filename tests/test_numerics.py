"""The numerical building blocks of sciml_toolbox._numerics against SciPy / scikit-learn.

Each routine is checked on NumPy against an independent implementation (scipy.integrate,
numpy.linalg / scipy.sparse.linalg, sklearn.cluster / sklearn.neighbors) and run on every
namespace of the ``xp`` fixture (numpy, array_api_strict, torch-CPU) to show that it keeps the
caller's namespace and gives the same numbers there.
"""

import numpy as np
import pytest
from scipy.integrate import RK45, solve_ivp
from scipy.sparse.linalg import cg as scipy_cg
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from sciml_toolbox._array_api import get_namespace, namespace_name, to_numpy
from sciml_toolbox._numerics import (
    NonPositiveCurvature,
    bias_minus_2_cross,
    conjugate_gradient,
    dopri5_step,
    dopri5_step_factor,
    lloyd_kmeans,
    nearest_centre,
    nearest_neighbour,
    power_iteration,
    rk4_step,
    segment_max,
    segment_sum,
)


def _same_namespace(a, xp):
    assert namespace_name(get_namespace(a)) == namespace_name(xp)


# ------------------------------------------------------------------------------------------
# ODE steps
# ------------------------------------------------------------------------------------------
def _lotka_volterra(y):
    """A nonlinear autonomous system split into a tuple (prey, predator) of 1-d arrays."""
    u, v = y
    return (1.1 * u - 0.4 * u * v, 0.1 * u * v - 0.4 * v)


def _lv_flat(t, y):
    du, dv = _lotka_volterra((y[:2], y[2:]))
    return np.concatenate([du, dv])


Y0 = np.array([10.0, 5.0, 3.0, 6.0])  # two independent (prey, predator) pairs


def test_dopri5_step_matches_scipy_rk45():
    h = 0.1
    # huge atol: scipy accepts its first step of size h, a single Dormand-Prince 5(4) step
    ref = RK45(_lv_flat, 0.0, Y0, t_bound=1.0, first_step=h, rtol=1e-3, atol=1e3)
    ref.step()
    assert ref.t == pytest.approx(h)
    y = (Y0[:2], Y0[2:])
    y_new, err, k7 = dopri5_step(_lotka_volterra, y, _lotka_volterra(y), h)
    np.testing.assert_allclose(np.concatenate(y_new), ref.y, rtol=1e-14)
    np.testing.assert_allclose(np.concatenate(k7), _lv_flat(h, ref.y), rtol=1e-14)
    assert all(e.shape == yi.shape for e, yi in zip(err, y, strict=True))


def test_dopri5_error_estimate_is_fifth_order():
    # local error of the embedded fourth-order solution is O(h^5): halving h divides it by 32
    y = (Y0[:2], Y0[2:])
    k1 = _lotka_volterra(y)
    norms = [np.linalg.norm(np.concatenate(dopri5_step(_lotka_volterra, y, k1, h)[1]))
             for h in (0.04, 0.02)]
    assert 24.0 < norms[0] / norms[1] < 40.0


def test_dopri5_fixed_steps_match_solve_ivp():
    ref = solve_ivp(_lv_flat, (0.0, 2.0), Y0, method="DOP853", rtol=1e-13, atol=1e-13)
    n = 200
    h = 2.0 / n
    y = (Y0[:2], Y0[2:])
    k = _lotka_volterra(y)
    for _ in range(n):
        y, _, k = dopri5_step(_lotka_volterra, y, k, h)
    np.testing.assert_allclose(np.concatenate(y), ref.y[:, -1], rtol=1e-8)


def test_dopri5_step_keeps_the_namespace(xp):
    y_np = (Y0[:2], Y0[2:])
    want, want_err, _ = dopri5_step(_lotka_volterra, y_np, _lotka_volterra(y_np), 0.1)
    y = (xp.asarray(Y0[:2]), xp.asarray(Y0[2:]))
    got, err, k7 = dopri5_step(_lotka_volterra, y, _lotka_volterra(y), 0.1)
    for g, e, w, we in zip(got, err, want, want_err, strict=True):
        _same_namespace(g, xp)
        _same_namespace(e, xp)
        np.testing.assert_allclose(to_numpy(g), w, rtol=1e-13)
        np.testing.assert_allclose(to_numpy(e), we, rtol=1e-9, atol=1e-18)


def test_dopri5_step_factor():
    assert dopri5_step_factor(0.0) == 5.0
    assert dopri5_step_factor(float("inf")) == 0.2
    assert dopri5_step_factor(float("nan")) == 0.2
    assert dopri5_step_factor(1.0) == pytest.approx(0.9)
    assert dopri5_step_factor(1e-12) == 5.0
    assert dopri5_step_factor(1e12) == 0.2
    errs = np.logspace(-4, 4, 50)
    assert np.all(np.diff([dopri5_step_factor(e) for e in errs]) <= 0)


def _pendulum(y):
    """Damped pendulum on an (n, 2) batch of (angle, velocity) rows."""
    return np.stack([y[:, 1], -np.sin(y[:, 0]) - 0.1 * y[:, 1]], axis=1)


def test_rk4_fixed_steps_match_solve_ivp():
    y0 = np.array([[1.0, 0.0], [2.5, -0.5]])
    ref = solve_ivp(lambda t, y: _pendulum(y.reshape(2, 2)).ravel(), (0.0, 3.0), y0.ravel(),
                    method="DOP853", rtol=1e-13, atol=1e-13)
    errs = []
    for n in (150, 300):
        y = y0
        for _ in range(n):
            y = rk4_step(_pendulum, y, 3.0 / n)
        errs.append(np.max(np.abs(y.ravel() - ref.y[:, -1])))
    assert errs[1] < 1e-8
    assert 12.0 < errs[0] / errs[1] < 20.0  # fourth order: halving h divides the error by 16


def test_rk4_step_keeps_the_namespace(xp):
    y0 = np.array([[1.0, 0.0], [2.5, -0.5]])
    want = rk4_step(lambda y: -0.5 * y * y, y0, 0.2)
    got = rk4_step(lambda y: -0.5 * y * y, xp.asarray(y0), 0.2)
    _same_namespace(got, xp)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-14)


# ------------------------------------------------------------------------------------------
# conjugate gradients and power iteration
# ------------------------------------------------------------------------------------------
def _spd(n, cond, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.logspace(0, np.log10(cond), n)) @ Q.T


def test_conjugate_gradient_matches_solve_and_scipy():
    n = 30
    A = _spd(n, 1e3)
    b = np.random.default_rng(1).standard_normal(n)
    x, k, res = conjugate_gradient(lambda v: A @ v, b, rtol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8)
    assert res <= 1e-12 * np.linalg.norm(b)
    # the recursive residual agrees with the true one up to rounding
    assert res == pytest.approx(np.linalg.norm(b - A @ x), rel=0.05)
    assert 1 <= k <= 10 * n
    # SciPy's CG from the same start, same stopping rule and iteration budget
    x_sp, info = scipy_cg(A, b, rtol=1e-12, atol=0.0, maxiter=10 * n)
    assert info == 0
    np.testing.assert_allclose(x, x_sp, rtol=1e-8)


def test_conjugate_gradient_jacobi_and_warm_start():
    n = 40
    rng = np.random.default_rng(2)
    A = _spd(n, 10.0) + np.diag(np.logspace(0, 4, n))  # badly scaled diagonal
    b = rng.standard_normal(n)
    x_ref = np.linalg.solve(A, b)
    x_plain, k_plain, _ = conjugate_gradient(lambda v: A @ v, b, rtol=1e-10)
    x_pre, k_pre, _ = conjugate_gradient(lambda v: A @ v, b, rtol=1e-10, precond=np.diag(A))
    np.testing.assert_allclose(x_plain, x_ref, rtol=1e-6)
    np.testing.assert_allclose(x_pre, x_ref, rtol=1e-6)
    assert k_pre < k_plain
    # starting at the solution: no iteration
    x0, k0, _ = conjugate_gradient(lambda v: A @ v, b, x0=x_ref, rtol=1e-6)
    assert k0 == 0
    np.testing.assert_array_equal(x0, x_ref)


def test_conjugate_gradient_detects_indefinite_operator():
    A = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(NonPositiveCurvature) as info:
        conjugate_gradient(lambda v: A @ v, np.ones(3))
    assert info.value.curvature <= 0
    assert isinstance(info.value, ValueError)


def test_conjugate_gradient_keeps_the_namespace(xp):
    n = 12
    A = _spd(n, 50.0)
    b = np.random.default_rng(3).standard_normal(n)
    A_x, b_x = xp.asarray(A), xp.asarray(b)
    x, k, _ = conjugate_gradient(lambda v: A_x @ v, b_x, rtol=1e-12, precond=xp.asarray(
        np.diag(A).copy()))
    _same_namespace(x, xp)
    np.testing.assert_allclose(to_numpy(x), np.linalg.solve(A, b), rtol=1e-8)


def test_power_iteration_matches_eigvalsh(xp):
    n = 20
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = np.linspace(-1.0, 1.0, n)
    w[0] = -3.0  # the largest absolute eigenvalue is negative, with a gap
    A = (Q * w) @ Q.T
    A_x = xp.asarray(A)
    lam = power_iteration(lambda v: A_x @ v, n, A_x, n_iter=200)
    assert isinstance(lam, float)
    assert lam == pytest.approx(np.max(np.abs(np.linalg.eigvalsh(A))), rel=1e-10)
    # few iterations: an estimate from below
    assert power_iteration(lambda v: A_x @ v, n, A_x, n_iter=2) <= 3.0 + 1e-12
    assert power_iteration(lambda v: 0.0 * v, n, A_x) == 0.0


# ------------------------------------------------------------------------------------------
# k-means, nearest centre, segment reductions
# ------------------------------------------------------------------------------------------
def _blobs(m=300, d=3, k=4, seed=5):
    rng = np.random.default_rng(seed)
    means = 6.0 * rng.standard_normal((k, d))
    return means[rng.integers(0, k, m)] + rng.standard_normal((m, d))


def test_lloyd_kmeans_matches_sklearn():
    z = _blobs()
    k, n_iter = 4, 5
    init = z[:: z.shape[0] // k][:k]
    centres, labels = lloyd_kmeans(z, k, n_iter=n_iter)
    km = KMeans(k, init=init, n_init=1, max_iter=n_iter, tol=0.0, algorithm="lloyd").fit(z)
    np.testing.assert_allclose(centres, km.cluster_centers_, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(labels, km.labels_)
    inertia = np.sum((z - centres[labels]) ** 2)
    assert inertia == pytest.approx(km.inertia_, rel=1e-10)


def test_lloyd_kmeans_keeps_the_namespace(xp):
    z = _blobs(m=120)
    want_c, want_l = lloyd_kmeans(z, 3)
    got_c, got_l = lloyd_kmeans(xp.asarray(z), 3)
    _same_namespace(got_c, xp)
    _same_namespace(got_l, xp)
    np.testing.assert_allclose(to_numpy(got_c), want_c, rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(got_l), want_l)


@pytest.mark.parametrize("n_centres", [7, 9000])  # 9000: the search runs in row blocks
def test_nearest_centre_matches_sklearn(n_centres):
    rng = np.random.default_rng(6)
    z = rng.standard_normal((600, 2))
    centres = rng.standard_normal((n_centres, 2))
    got = nearest_centre(z, centres)
    want = NearestNeighbors(n_neighbors=1).fit(centres).kneighbors(z, return_distance=False)
    np.testing.assert_array_equal(got, want[:, 0])


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
def test_nearest_neighbour_matches_sklearn(chunk_size):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((700, 4))
    reference = rng.standard_normal((40, 4)) * [1.0, 2.0, 0.5, 3.0]
    dist, index = nearest_neighbour(x, reference, chunk_size=chunk_size)
    want_d, want_i = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(x)
    np.testing.assert_array_equal(index, want_i[:, 0])
    np.testing.assert_allclose(dist, want_d[:, 0], rtol=1e-13)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(
        nearest_neighbour(x, reference, chunk_size=chunk_size, return_distance=False), index)


def test_nearest_neighbour_row_blocks():
    # 2^21 // 4096 = 512 rows per block: 1200 rows need three blocks
    rng = np.random.default_rng(11)
    x, reference = rng.standard_normal((1200, 2)), rng.standard_normal((5000, 2))
    dist, index = nearest_neighbour(x, reference, chunk_size=4096)
    want_d, want_i = NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(x)
    np.testing.assert_array_equal(index, want_i[:, 0])
    np.testing.assert_allclose(dist, want_d[:, 0], rtol=1e-12)


def test_nearest_neighbour_keeps_the_namespace(xp):
    rng = np.random.default_rng(12)
    x, reference = rng.standard_normal((30, 3)), rng.standard_normal((20, 3))
    dist, index = nearest_neighbour(xp.asarray(x), xp.asarray(reference), chunk_size=6)
    _same_namespace(dist, xp)
    _same_namespace(index, xp)
    d = cdist(x, reference)
    np.testing.assert_array_equal(to_numpy(index), np.argmin(d, axis=1))
    np.testing.assert_allclose(to_numpy(dist), np.min(d, axis=1), rtol=1e-13)


def test_nearest_centre_keeps_the_namespace(xp):
    rng = np.random.default_rng(7)
    z, centres = rng.standard_normal((50, 3)), rng.standard_normal((6, 3))
    got = nearest_centre(xp.asarray(z), xp.asarray(centres))
    _same_namespace(got, xp)
    np.testing.assert_array_equal(to_numpy(got), np.argmin(cdist(z, centres), axis=1))


def test_bias_minus_2_cross_is_the_distance_expansion(xp):
    rng = np.random.default_rng(8)
    x, z = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    bias = np.sum(z * z, axis=1)
    got = bias_minus_2_cross(xp.asarray(x), xp.asarray(z), xp.asarray(bias), xp)
    _same_namespace(got, xp)
    want = cdist(x, z, "sqeuclidean") - np.sum(x * x, axis=1)[:, None]
    np.testing.assert_allclose(to_numpy(got), want, atol=1e-12)


def test_segment_reductions_match_loops(xp):
    rng = np.random.default_rng(9)
    n, m = 5, 40
    index = rng.integers(0, n - 1, m)  # the last segment stays empty
    values = rng.random((m, 3))
    want_sum = np.zeros((n, 3))
    want_max = np.zeros(n)
    for i, v in zip(index, values, strict=True):
        want_sum[i] += v
        want_max[i] = max(want_max[i], v[0])
    idx = xp.asarray(index)
    got_sum = segment_sum(xp.asarray(values), idx, n, xp)
    got_sum1 = segment_sum(xp.asarray(values[:, 0].copy()), idx, n, xp)
    got_max = segment_max(xp.asarray(values[:, 0].copy()), idx, n, xp)
    for got in (got_sum, got_sum1, got_max):
        _same_namespace(got, xp)
    np.testing.assert_allclose(to_numpy(got_sum), want_sum, rtol=1e-13)
    np.testing.assert_allclose(to_numpy(got_sum1), want_sum[:, 0], rtol=1e-13)
    np.testing.assert_array_equal(to_numpy(got_max), want_max)
