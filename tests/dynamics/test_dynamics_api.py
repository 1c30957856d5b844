"""API of sciml_toolbox.dynamics: namespaces agree, outputs stay in the caller's namespace, and
bad input is rejected with messages naming the argument."""

import math
import warnings

import numpy as np
import pytest

from sciml_toolbox._array_api import get_namespace, namespace_name, to_numpy
from sciml_toolbox.dynamics import (
    GaussianODEResult,
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


def _to(xp, a):
    a = np.asarray(a)
    if a.dtype == bool:
        return xp.asarray(a.tolist(), dtype=xp.bool)
    return xp.asarray(a.tolist(), dtype=xp.float64)


def _same_ns(out, xp):
    assert namespace_name(get_namespace(out)) == namespace_name(xp)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n, d = 13, 3
    return dict(
        X=rng.standard_normal((n, d)),
        Q=0.6 * rng.standard_normal((d, d)),
        K=0.6 * rng.standard_normal((d, d)),
        V=rng.standard_normal((d, d)),
        mean=rng.standard_normal(d),
        cov=np.array([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.3]]),
    )


# --------------------------------------------------------------------------------------------
# namespaces agree
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,opts",
    [
        ("softmax", {}),
        ("l2", {}),
        ("sinkhorn", {"n_iter": 4, "epsilon": 0.5}),
        ("sinkhorn", {"n_iter": 5}),
        ("sigmoid", {"bias": -0.5}),
        ("masked", {}),
        ("softmax", {"sphere": True}),
    ],
)
@pytest.mark.parametrize("block_size", [None, 4])
def test_velocity_namespaces_agree(xp, problem, kind, opts, block_size):
    p = problem
    want = attention_velocity(p["X"], p["Q"], p["K"], p["V"], kind=kind, block_size=block_size,
                              **opts)
    got = attention_velocity(_to(xp, p["X"]), _to(xp, p["Q"]), _to(xp, p["K"]), _to(xp, p["V"]),
                             kind=kind, block_size=block_size, **opts)
    _same_ns(got, xp)
    assert got.dtype == xp.float64
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12)


def test_velocity_explicit_mask_and_multihead(xp, problem):
    p = problem
    n, d = p["X"].shape
    mask = np.random.default_rng(1).random((n, n)) < 0.6
    want = attention_velocity(p["X"], [p["Q"], p["K"]], [p["K"], p["Q"]], [p["V"], p["V"]],
                              mask=mask, block_size=5)
    got = attention_velocity(_to(xp, p["X"]), [_to(xp, p["Q"]), _to(xp, p["K"])],
                             [_to(xp, p["K"]), _to(xp, p["Q"])], [_to(xp, p["V"])] * 2,
                             mask=_to(xp, mask), block_size=5)
    _same_ns(got, xp)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12)


def test_parameters_from_numpy_follow_x(xp, problem):
    # Q, K, V given as NumPy arrays are moved to X's namespace
    p = problem
    got = attention_velocity(_to(xp, p["X"]), p["Q"], p["K"], p["V"])
    _same_ns(got, xp)
    np.testing.assert_allclose(to_numpy(got), attention_velocity(p["X"], p["Q"], p["K"], p["V"]))


def test_simulate_namespaces_agree_batched(xp, problem):
    p = problem
    X0 = np.stack([p["X"], p["X"][::-1] * 0.5])
    t = [0.0, 0.1, 0.25]
    want = simulate_particles(X0, p["Q"], p["K"], p["V"], t, dt=0.05, block_size=6)
    assert want.shape == (2, 3) + p["X"].shape
    got = simulate_particles(_to(xp, X0), _to(xp, p["Q"]), _to(xp, p["K"]), _to(xp, p["V"]),
                             t, dt=0.05, block_size=6)
    _same_ns(got, xp)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12)
    single = simulate_particles(X0[1], p["Q"], p["K"], p["V"], t, dt=0.05)
    np.testing.assert_allclose(want[1], single, rtol=1e-10, atol=1e-12)


