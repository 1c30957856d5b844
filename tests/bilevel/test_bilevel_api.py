"""API tests: every namespace, shapes, bad input, the study helpers."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sciml_toolbox._array_api import namespace_name, to_numpy
from sciml_toolbox.bilevel import (
    HYPERGRADIENT_METHODS,
    AutogradProblem,
    LogisticProblem,
    QuadraticProblem,
    RidgeProblem,
    conjugate_gradient,
    hypergradient,
    hypergradient_error_curve,
    loglog_slope,
    solve_inner,
    unrolled_hypergradient,
)


def _data(seed=0, n=60, p=6, n_val=40):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    b = A @ w + 0.3 * rng.standard_normal(n)
    Av = rng.standard_normal((n_val, p))
    bv = Av @ w + 0.3 * rng.standard_normal(n_val)
    x = rng.uniform(-1, 1, p)
    return A, b, Av, bv, x


def _problems(xp, seed=0):
    A, b, Av, bv, x = _data(seed)
    to = lambda a: xp.asarray(a, dtype=xp.float64)  # noqa: E731
    rng = np.random.default_rng(seed + 1)
    M = rng.standard_normal((6, 6))
    Q = M @ M.T + 6 * np.eye(6)
    out = {
        "ridge": (RidgeProblem(to(A), to(b), to(Av), to(bv)), to(x)),
        "ridge_scalar": (RidgeProblem(to(A), to(b), to(Av), to(bv), per_feature=False),
                         to(x[:1])),
        "logistic": (LogisticProblem(to(A), to(np.sign(b)), to(Av), to(np.sign(bv))), to(x)),
        "logistic_icpt": (LogisticProblem(to(A), to(np.sign(b)), to(Av), to(np.sign(bv)),
                                          fit_intercept=True), to(x)),
        "quadratic": (QuadraticProblem(to(Q), to(rng.standard_normal((6, 3)))), to(x[:3])),
    }
    return out


@pytest.mark.parametrize("name", ["ridge", "ridge_scalar", "logistic", "logistic_icpt",
                                  "quadratic"])
def test_hypergradient_every_namespace(xp, name):
    prob, x = _problems(xp)[name]
    prob_np, x_np = _problems(__import__("array_api_compat.numpy").numpy)[name]
    z = xp.asarray(np.linspace(-0.5, 0.5, prob.n_inner), dtype=xp.float64)
    z_np = to_numpy(z)
    for method in HYPERGRADIENT_METHODS:
        for solver in ("direct", "cg"):
            h = hypergradient(prob, z, x, method=method, solver=solver)
            assert namespace_name(xp) in type(h).__module__ or namespace_name(xp) == "numpy"
            assert h.shape == (prob.n_outer,)
            ref = hypergradient(prob_np, z_np, x_np, method=method, solver="direct")
            np.testing.assert_allclose(to_numpy(h), ref, rtol=1e-7, atol=1e-12)


def test_solve_inner_and_unrolled_every_namespace(xp):
    prob, x = _problems(xp)["logistic"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r_newton = solve_inner(prob, x, method="newton", tol=1e-10)
    r_gd = solve_inner(prob, x, method="gd", tol=1e-8, max_iter=20000)
    assert r_newton.converged and r_gd.converged
    np.testing.assert_allclose(to_numpy(r_gd.z), to_numpy(r_newton.z), atol=1e-6)
    g, zT = unrolled_hypergradient(prob, x, r_newton.z * 0.0, n_iter=5, step=0.5)
    assert g.shape == x.shape and zT.shape == (prob.n_inner,)
    ridge, xr = _problems(xp)["ridge"]
    r_cg = solve_inner(ridge, xr, method="cg", tol=1e-12)
    np.testing.assert_allclose(to_numpy(r_cg.z), to_numpy(ridge.inner_solution(xr)), atol=1e-9)


def test_solve_inner_path_and_convergence_warning():
    prob, x = _problems(__import__("array_api_compat.numpy").numpy)["logistic"]
    with pytest.warns(ConvergenceWarning, match="grad"):
        res = solve_inner(prob, x, method="gd", tol=1e-12, max_iter=3, return_path=True)
    assert len(res.path) == 4 and not res.converged and res.n_iter == 3


def test_error_curve_and_slope():
    A, b, Av, bv, x = _data(3, n=120, p=8)
    prob = LogisticProblem(A, np.sign(b), Av, np.sign(bv))
    z_star = solve_inner(prob, x, method="newton", tol=1e-14).z
    res = solve_inner(prob, x, z_star + 1.0, method="gd", tol=1e-9, max_iter=5000,
                      return_path=True)
    curve = hypergradient_error_curve(prob, x, res.path, methods=("ift", "newton"))
    d = curve["inner_error"]
    assert d.shape == curve["errors"]["ift"].shape
    s_ift = loglog_slope(d, curve["errors"]["ift"], lo=1e-4, hi=0.3)
    s_newton = loglog_slope(d, curve["errors"]["newton"], lo=1e-4, hi=0.3)
    assert 0.85 < s_ift < 1.15 and 1.7 < s_newton < 2.3
    with pytest.raises(ValueError, match="two points"):
        loglog_slope([1.0], [1.0])


def test_conjugate_gradient_matches_solve():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((20, 20))
    H = M @ M.T + np.eye(20)
    b = rng.standard_normal(20)
    x, k, res = conjugate_gradient(lambda v: H @ v, b, rtol=1e-13)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=1e-8)
    assert k <= 60 and res <= 1e-12 * np.linalg.norm(b)


def test_autograd_problem_on_torch_generic_functions():
    torch = pytest.importorskip("torch")
    # inner: quadratic in z with x-dependent linear term; closed form z* = (x0 * 1 + c)/q
    q = torch.tensor([2.0, 3.0, 4.0], dtype=torch.float64)
    c = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)

    def G(z, x):
        return 0.5 * torch.sum(q * z * z) - torch.sum(z * (x[0] + c)) + 0.1 * torch.sum(z**4)

    def F(z, x):
        return torch.sum(z) + x[0] ** 2

    prob = AutogradProblem(G, F, n_inner=3, n_outer=1)
    x = torch.tensor([0.3], dtype=torch.float64)
    z = solve_inner(prob, x, method="newton", tol=1e-13).z

    def h(t):
        xt = torch.tensor([t], dtype=torch.float64)
        zt = solve_inner(prob, xt, z, method="newton", tol=1e-14).z
        return float(F(zt, xt))

    fd = (h(0.3 + 1e-6) - h(0.3 - 1e-6)) / 2e-6
    for method in HYPERGRADIENT_METHODS:
        assert abs(float(hypergradient(prob, z, x, method=method)[0]) - fd) < 1e-7


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def ridge():
    A, b, Av, bv, x = _data()
    return RidgeProblem(A, b, Av, bv), x


def test_bad_nonfinite_z(ridge):
    prob, x = ridge
    z = np.zeros(prob.n_inner)
    z[0] = np.nan
    with pytest.raises(ValueError, match="z"):
        hypergradient(prob, z, x)


def test_bad_nonfinite_x(ridge):
    prob, x = ridge
    x = x.copy()
    x[1] = np.inf
    with pytest.raises(ValueError, match="x"):
        hypergradient(prob, np.zeros(prob.n_inner), x)


def test_bad_nonfinite_data():
    A, b, Av, bv, _ = _data()
    A[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        RidgeProblem(A, b, Av, bv)


def test_bad_x_shape(ridge):
    prob, x = ridge
    with pytest.raises(ValueError, match="x"):
        hypergradient(prob, np.zeros(prob.n_inner), x[:2])


def test_bad_z_shape(ridge):
    prob, x = ridge
    with pytest.raises(ValueError, match="z"):
        hypergradient(prob, np.zeros(prob.n_inner + 1), x)


def test_bad_validation_shape():
    A, b, Av, bv, _ = _data()
    with pytest.raises(ValueError, match="X_val"):
        RidgeProblem(A, b, Av[:, :3], bv)
    with pytest.raises(ValueError, match="X_val"):
        LogisticProblem(A, np.sign(b), Av[:, :3], np.sign(bv))
    with pytest.raises(ValueError, match="y_val"):
        RidgeProblem(A, b, Av, bv[:5])


def test_bad_missing_validation():
    A, b, _, _, _ = _data()
    with pytest.raises(ValueError, match="X_val"):
        RidgeProblem(A, b)
    with pytest.raises(ValueError, match="outer_vector"):
        RidgeProblem(A, b, outer="linear")


def test_bad_negative_tol(ridge):
    prob, x = ridge
    with pytest.raises(ValueError, match="tol"):
        hypergradient(prob, np.zeros(prob.n_inner), x, tol=-1.0)
    with pytest.raises(ValueError, match="tol"):
        solve_inner(prob, x, tol=-1e-3)


def test_bad_method_and_solver(ridge):
    prob, x = ridge
    with pytest.raises(ValueError, match="method"):
        hypergradient(prob, np.zeros(prob.n_inner), x, method="exact")
    with pytest.raises(ValueError, match="solver"):
        hypergradient(prob, np.zeros(prob.n_inner), x, solver="lu")
    with pytest.raises(ValueError, match="method"):
        solve_inner(prob, x, method="bfgs")


def test_bad_cg_on_nonquadratic():
    A, b, Av, bv, x = _data()
    prob = LogisticProblem(A, np.sign(b), Av, np.sign(bv))
    with pytest.raises(ValueError, match="quadratic"):
        solve_inner(prob, x, method="cg")


def test_bad_quadratic_not_strongly_convex():
    Q = np.diag([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="Q"):
        QuadraticProblem(Q, np.ones((3, 1)))
    with pytest.raises(ValueError, match="Q"):
        QuadraticProblem(np.diag([1.0, -1.0, 2.0]), np.ones((3, 1)))


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_bad_autograd_not_strongly_convex(solver):
    torch = pytest.importorskip("torch")

    def G(z, x):  # a saddle: not strongly convex
        return 0.5 * (z[0] ** 2 - z[1] ** 2) - x[0] * z[0]

    prob = AutogradProblem(G, lambda z, x: torch.sum(z))
    z = torch.tensor([0.1, 0.2], dtype=torch.float64)
    x = torch.tensor([0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="strongly convex"):
        hypergradient(prob, z, x, solver=solver)
    with pytest.raises(ValueError, match="strongly convex"):
        hypergradient(prob, z, x, method="jacobi")


def test_bad_labels():
    A, b, Av, bv, _ = _data()
    with pytest.raises(ValueError, match="y"):
        LogisticProblem(A, b, Av, np.sign(bv))
    with pytest.raises(ValueError, match="y_val"):
        LogisticProblem(A, np.sign(b), Av, bv)


def test_bad_reg_scale():
    A, b, Av, bv, _ = _data()
    with pytest.raises(ValueError, match="reg_scale"):
        RidgeProblem(A, b, Av, bv, reg_scale=-1.0)


def test_bad_outer_option():
    A, b, Av, bv, _ = _data()
    with pytest.raises(ValueError, match="outer"):
        RidgeProblem(A, b, Av, bv, outer="cubic")


def test_bad_autograd_needs_z0():
    torch = pytest.importorskip("torch")
    prob = AutogradProblem(lambda z, x: torch.sum(z * z), lambda z, x: torch.sum(z))
    with pytest.raises(ValueError, match="z0"):
        solve_inner(prob, torch.zeros(2, dtype=torch.float64))


def test_bad_autograd_callables():
    with pytest.raises(TypeError, match="inner"):
        AutogradProblem(1.0, lambda z, x: z)
    with pytest.raises(TypeError, match="outer"):
        AutogradProblem(lambda z, x: z, None)


def test_bad_unrolled_args(ridge):
    prob, x = ridge
    with pytest.raises(ValueError, match="step"):
        unrolled_hypergradient(prob, x, np.zeros(prob.n_inner), n_iter=3, step=-0.1)
    with pytest.raises(ValueError, match="n_iter"):
        unrolled_hypergradient(prob, x, np.zeros(prob.n_inner), n_iter=-1, step=0.1)


def test_inputs_not_modified(ridge):
    prob, x = ridge
    z = np.linspace(-1, 1, prob.n_inner)
    z0, x0 = z.copy(), x.copy()
    for method in HYPERGRADIENT_METHODS:
        hypergradient(prob, z, x, method=method)
    assert np.array_equal(z, z0) and np.array_equal(x, x0)
