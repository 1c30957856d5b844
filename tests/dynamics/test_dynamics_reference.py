"""Independent checks of :mod:`sciml_toolbox.dynamics`.

Everything here is computed from the formulas of the reference note with plain NumPy / SciPy
(naive n x n attention matrices, ``scipy.integrate.solve_ivp`` on the covariance ODE written
directly, the closed form of Geshkovski et al. / Castin et al., brute-force optimal transport),
never from the implementation under test.
"""

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.special
from scipy.spatial.distance import cdist

from sciml_toolbox.dynamics import (
    anisotropy,
    attention_velocity,
    cluster_count,
    empirical_moments,
    gaussian_ode,
    gaussian_vector_field,
    gaussian_w2,
    limit_rank,
    simulate_particles,
    w2_to_gaussian,
)


# --------------------------------------------------------------------------------------------
# naive references
# --------------------------------------------------------------------------------------------
def naive_scores(X, Q, K):
    return (X @ Q.T) @ (X @ K.T).T  # s_ij = <Q x_i, K x_j>


def naive_softmax_velocity(X, Q, K, V, mask=None):
    S = naive_scores(X, Q, K)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = scipy.special.softmax(S, axis=1)
    return P @ (X @ V.T)


def naive_sinkhorn_matrix(S, n_iter):
    P = np.exp(S - S.max())
    for it in range(n_iter):
        if it % 2 == 0:
            P = P / P.sum(axis=1, keepdims=True)
        else:
            P = P / P.sum(axis=0, keepdims=True)
    return P


def random_spd(rng, d, scale=1.0):
    G = rng.standard_normal((d, d))
    return scale * (G @ G.T / d + 0.3 * np.eye(d))


# --------------------------------------------------------------------------------------------
# attention velocities
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block_size", [None, 7])
def test_softmax_velocity_matches_naive(np_rng, block_size):
    n, d = 37, 4
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    got = attention_velocity(X, Q, K, V, kind="softmax", block_size=block_size)
    np.testing.assert_allclose(got, naive_softmax_velocity(X, Q, K, V), rtol=1e-10, atol=1e-12)


def test_softmax_velocity_rectangular_heads(np_rng):
    # Q, K of shape (k, d) with k < d and V of shape (d, d)
    n, d, k = 20, 5, 2
    X = np_rng.standard_normal((n, d))
    Q, K = np_rng.standard_normal((k, d)), np_rng.standard_normal((k, d))
    V = np_rng.standard_normal((d, d))
    got = attention_velocity(X, Q, K, V, block_size=3)
    np.testing.assert_allclose(got, naive_softmax_velocity(X, Q, K, V), rtol=1e-10)