def test_simulate_sphere_namespaces_agree(xp, problem):
    p = problem
    t = [0.0, 0.5]
    want = simulate_particles(p["X"], p["Q"], p["K"], p["V"], t, dt=0.1, sphere=True,
                              method="euler")
    got = simulate_particles(_to(xp, p["X"]), _to(xp, p["Q"]), _to(xp, p["K"]), _to(xp, p["V"]),
                             t, dt=0.1, sphere=True, method="euler")
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(want[-1], axis=1), 1.0)


@pytest.mark.parametrize("kind", ["softmax", "l2", "sinkhorn", "multihead"])
def test_gaussian_ode_namespaces_agree(xp, problem, kind):
    p = problem
    Q, K, V = (p["Q"], p["K"], p["V"]) if kind != "multihead" else (
        [p["Q"], p["K"]], [p["K"], p["Q"]], [p["V"], -p["V"]])
    t = [0.0, 0.2, 0.4]
    want = gaussian_ode(p["mean"], p["cov"], Q, K, V, t, kind=kind)
    conv = (lambda a: [_to(xp, x) for x in a]) if kind == "multihead" else (lambda a: _to(xp, a))
    got = gaussian_ode(_to(xp, p["mean"]), _to(xp, p["cov"]), conv(Q), conv(K), conv(V), t,
                       kind=kind)
    assert isinstance(got, GaussianODEResult)
    _same_ns(got.means, xp)
    _same_ns(got.covs, xp)
    np.testing.assert_allclose(to_numpy(got.means), to_numpy(want.means), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(got.covs), to_numpy(want.covs), rtol=1e-9, atol=1e-12)
    b, M = gaussian_vector_field(_to(xp, p["mean"]), _to(xp, p["cov"]), conv(Q), conv(K),
                                 conv(V), kind=kind)
    _same_ns(M, xp)
    assert tuple(M.shape) == (3, 3) and tuple(b.shape) == (3,)


def test_gaussian_ode_shapes_and_psd(problem):
    p = problem
    t = np.linspace(0, 0.5, 7)
    means, covs = gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], t)
    assert means.shape == (7, 3) and covs.shape == (7, 3, 3)
    np.testing.assert_array_equal(covs, np.swapaxes(covs, -1, -2))
    assert np.all(np.linalg.eigvalsh(covs) > -1e-12)
    # a singular initial covariance is allowed and stays PSD
    sing = np.diag([1.0, 0.5, 0.0])
    _, covs = gaussian_ode(p["mean"], sing, p["Q"], p["K"], p["V"], t / 2)
    assert np.all(np.linalg.eigvalsh(covs) > -1e-12)


def test_gaussian_ode_batch_matches_loop(problem):
    p = problem
    rng = np.random.default_rng(3)
    Qs = 0.5 * rng.standard_normal((4, 3, 3))
    t = [0.0, 0.3]
    res = gaussian_ode(p["mean"], p["cov"], Qs, p["K"], p["V"], t)
    assert res.means.shape == (4, 2, 3) and res.covs.shape == (4, 2, 3, 3)
    assert res.limit_rank.shape == (4,)
    for i in range(4):
        one = gaussian_ode(p["mean"], p["cov"], Qs[i], p["K"], p["V"], t)
        np.testing.assert_allclose(res.covs[i], one.covs, rtol=1e-8, atol=1e-12)


def test_float32_torch_stays_float32(problem):
    torch = pytest.importorskip("torch")
    p = problem
    X = torch.tensor(p["X"], dtype=torch.float32)
    out = simulate_particles(X, p["Q"], p["K"], p["V"], [0.0, 0.1], dt=0.05)
    assert out.dtype == torch.float32
    res = gaussian_ode(torch.tensor(p["mean"], dtype=torch.float32),
                       torch.tensor(p["cov"], dtype=torch.float32), p["Q"], p["K"], p["V"],
                       [0.0, 0.1], rtol=1e-5, atol=1e-7)
    assert res.covs.dtype == torch.float32


def test_diagnostics_namespaces_agree(xp, problem):
    p = problem
    covs = np.stack([p["cov"], np.diag([2.0, 0.05, 0.01])])
    np.testing.assert_array_equal(to_numpy(limit_rank(_to(xp, covs))), limit_rank(covs))
    assert limit_rank(_to(xp, p["cov"])) == limit_rank(p["cov"]) == 3
    np.testing.assert_allclose(to_numpy(anisotropy(_to(xp, covs))), anisotropy(covs))
    m, C = empirical_moments(_to(xp, p["X"]))
    _same_ns(C, xp)
    m0, C0 = empirical_moments(p["X"])
    np.testing.assert_allclose(to_numpy(C), C0, atol=1e-14)
    w = gaussian_w2(_to(xp, p["mean"]), _to(xp, p["cov"]), _to(xp, m0), _to(xp, C0))
    assert w == pytest.approx(gaussian_w2(p["mean"], p["cov"], m0, C0), rel=1e-10)
    assert w2_to_gaussian(_to(xp, p["X"]), p["mean"], p["cov"]) == pytest.approx(
        w2_to_gaussian(p["X"], p["mean"], p["cov"]), rel=1e-10)
    Xc = np.repeat(np.eye(3), 4, axis=0)
    assert cluster_count(_to(xp, Xc)) == 3


def test_inputs_not_modified(problem):
    p = problem
    copies = {k: v.copy() for k, v in p.items()}
    simulate_particles(p["X"], p["Q"], p["K"], p["V"], [0, 0.1], sphere=True)
    gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], [0, 0.1])
    for k in p:
        np.testing.assert_array_equal(p[k], copies[k])


def test_max_steps_warns(problem):
    from sklearn.exceptions import ConvergenceWarning

    p = problem
    with pytest.warns(ConvergenceWarning, match="max_steps"):
        res = gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], [0, 1.0], max_steps=3)
    assert np.all(np.isnan(res.covs[-1]))


def test_no_warning_without_blowup(problem):
    p = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], [0, 0.5])
    assert math.isinf(res.blowup_time)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
def test_non_psd_covariance(problem):
    p = problem
    with pytest.raises(ValueError, match="cov0.*positive semi-definite"):
        gaussian_ode(p["mean"], np.diag([1.0, -0.5, 1.0]), p["Q"], p["K"], p["V"], [0, 1])


def test_non_symmetric_covariance(problem):
    p = problem
    bad = p["cov"].copy()
    bad[0, 1] += 0.3
    with pytest.raises(ValueError, match="cov0.*symmetric"):
        gaussian_ode(p["mean"], bad, p["Q"], p["K"], p["V"], [0, 1])


def test_non_square_covariance(problem):
    p = problem
    with pytest.raises(ValueError, match="cov0"):
        gaussian_ode(p["mean"], np.ones((3, 2)), p["Q"], p["K"], p["V"], [0, 1])


def test_mean_shape_mismatch(problem):
    p = problem
    with pytest.raises(ValueError, match="mean0"):
        gaussian_ode(np.zeros(4), p["cov"], p["Q"], p["K"], p["V"], [0, 1])


def test_gaussian_batch_mismatch(problem):
    p = problem
    with pytest.raises(ValueError, match="batch shapes"):
        gaussian_ode(np.zeros((2, 3)), np.stack([p["cov"]] * 5), p["Q"], p["K"], p["V"], [0, 1])


@pytest.mark.parametrize("which", ["Q", "K", "V"])
def test_matrix_shape_mismatch(problem, which):
    p = dict(problem)
    p[which] = np.ones((3, 4))
    with pytest.raises(ValueError, match=which):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"])
    with pytest.raises(ValueError, match=which):
        gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], [0, 1])


def test_rectangular_value_needs_output_map(problem):
    p = problem
    with pytest.raises(ValueError, match="V"):
        attention_velocity(p["X"], p["Q"], p["K"], np.ones((2, 3)))