def test_streaming_lse_survives_huge_scores(np_rng):
    # scores of size ~1e3: a non-stabilised exp overflows; the online log-sum-exp must not
    n, d = 30, 3
    X = 30 * np_rng.standard_normal((n, d))
    Q = np.eye(d)
    K = np.eye(d)
    V = np.eye(d)
    got = attention_velocity(X, Q, K, V, block_size=4)
    np.testing.assert_allclose(got, naive_softmax_velocity(X, Q, K, V), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("block_size", [None, 5])
def test_l2_velocity_matches_naive(np_rng, block_size):
    n, d = 25, 3
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    S = -cdist(X @ Q.T, X @ K.T, "sqeuclidean")
    want = scipy.special.softmax(S, axis=1) @ (X @ V.T)
    got = attention_velocity(X, Q, K, V, kind="l2", block_size=block_size)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_sigmoid_velocity_matches_naive(np_rng, normalize):
    n, d = 23, 3
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    b = -1.3
    W = scipy.special.expit(naive_scores(X, Q, K) + b)
    want = W @ (X @ V.T) / (n if normalize else 1.0)
    got = attention_velocity(
        X, Q, K, V, kind="sigmoid", bias=b, normalize=normalize, block_size=4
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_size", [None, 6])
def test_causal_mask_matches_naive(np_rng, block_size):
    n, d = 19, 3
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    mask = np.tril(np.ones((n, n), dtype=bool))
    want = naive_softmax_velocity(X, Q, K, V, mask=mask)
    got = attention_velocity(X, Q, K, V, kind="masked", mask="causal", block_size=block_size)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # an explicit boolean mask gives the same
    got2 = attention_velocity(X, Q, K, V, kind="masked", mask=mask, block_size=block_size)
    np.testing.assert_allclose(got2, want, rtol=1e-10, atol=1e-12)


def test_random_mask_matches_naive(np_rng):
    n, d = 16, 2
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    mask = np_rng.random((n, n)) < 0.5
    mask[np.arange(n), np.arange(n)] = True
    want = naive_softmax_velocity(X, Q, K, V, mask=mask)
    got = attention_velocity(X, Q, K, V, kind="masked", mask=mask, block_size=5)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_one_sinkhorn_iteration_equals_softmax(np_rng):
    n, d = 21, 3
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    soft = attention_velocity(X, Q, K, V, kind="softmax")
    sink = attention_velocity(X, Q, K, V, kind="sinkhorn", n_iter=1, epsilon=1.0)
    np.testing.assert_allclose(sink, soft, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sink, naive_softmax_velocity(X, Q, K, V), rtol=1e-10)


@pytest.mark.parametrize("n_iter", [2, 3, 8, 51])
@pytest.mark.parametrize("block_size", [None, 4])
def test_sinkhorn_matches_naive(np_rng, n_iter, block_size):
    n, d = 17, 3
    X = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    eps = 0.7
    P = naive_sinkhorn_matrix(naive_scores(X, Q, K) / eps, n_iter)
    want = P @ (X @ V.T)
    got = attention_velocity(
        X, Q, K, V, kind="sinkhorn", n_iter=n_iter, epsilon=eps, block_size=block_size
    )
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_sinkhorn_converges_to_doubly_stochastic(np_rng):
    # with V = I and X replaced by the identity-like one-hot trick: P @ onehot gives P itself
    n, d = 12, 12
    X = np.eye(n)
    Q = 0.8 * np_rng.standard_normal((d, d))
    K = np_rng.standard_normal((d, d))
    P = attention_velocity(X, Q, K, np.eye(d), kind="sinkhorn", n_iter=401)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-8)
    np.testing.assert_allclose(P.sum(axis=0), 1.0, atol=1e-6)


def test_multihead_matches_sum_of_heads(np_rng):
    n, d, k, H = 15, 4, 2, 3
    X = np_rng.standard_normal((n, d))
    Qs = [np_rng.standard_normal((k, d)) for _ in range(H)]
    Ks = [np_rng.standard_normal((k, d)) for _ in range(H)]
    Vs = [np_rng.standard_normal((k, d)) for _ in range(H)]
    Ws = [np_rng.standard_normal((k, d)) for _ in range(H)]
    want = sum(
        naive_softmax_velocity(X, Qh, Kh, Vh) @ Wh
        for Qh, Kh, Vh, Wh in zip(Qs, Ks, Vs, Ws, strict=True)
    )
    got = attention_velocity(X, Qs, Ks, Vs, W=Ws, block_size=4)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sphere_projection_is_tangent(np_rng):
    n, d = 14, 3
    X = np_rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    v = naive_softmax_velocity(X, Q, K, V)
    want = v - np.sum(v * X, axis=1, keepdims=True) * X
    got = attention_velocity(X, Q, K, V, sphere=True)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.sum(got * X, axis=1), 0.0, atol=1e-12)


def test_batched_velocity_matches_loop(np_rng):
    B, n, d = 3, 11, 2
    X = np_rng.standard_normal((B, n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    got = attention_velocity(X, Q, K, V, block_size=4)
    for b in range(B):
        np.testing.assert_allclose(got[b], naive_softmax_velocity(X[b], Q, K, V), rtol=1e-10)


# --------------------------------------------------------------------------------------------
# particle integration
# --------------------------------------------------------------------------------------------
def test_euler_step_is_explicit_euler(np_rng):
    n, d = 9, 2
    X0 = np_rng.standard_normal((n, d))
    Q, K, V = (np_rng.standard_normal((d, d)) for _ in range(3))
    dt = 0.01
    traj = simulate_particles(X0, Q, K, V, [0.0, dt], method="euler", dt=dt)
    assert traj.shape == (2, n, d)
    np.testing.assert_allclose(traj[0], X0)
    want = X0 + dt * naive_softmax_velocity(X0, Q, K, V)
    np.testing.assert_allclose(traj[1], want, rtol=1e-12)


def _solve_ivp_particles(X0, Q, K, V, t_eval, mask=None):
    n, d = X0.shape

    def rhs(t, y):
        return naive_softmax_velocity(y.reshape(n, d), Q, K, V, mask=mask).ravel()

    sol = scipy.integrate.solve_ivp(
        rhs, (t_eval[0], t_eval[-1]), X0.ravel(), t_eval=t_eval, rtol=1e-11, atol=1e-12
    )
    return sol.y.T.reshape(len(t_eval), n, d)


def test_rk4_matches_solve_ivp_with_fourth_order(np_rng):
    n, d = 12, 2
    X0 = np_rng.standard_normal((n, d))
    Q, K, V = (0.7 * np_rng.standard_normal((d, d)) for _ in range(3))
    t_eval = np.array([0.0, 0.5, 1.0])
    ref = _solve_ivp_particles(X0, Q, K, V, t_eval)
    errs = []
    dts = [0.1, 0.05, 0.025]
    for dt in dts:
        traj = simulate_particles(X0, Q, K, V, t_eval, method="rk4", dt=dt, block_size=5)
        errs.append(np.max(np.abs(traj - ref)))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 3.5 < slope < 4.6, (slope, errs)
    assert errs[-1] < 1e-6


def test_causal_particles_match_solve_ivp(np_rng):
    n, d = 10, 2
    X0 = np_rng.standard_normal((n, d))
    Q, K, V = (0.7 * np_rng.standard_normal((d, d)) for _ in range(3))
    t_eval = np.array([0.0, 0.3, 0.6])
    mask = np.tril(np.ones((n, n), dtype=bool))
    ref = _solve_ivp_particles(X0, Q, K, V, t_eval, mask=mask)
    traj = simulate_particles(X0, Q, K, V, t_eval, kind="masked", mask="causal", dt=0.01)
    np.testing.assert_allclose(traj, ref, atol=1e-8)


def test_clustering_on_the_sphere():
    # Geshkovski et al. (2023): n = 64, d = 3, beta = 1, Q = K = V = I, T = 15, dt = 0.1
    rng = np.random.default_rng(3)
    n, d = 64, 3
    X0 = rng.standard_normal((n, d))
    X0 /= np.linalg.norm(X0, axis=1, keepdims=True)
    I3 = np.eye(d)
    traj = simulate_particles(X0, I3, I3, I3, [0.0, 15.0], dt=0.1, sphere=True)
    XT = traj[-1]
    np.testing.assert_allclose(np.linalg.norm(XT, axis=1), 1.0, atol=1e-10)
    # independent count: connected components of the thresholded Gram matrix
    G = XT @ XT.T > 0.9999
    n_comp = scipy.sparse.csgraph.connected_components(G.astype(int), directed=False)[0]
    assert cluster_count(XT, threshold=0.9999) == n_comp
    assert cluster_count(X0, threshold=0.9999) == n
    assert n_comp <= 3


# --------------------------------------------------------------------------------------------
# Gaussian-measure ODE
# --------------------------------------------------------------------------------------------
def closed_form_cov(S0, A, t):
    return np.linalg.inv(np.linalg.inv(S0) - 2 * t * A)


def closed_form_cov_stable(S0, A, t):
    # (S0^-1 - 2tA)^-1 = R (I - 2t R A R)^-1 R with R = S0^(1/2): accurate for huge t
    w, U = np.linalg.eigh(S0)
    R = (U * np.sqrt(w)) @ U.T
    mu, P = np.linalg.eigh(np.eye(len(w)) - 2 * t * R @ A @ R)
    return R @ (P / mu) @ P.T @ R


def test_closed_form_covariance_v_identity():
    rng = np.random.default_rng(0)
    d = 4
    S0 = random_spd(rng, d)
    B = rng.standard_normal((d, d))
    Asym = -(B @ B.T) / d + 0.1 * np.eye(d)  # symmetric with a small positive part
    t_star = 1.0 / (2 * np.max(np.linalg.eigvalsh(
        scipy.linalg.sqrtm(S0).real @ Asym @ scipy.linalg.sqrtm(S0).real)))
    T = 0.8 * t_star if np.isfinite(t_star) and t_star > 0 else 2.0
    t_eval = np.linspace(0.0, T, 6)
    # A = K^T Q: take K = I, Q = Asym
    means, covs = gaussian_ode(np.zeros(d), S0, Asym, np.eye(d), np.eye(d), t_eval)
    for t, C in zip(t_eval, covs, strict=True):
        want = closed_form_cov(S0, Asym, t)
        rel = np.linalg.norm(C - want) / np.linalg.norm(want)
        assert rel < 1e-6, (t, rel)
        np.testing.assert_allclose(C, C.T, atol=0)
        assert np.min(np.linalg.eigvalsh(C)) > 0


def test_blowup_time_matches_closed_form():
    rng = np.random.default_rng(1)
    d = 3
    S0 = random_spd(rng, d)
    B = rng.standard_normal((d, d))
    Asym = (B + B.T) / 2
    root = scipy.linalg.sqrtm(S0).real
    lam = np.max(np.linalg.eigvalsh(root @ Asym @ root))
    assert lam > 0
    t_star = 1.0 / (2 * lam)
    with pytest.warns(RuntimeWarning, match="blow"):
        res = gaussian_ode(np.zeros(d), S0, Asym, np.eye(d), np.eye(d), [0.0, 2 * t_star])
    assert res.blowup_time == pytest.approx(t_star, rel=1e-5)
    assert np.all(np.isnan(res.covs[-1]))
    np.testing.assert_allclose(res.covs[0], S0)


def test_collapse_onto_kernel_of_negative_A():
    rng = np.random.default_rng(2)
    d, r = 5, 2
    S0 = random_spd(rng, d)
    B = rng.standard_normal((r, d))
    A = -B.T @ B  # negative semi-definite, rank r
    T = 1e4
    res = gaussian_ode(np.zeros(d), S0, A, np.eye(d), np.eye(d), [0.0, T], rank_tol=1e-2)
    assert res.limit_rank == d - r
    np.testing.assert_allclose(res.covs[-1], closed_form_cov(S0, A, T), rtol=1e-5, atol=1e-9)
    assert not np.isfinite(res.blowup_time)


def _solve_ivp_gaussian(m0, S0, rhs_mean, rhs_cov, t_eval):
    d = m0.shape[0]

    def f(t, y):
        m, S = y[:d], y[d:].reshape(d, d)
        return np.concatenate([rhs_mean(m, S), rhs_cov(S).ravel()])

    sol = scipy.integrate.solve_ivp(
        f, (t_eval[0], t_eval[-1]), np.concatenate([m0, S0.ravel()]), t_eval=t_eval,
        rtol=1e-11, atol=1e-12, method="DOP853",
    )
    Y = sol.y.T
    return Y[:, :d], Y[:, d:].reshape(-1, d, d)


def test_softmax_gaussian_ode_general_v_matches_solve_ivp():
    rng = np.random.default_rng(4)
    d = 3
    m0 = rng.standard_normal(d)
    S0 = random_spd(rng, d, 0.5)
    Q, K, V = (0.5 * rng.standard_normal((d, d)) for _ in range(3))
    A = K.T @ Q
    t_eval = np.linspace(0, 0.7, 5)
    m_ref, S_ref = _solve_ivp_gaussian(
        m0, S0,
        lambda m, S: V @ (m + S @ A @ m),
        lambda S: V @ S @ A @ S + S @ A.T @ S @ V.T,
        t_eval,
    )
    means, covs = gaussian_ode(m0, S0, Q, K, V, t_eval)
    np.testing.assert_allclose(means, m_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(covs, S_ref, rtol=1e-7, atol=1e-9)


def test_l2_gaussian_covariance_matches_solve_ivp():
    rng = np.random.default_rng(5)
    d = 3
    S0 = random_spd(rng, d, 0.5)
    Q, K, V = (0.5 * rng.standard_normal((d, d)) for _ in range(3))
    A = K.T @ Q
    Id = np.eye(d)

    def rhs_cov(S):
        R = 2 * V @ S @ np.linalg.inv(Id + 2 * K.T @ K @ S) @ A @ S
        return R + R.T

    t_eval = np.linspace(0, 1.0, 4)
    _, S_ref = _solve_ivp_gaussian(np.zeros(d), S0, lambda m, S: 0 * m, rhs_cov, t_eval)
    _, covs = gaussian_ode(np.zeros(d), S0, Q, K, V, t_eval, kind="l2")
    np.testing.assert_allclose(covs, S_ref, rtol=1e-7, atol=1e-9)


def test_multihead_gaussian_covariance_matches_solve_ivp():
    rng = np.random.default_rng(6)
    d, k, H = 4, 2, 2
    S0 = random_spd(rng, d, 0.5)
    Qs = [0.5 * rng.standard_normal((k, d)) for _ in range(H)]
    Ks = [0.5 * rng.standard_normal((k, d)) for _ in range(H)]
    Vs = [0.5 * rng.standard_normal((k, d)) for _ in range(H)]
    Ws = [rng.standard_normal((k, d)) for _ in range(H)]
    m0 = rng.standard_normal(d)

    def rhs_cov(S):
        heads = zip(Qs, Ks, Vs, Ws, strict=True)
        R = sum(W.T @ Vh @ S @ Kh.T @ Qh @ S for Qh, Kh, Vh, W in heads)
        return R + R.T

    def rhs_mean(m, S):
        heads = zip(Qs, Ks, Vs, Ws, strict=True)
        return sum(W.T @ Vh @ (m + S @ Kh.T @ Qh @ m) for Qh, Kh, Vh, W in heads)

    t_eval = np.linspace(0, 1.0, 4)
    m_ref, S_ref = _solve_ivp_gaussian(m0, S0, rhs_mean, rhs_cov, t_eval)
    means, covs = gaussian_ode(m0, S0, Qs, Ks, Vs, t_eval, kind="multihead", W=Ws)
    np.testing.assert_allclose(covs, S_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(means, m_ref, rtol=1e-7, atol=1e-9)


def _reference_sinkhorn_rhs(S, A, V):
    # the reference note's formula (epsilon = 1), valid for invertible A and S
    d = S.shape[0]
    Sh = scipy.linalg.sqrtm(S).real
    inner = scipy.linalg.sqrtm(4 * Sh @ A.T @ S @ A @ Sh + np.eye(d)).real
    C = 0.5 * (Sh @ inner @ np.linalg.inv(Sh) - np.eye(d))
    R = V @ np.linalg.inv(A.T) @ np.linalg.inv(S) @ C @ S
    return R + R.T


def test_sinkhorn_gaussian_covariance_matches_reference_formula():
    rng = np.random.default_rng(7)
    d = 3
    S0 = random_spd(rng, d, 0.5)
    Q, K, V = (0.6 * rng.standard_normal((d, d)) for _ in range(3))
    A = K.T @ Q
    t_eval = np.linspace(0, 0.8, 3)
    _, S_ref = _solve_ivp_gaussian(
        np.zeros(d), S0, lambda m, S: 0 * m, lambda S: _reference_sinkhorn_rhs(S, A, V), t_eval
    )
    _, covs = gaussian_ode(np.zeros(d), S0, Q, K, V, t_eval, kind="sinkhorn")
    np.testing.assert_allclose(covs, S_ref, rtol=1e-6, atol=1e-8)


def _fit_affine(X, Y):
    Z = np.hstack([np.ones((X.shape[0], 1)), X])
    coef, *_ = np.linalg.lstsq(Z, Y, rcond=None)
    return coef[0], coef[1:].T  # Y ~ b + M x


@pytest.mark.parametrize("kind", ["softmax", "l2", "sinkhorn"])
def test_gaussian_vector_field_matches_monte_carlo(kind):
    # for mu = N(alpha, Sigma) the mean-field velocity is affine: X[mu](x) = b + M x
    rng = np.random.default_rng(8)
    n = 1500 if kind == "sinkhorn" else 5000
    alpha = np.array([0.4, -0.3])
    S = np.array([[0.6, 0.2], [0.2, 0.4]])
    Q = np.array([[0.5, 0.2], [-0.1, 0.4]])
    K = np.array([[0.6, 0.0], [0.3, -0.5]])
    V = np.array([[1.0, 0.3], [-0.2, 0.8]])
    X = rng.multivariate_normal(alpha, S, size=n)
    opts = {"n_iter": 21} if kind == "sinkhorn" else {}
    vel = attention_velocity(X, Q, K, V, kind=kind, block_size=1024, **opts)
    b_mc, M_mc = _fit_affine(X, vel)
    b, M = gaussian_vector_field(alpha, S, Q, K, V, kind=kind)
    np.testing.assert_allclose(M, M_mc, atol=0.05)
    np.testing.assert_allclose(b, b_mc, atol=0.05)


@pytest.mark.parametrize("kind", ["softmax", "l2"])
def test_gaussian_mean_drift_matches_tilted_gaussian_quadrature(kind):
    # exact drift at one point x by quadrature of the tilted Gaussian integral in d = 1
    alpha, s = 0.3, 0.5
    q, k, v = 0.8, -0.6, 1.2
    x = 0.7
    y = np.linspace(alpha - 12, alpha + 12, 200001)
    dens = np.exp(-((y - alpha) ** 2) / (2 * s))
    score = (q * x) * (k * y) if kind == "softmax" else -((q * x - k * y) ** 2)
    w = dens * np.exp(score - score.max())
    want = v * np.sum(w * y) / np.sum(w)
    b, M = gaussian_vector_field(
        np.array([alpha]), np.array([[s]]), np.array([[q]]), np.array([[k]]), np.array([[v]]),
        kind=kind,
    )
    got = b[0] + M[0, 0] * x
    assert got == pytest.approx(want, rel=1e-8)


def _particle_error(n, seed, T=0.5):
    rng = np.random.default_rng(seed)
    alpha = np.array([0.5, -0.2])
    S = np.array([[0.5, 0.15], [0.15, 0.3]])
    Q = np.array([[0.6, 0.1], [0.2, -0.4]])
    K = np.array([[0.7, 0.2], [-0.3, 0.5]])
    V = np.array([[0.9, 0.2], [-0.1, 0.7]])
    X0 = rng.multivariate_normal(alpha, S, size=n)
    traj = simulate_particles(X0, Q, K, V, [0.0, T], dt=0.25)
    m_emp = traj[-1].mean(axis=0)
    S_emp = np.cov(traj[-1].T, bias=True)
    means, covs = gaussian_ode(alpha, S, Q, K, V, [0.0, T])
    return np.linalg.norm(m_emp - means[-1]) + np.linalg.norm(S_emp - covs[-1])


def test_particles_follow_gaussian_ode_at_rate_sqrt_n():
    ns = [100, 400, 1600]
    errs = [np.mean([_particle_error(n, seed) for seed in range(8)]) for n in ns]
    slope = np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert -0.75 < slope < -0.3, (slope, errs)
    assert errs[-1] < 0.1


@pytest.mark.parametrize("d", [3, 4, 5])
def test_rank_histogram_setting_limit_rank(d):
    # Castin et al. (2025): Q in R^{floor(d/2) x d}, K = -Q, V = I; 100 runs per dimension.
    # Sigma collapses onto ker A (dimension ceil(d/2)): the exact limit rank is ceil(d/2).
    rng = np.random.default_rng(40 + d)
    runs = 100
    Qs = rng.standard_normal((runs, d // 2, d))
    G = rng.standard_normal((runs, d, d))
    S0 = G @ np.swapaxes(G, -1, -2)
    for T, tol in [(1e5, 0.1), (1e9, 1e-6)]:
        res = gaussian_ode(
            np.zeros((runs, d)), S0, Qs, -Qs, np.eye(d), [0.0, T], rank_tol=tol, rtol=1e-7
        )
        ranks = np.asarray(res.limit_rank)
        assert ranks.shape == (runs,)
        # independent: Sigma(T) from the closed form, ranks with the same tolerance
        want = np.array([
            np.sum(np.linalg.eigvalsh(closed_form_cov_stable(S0[i], -Qs[i].T @ Qs[i], T)) > tol)
            for i in range(runs)
        ])
        np.testing.assert_array_equal(ranks, want)
        assert np.all(ranks <= math.ceil(d / 2))
        assert np.bincount(ranks).argmax() == math.ceil(d / 2)
    # near-exact rank (tiny tolerance, long time): ceil(d/2) in (almost) every run
    assert np.mean(ranks == math.ceil(d / 2)) >= 0.97


# --------------------------------------------------------------------------------------------
# diagnostics
# --------------------------------------------------------------------------------------------
def test_limit_rank_and_anisotropy_against_eigenvalues(np_rng):
    U, _ = np.linalg.qr(np_rng.standard_normal((4, 4)))
    lam = np.array([3.0, 0.5, 0.05, 1e-6])
    C = U @ np.diag(lam) @ U.T
    assert limit_rank(C, tol=0.1) == 2
    assert limit_rank(C, tol=1e-3) == 3
    assert anisotropy(C) == pytest.approx(3.0 / lam.sum(), rel=1e-12)
    assert anisotropy(np.eye(5)) == pytest.approx(1 / 5)


def test_empirical_moments_match_numpy(np_rng):
    X = np_rng.standard_normal((50, 3))
    m, C = empirical_moments(X)
    np.testing.assert_allclose(m, X.mean(axis=0))
    np.testing.assert_allclose(C, np.cov(X.T, bias=True), atol=1e-14)


def test_gaussian_w2_bures_formula(np_rng):
    # commuting (diagonal) covariances: W2^2 = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    m1, m2 = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    a, b = np.array([2.0, 0.5]), np.array([0.3, 1.5])
    want = np.sqrt(np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert gaussian_w2(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # general case against scipy.linalg.sqrtm
    S1, S2 = random_spd(np_rng, 3), random_spd(np_rng, 3)
    r1 = scipy.linalg.sqrtm(S1).real
    cross = scipy.linalg.sqrtm(r1 @ S2 @ r1).real
    want = np.sqrt(np.trace(S1) + np.trace(S2) - 2 * np.trace(cross))
    got = gaussian_w2(np.zeros(3), S1, np.zeros(3), S2)
    assert got == pytest.approx(want, rel=1e-8)


def test_w2_assignment_matches_brute_force():
    rng = np.random.default_rng(11)
    n, d = 6, 2
    X = rng.standard_normal((n, d))
    mean, cov = np.zeros(d), np.eye(d)
    got, Y = w2_to_gaussian(X, mean, cov, method="assignment", random_state=0, return_sample=True)
    C = cdist(X, Y, "sqeuclidean")
    best = min(C[np.arange(n), list(p)].mean() for p in itertools.permutations(range(n)))
    assert got == pytest.approx(np.sqrt(best), rel=1e-10)