def test_output_map_shape(problem):
    p = problem
    with pytest.raises(ValueError, match=r"W\[0\]"):
        attention_velocity(p["X"], [p["Q"]], [p["K"]], [np.ones((2, 3))], W=[np.ones((3, 3))])


def test_head_lists_of_different_lengths(problem):
    p = problem
    with pytest.raises(ValueError, match="K must be a list of 2"):
        attention_velocity(p["X"], [p["Q"], p["Q"]], [p["K"]], [p["V"], p["V"]])


def test_heads_mixing_list_and_matrix(problem):
    p = problem
    with pytest.raises(TypeError, match="K must be a list"):
        attention_velocity(p["X"], [p["Q"]], p["K"], [p["V"]])


@pytest.mark.parametrize("name", ["X0", "Q"])
def test_non_finite_particles_or_matrices(problem, name):
    p = problem
    args = {"X0": p["X"].copy(), "Q": p["Q"].copy()}
    args[name][0, 0] = np.nan
    with pytest.raises(ValueError, match=f"{name}.*finite"):
        simulate_particles(args["X0"], args["Q"], p["K"], p["V"], [0, 1])


def test_non_finite_covariance(problem):
    p = problem
    bad = p["cov"].copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="cov0.*finite"):
        gaussian_ode(p["mean"], bad, p["Q"], p["K"], p["V"], [0, 1])


def test_non_finite_mean(problem):
    p = problem
    with pytest.raises(ValueError, match="mean0.*finite"):
        gaussian_ode(np.array([0.0, np.nan, 0.0]), p["cov"], p["Q"], p["K"], p["V"], [0, 1])


@pytest.mark.parametrize("dt", [0.0, -0.1])
def test_dt_must_be_positive(problem, dt):
    p = problem
    with pytest.raises(ValueError, match="dt"):
        simulate_particles(p["X"], p["Q"], p["K"], p["V"], [0, 1], dt=dt)


def test_dt_must_be_a_number(problem):
    p = problem
    with pytest.raises(TypeError, match="dt"):
        simulate_particles(p["X"], p["Q"], p["K"], p["V"], [0, 1], dt="0.1")


@pytest.mark.parametrize("t_eval", [[1.0, 0.5], [0.0, np.nan], [], [[0.0, 1.0]]])
def test_bad_t_eval(problem, t_eval):
    p = problem
    with pytest.raises(ValueError, match="t_eval"):
        simulate_particles(p["X"], p["Q"], p["K"], p["V"], t_eval)
    with pytest.raises(ValueError, match="t_eval"):
        gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], t_eval)


def test_bad_kind(problem):
    p = problem
    with pytest.raises(ValueError, match="kind"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], kind="relu")
    with pytest.raises(ValueError, match="kind"):
        gaussian_ode(p["mean"], p["cov"], p["Q"], p["K"], p["V"], [0, 1], kind="sigmoid")


def test_bad_method(problem):
    p = problem
    with pytest.raises(ValueError, match="method"):
        simulate_particles(p["X"], p["Q"], p["K"], p["V"], [0, 1], method="rk45")


@pytest.mark.parametrize("bs,exc", [(0, ValueError), (2.5, TypeError)])
def test_bad_block_size(problem, bs, exc):
    p = problem
    with pytest.raises(exc, match="block_size"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], block_size=bs)


def test_bad_mask_shape(problem):
    p = problem
    with pytest.raises(ValueError, match="mask"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], kind="masked",
                           mask=np.ones((4, 4), dtype=bool))


def test_bad_mask_dtype(problem):
    p = problem
    n = p["X"].shape[0]
    with pytest.raises(TypeError, match="mask"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], mask=np.ones((n, n)))


def test_mask_with_sinkhorn(problem):
    p = problem
    with pytest.raises(ValueError, match="mask"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], kind="sinkhorn", mask="causal")


def test_bad_mask_string(problem):
    p = problem
    with pytest.raises(ValueError, match="mask"):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], mask="upper")


@pytest.mark.parametrize("kw,exc", [({"epsilon": 0.0}, ValueError), ({"n_iter": 0}, ValueError),
                                    ({"bias": np.inf}, ValueError),
                                    ({"normalize": 1}, TypeError), ({"sphere": "yes"}, TypeError)])
def test_bad_options(problem, kw, exc):
    p = problem
    name = next(iter(kw))
    with pytest.raises(exc, match=name):
        attention_velocity(p["X"], p["Q"], p["K"], p["V"], kind="sinkhorn"
                           if name in ("epsilon", "n_iter") else "sigmoid", **kw)


def test_bad_particle_shape(problem):
    p = problem
    with pytest.raises(ValueError, match="X"):
        attention_velocity(p["X"][0], p["Q"], p["K"], p["V"])


def test_zero_rows_on_sphere(problem):
    p = problem
    X = p["X"].copy()
    X[2] = 0
    with pytest.raises(ValueError, match="X0"):
        simulate_particles(X, p["Q"], p["K"], p["V"], [0, 1], sphere=True)


def test_diagnostics_bad_input(problem):
    with pytest.raises(ValueError, match="cov"):
        limit_rank(np.ones((3, 2)))
    with pytest.raises(ValueError, match="threshold"):
        cluster_count(np.ones((3, 2)), threshold=1.5)
    with pytest.raises(ValueError, match="cov"):
        anisotropy(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="mean2"):
        gaussian_w2(np.zeros(3), np.eye(3), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        w2_to_gaussian(np.ones((4, 3)), np.zeros(3), np.eye(3), method="sinkhorn")
    with pytest.raises(ValueError, match="mean and cov"):
        w2_to_gaussian(np.ones((4, 3)), np.zeros(2), np.eye(2))


@pytest.mark.slow
def test_memory_stays_linear_at_n_1e5():
    # n = 1e5, d = 16: the dense float64 score matrix would need 80 GB; the blocked path must
    # stay within a few blocks of scores (16 MB each) plus O(n d)
    import tracemalloc

    rng = np.random.default_rng(0)
    n, d = 100_000, 16
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = rng.standard_normal((d, d)) / 4
    tracemalloc.start()
    try:
        v = attention_velocity(X, Q, Q, np.eye(d))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.all(np.isfinite(v))
    assert peak < 200 * 2**20, peak / 2**20
    # spot check 5 rows against the exact softmax
    idx = [0, 1, 50_000, 77_777, n - 1]
    S = (X[idx] @ Q.T) @ (X @ Q.T).T
    P = np.exp(S - S.max(axis=1, keepdims=True))
    want = (P / P.sum(axis=1, keepdims=True)) @ X
    np.testing.assert_allclose(v[idx], want, rtol=1e-10, atol=1e-12)


def test_gaussian_w2_rejects_covariances_that_are_not_psd():
    # issue 17: diag(1, -1) against itself used to give W2 = 0.0
    bad = np.diag([1.0, -1.0])
    before = bad.copy()
    with pytest.raises(ValueError, match="cov1 must be positive semi-definite"):
        gaussian_w2(np.zeros(2), bad, np.zeros(2), bad)
    with pytest.raises(ValueError, match="cov2 must be positive semi-definite"):
        gaussian_w2(np.zeros(2), np.eye(2), np.zeros(2), bad)
    with pytest.raises(ValueError, match="cov2 must be symmetric"):
        gaussian_w2(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        w2_to_gaussian(np.ones((4, 2)), np.zeros(2), bad)
    np.testing.assert_array_equal(bad, before)
    # a rank-deficient PSD covariance with round-off is still accepted: W2 between
    # N(0, diag(1, 0)) and N(0, diag(0, 1)) is sqrt(2) (both traces, no cross term)
    eps = -1e-15
    got = gaussian_w2(np.zeros(2), np.diag([1.0, eps]), np.zeros(2), np.diag([eps, 1.0]))
    assert got == pytest.approx(np.sqrt(2.0), rel=1e-7)
