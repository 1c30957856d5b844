"""Independent checks of the hypergradient estimators.

Every reference here is computed without the package: closed forms for ridge and the quadratic,
a tightly solved SciPy problem plus finite differences for logistic regression, torch autograd
for the reparameterized estimators, and finite differences of the unrolled map.
Conventions follow Ye, Peyre, Cremers & Ablin (2024), "Enhancing hypergradients estimation: a
study of preconditioning and reparameterization" (AISTATS): inner
G(z, x) = loss(z) + 1/2 sum_i c exp(x_i) z_i^2 with c = 1/p.
"""

import numpy as np
import pytest
import scipy.optimize
from scipy.special import expit

from sciml_toolbox.bilevel import (
    LogisticProblem,
    QuadraticProblem,
    RidgeProblem,
    hypergradient,
    unrolled_hypergradient,
)


# ---------------------------------------------------------------------------------------------
# independent numpy references
# ---------------------------------------------------------------------------------------------
def ridge_data(seed=0, n=80, p=12, n_val=60):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    b = A @ w + 0.5 * rng.standard_normal(n)
    Av = rng.standard_normal((n_val, p))
    bv = Av @ w + 0.5 * rng.standard_normal(n_val)
    x = rng.uniform(-1.0, 2.0, p)
    return A, b, Av, bv, x


def ridge_zstar(A, b, x):
    n, p = A.shape
    lam = np.exp(x) / p * np.ones(p)
    return np.linalg.solve(A.T @ A / n + np.diag(lam), A.T @ b / n)


def ridge_outer(z, Av, bv):
    return 0.5 * np.mean((Av @ z - bv) ** 2)


def ridge_h(x, A, b, Av, bv):
    return ridge_outer(ridge_zstar(A, b, x), Av, bv)


def fd_grad(f, x, eps):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def ridge_hstar(A, b, Av, bv, x):
    """Closed-form hypergradient: -(c e^x * z*) * H^{-1} grad_z F."""
    n, p = A.shape
    z = ridge_zstar(A, b, x)
    H = A.T @ A / n + np.diag(np.exp(x) / p * np.ones(p))
    gF = Av.T @ (Av @ z - bv) / Av.shape[0]
    v = np.linalg.solve(H, gF)
    full = -(np.exp(x) / p * z * v)
    return full if x.size == p else np.array([full.sum()])


def logistic_data(seed=0, n=150, p=8, n_val=100):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    w = rng.standard_normal(p)
    y = np.where(A @ w + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    Av = rng.standard_normal((n_val, p))
    yv = np.where(Av @ w + 0.5 * rng.standard_normal(n_val) > 0, 1.0, -1.0)
    x = rng.uniform(-1.0, 1.0, p)
    return A, y, Av, yv, x


def logit_G(z, x, A, y):
    p = A.shape[1]
    return np.mean(np.logaddexp(0, -y * (A @ z))) + 0.5 * np.sum(np.exp(x) / p * z * z)


def logit_grad(z, x, A, y):
    p = A.shape[1]
    return A.T @ (-y * expit(-y * (A @ z))) / A.shape[0] + np.exp(x) / p * z


def logit_hess(z, x, A, y):
    p = A.shape[1]
    s = expit(A @ z) * expit(-(A @ z))
    return (A.T * s) @ A / A.shape[0] + np.diag(np.exp(x) / p * np.ones(p))


def logit_zstar(A, y, x):
    p = A.shape[1]
    res = scipy.optimize.minimize(
        logit_G, np.zeros(p), args=(x, A, y), jac=logit_grad, hess=logit_hess,
        method="trust-exact", options={"gtol": 1e-13},
    )
    z = res.x
    for _ in range(3):  # polish to machine precision
        z = z - np.linalg.solve(logit_hess(z, x, A, y), logit_grad(z, x, A, y))
    return z


def logit_outer_grad(z, Av, yv):
    return Av.T @ (-yv * expit(-yv * (Av @ z))) / Av.shape[0]


def logit_hstar(A, y, Av, yv, x):
    p = A.shape[1]
    z = logit_zstar(A, y, x)
    v = np.linalg.solve(logit_hess(z, x, A, y), logit_outer_grad(z, Av, yv))
    return -(np.exp(x) / p * z * v), z


def gd_path(grad, z0, step, n_iter):
    zs = [z0]
    z = z0
    for _ in range(n_iter):
        z = z - step * grad(z)
        zs.append(z)
    return zs


# ---------------------------------------------------------------------------------------------
# ridge
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_feature", [True, False])
def test_ridge_closed_form_matches_finite_differences(per_feature):
    A, b, Av, bv, x = ridge_data()
    if not per_feature:
        x = x[:1]
    h_fd = fd_grad(lambda t: ridge_h(t, A, b, Av, bv), x, 1e-5)
    h_cf = ridge_hstar(A, b, Av, bv, x)
    np.testing.assert_allclose(h_cf, h_fd, rtol=1e-6, atol=1e-10)
    prob = RidgeProblem(A, b, Av, bv, per_feature=per_feature)
    z = ridge_zstar(A, b, x)
    for solver in ("direct", "cg"):
        h = hypergradient(prob, z, x, method="ift", solver=solver)
        np.testing.assert_allclose(h, h_fd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_ridge_newton_exact_at_any_iterate(solver):
    A, b, Av, bv, x = ridge_data(seed=1)
    prob = RidgeProblem(A, b, Av, bv)
    h_ref = ridge_hstar(A, b, Av, bv, x)
    rng = np.random.default_rng(3)
    for scale in (1e-3, 1.0, 30.0):
        z = ridge_zstar(A, b, x) + scale * rng.standard_normal(x.size)
        h = hypergradient(prob, z, x, method="newton", solver=solver, tol=1e-14)
        assert np.max(np.abs(h - h_ref)) <= 1e-10 * max(1.0, np.max(np.abs(h_ref)))
        # plain IFT is wrong there (sanity: the test can fail)
        h_ift = hypergradient(prob, z, x, method="ift", solver=solver)
        assert np.max(np.abs(h_ift - h_ref)) > 1e-6 * scale


def test_ridge_inner_solution_closed_form():
    A, b, Av, bv, x = ridge_data(seed=2)
    prob = RidgeProblem(A, b, Av, bv)
    np.testing.assert_allclose(prob.inner_solution(x), ridge_zstar(A, b, x), rtol=1e-10)


def test_ridge_linear_outer_matches_closed_form():
    A, b, _, _, x = ridge_data(seed=4)
    n, p = A.shape
    c = np.random.default_rng(0).standard_normal(p)
    prob = RidgeProblem(A, b, outer="linear", outer_vector=c)

    def h(t):
        return c @ ridge_zstar(A, b, t) + t @ t

    h_fd = fd_grad(h, x, 1e-5)
    z = ridge_zstar(A, b, x)
    np.testing.assert_allclose(hypergradient(prob, z, x), h_fd, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# general quadratic
# ---------------------------------------------------------------------------------------------
def test_quadratic_closed_form():
    rng = np.random.default_rng(5)
    p, q = 7, 4
    M = rng.standard_normal((p, p))
    Q = M @ M.T + p * np.eye(p)
    B = rng.standard_normal((p, q))
    c = rng.standard_normal(p)
    C = rng.standard_normal((5, p))
    d = rng.standard_normal(5)
    mu = 0.3
    x = rng.standard_normal(q)

    def h(t):
        z = np.linalg.solve(Q, B @ t + c)
        return 0.5 * np.sum((C @ z - d) ** 2) + 0.5 * mu * t @ t

    z = np.linalg.solve(Q, B @ x + c)
    h_cf = B.T @ np.linalg.solve(Q, C.T @ (C @ z - d)) + mu * x
    np.testing.assert_allclose(h_cf, fd_grad(h, x, 1e-5), rtol=1e-7)
    prob = QuadraticProblem(Q, B, c, C, d, mu=mu)
    np.testing.assert_allclose(hypergradient(prob, z, x), h_cf, rtol=1e-10)
    z_bad = z + rng.standard_normal(p)
    np.testing.assert_allclose(hypergradient(prob, z_bad, x, method="newton"), h_cf, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# logistic regression
# ---------------------------------------------------------------------------------------------
def test_logistic_reference_matches_finite_differences():
    A, y, Av, yv, x = logistic_data()
    h_ref, z = logit_hstar(A, y, Av, yv, x)

    def h(t):
        zt = logit_zstar(A, y, t)
        return np.mean(np.logaddexp(0, -yv * (Av @ zt)))

    np.testing.assert_allclose(h_ref, fd_grad(h, x, 1e-4), rtol=1e-5, atol=1e-9)
    prob = LogisticProblem(A, y, Av, yv)
    for method in ("ift", "newton", "jacobi", "reparam_exp", "reparam_diag"):
        # at the exact solution every estimator is the IFT hypergradient
        np.testing.assert_allclose(hypergradient(prob, z, x, method=method), h_ref, rtol=1e-8,
                                   atol=1e-12)


def test_logistic_labels_01_equivalent_to_pm1():
    A, y, Av, yv, x = logistic_data(seed=3)
    h_ref, z = logit_hstar(A, y, Av, yv, x)
    prob = LogisticProblem(A, (y + 1) / 2, Av, (yv + 1) / 2)
    np.testing.assert_allclose(hypergradient(prob, z, x), h_ref, rtol=1e-8, atol=1e-12)


def _slopes(seed):
    A, y, Av, yv, x = logistic_data(seed=seed, n=200, p=10, n_val=150)
    h_ref, z_star = logit_hstar(A, y, Av, yv, x)
    prob = LogisticProblem(A, y, Av, yv)
    L = np.linalg.eigvalsh(logit_hess(np.zeros(A.shape[1]), x, A, y)).max()
    rng = np.random.default_rng(seed)
    z0 = z_star + 3.0 * rng.standard_normal(z_star.size)
    zs = gd_path(lambda z: logit_grad(z, x, A, y), z0, 1.0 / L, 4000)
    d = np.array([np.linalg.norm(z - z_star) for z in zs])
    keep = np.flatnonzero((d < 10**-0.5) & (d > 10**-3.5))
    keep = keep[np.linspace(0, keep.size - 1, 40).astype(int)]
    out = {}
    for method in ("ift", "newton", "jacobi"):
        err = [np.linalg.norm(hypergradient(prob, zs[k], x, method=method) - h_ref) for k in keep]
        out[method] = np.polyfit(np.log(d[keep]), np.log(err), 1)[0]
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_loglog_slopes(seed):
    """The paper's central claim: error O(delta) for the IFT, O(delta^2) with Newton."""
    s = _slopes(seed)
    assert abs(s["ift"] - 1.0) <= 0.1, s
    assert abs(s["newton"] - 2.0) <= 0.2, s
    assert abs(s["jacobi"] - 1.0) <= 0.2, s


# ---------------------------------------------------------------------------------------------
# reparameterization: against torch autograd applied to G(phi(u, x), x)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["exp", "diag"])
def test_reparam_matches_autograd(kind):
    torch = pytest.importorskip("torch")
    A, y, Av, yv, x = logistic_data(seed=6, n=60, p=5, n_val=40)
    _, z_star = logit_hstar(A, y, Av, yv, x)
    zhat = z_star + 0.3 * np.random.default_rng(1).standard_normal(z_star.size)
    At, yt, Avt, yvt = (torch.tensor(a) for a in (A, y, Av, yv))
    p = A.shape[1]
    zh = torch.tensor(zhat)

    def G(z, xx):
        return torch.mean(torch.nn.functional.softplus(-yt * (At @ z))) + 0.5 * torch.sum(
            torch.exp(xx) / p * z * z
        )

    def hess_diag(xx):
        s = torch.sigmoid(At @ zh) * torch.sigmoid(-(At @ zh))
        return (At**2).T @ s / A.shape[0] + torch.exp(xx) / p

    if kind == "exp":
        def phi(u, xx):
            return torch.sign(zh) * torch.exp(u)
        u0 = torch.log(torch.abs(zh))
    else:
        def phi(u, xx):
            return u / hess_diag(xx)
        u0 = zh * hess_diag(torch.tensor(x))

    xt = torch.tensor(x)

    def Gt(u, xx):
        return G(phi(u, xx), xx)

    Hu = torch.autograd.functional.hessian(lambda u: Gt(u, xt), u0)
    cross = torch.autograd.functional.jacobian(
        lambda xx: torch.autograd.functional.jacobian(lambda u: Gt(u, xx), u0, create_graph=True),
        xt,
    )  # (p_u, q)
    du_dx = -torch.linalg.solve(Hu, cross)
    phi_u = torch.autograd.functional.jacobian(lambda u: phi(u, xt), u0)
    phi_x = torch.autograd.functional.jacobian(lambda xx: phi(u0, xx), xt)
    dz_dx = phi_u @ du_dx + phi_x
    gF = torch.tensor(logit_outer_grad(zhat, Av, yv))
    h_ref = (dz_dx.T @ gF).numpy()

    prob = LogisticProblem(A, y, Av, yv)
    h = hypergradient(prob, zhat, x, method=f"reparam_{kind}")
    np.testing.assert_allclose(h, h_ref, rtol=1e-9, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# unrolled differentiation: against finite differences of the unrolled map
# ---------------------------------------------------------------------------------------------
def test_unrolled_matches_finite_differences():
    A, y, Av, yv, x = logistic_data(seed=7, n=80, p=6, n_val=50)
    z0 = np.zeros(A.shape[1])
    step, T = 0.5, 30

    def h(t):
        z = gd_path(lambda z: logit_grad(z, t, A, y), z0, step, T)[-1]
        return np.mean(np.logaddexp(0, -yv * (Av @ z)))

    prob = LogisticProblem(A, y, Av, yv)
    g, zT = unrolled_hypergradient(prob, x, z0, n_iter=T, step=step)
    np.testing.assert_allclose(zT, gd_path(lambda z: logit_grad(z, x, A, y), z0, step, T)[-1],
                               rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(h, x, 1e-5), rtol=1e-6, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# explicit derivatives against autograd
# ---------------------------------------------------------------------------------------------
def test_autograd_problem_matches_explicit_logistic():
    torch = pytest.importorskip("torch")
    from sciml_toolbox.bilevel import AutogradProblem

    A, y, Av, yv, x = logistic_data(seed=8, n=50, p=5, n_val=30)
    At, yt, Avt, yvt = (torch.tensor(a) for a in (A, y, Av, yv))
    p = A.shape[1]

    def G(z, xx):
        return torch.mean(torch.nn.functional.softplus(-yt * (At @ z))) + 0.5 * torch.sum(
            torch.exp(xx) / p * z * z
        )

    def F(z, xx):
        return torch.mean(torch.nn.functional.softplus(-yvt * (Avt @ z)))

    auto = AutogradProblem(G, F)
    expl = LogisticProblem(A, y, Av, yv)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(p)
    v = rng.standard_normal(p)
    zt, xt, vt = (torch.tensor(a) for a in (z, x, v))
    pairs = [
        (auto.inner_grad(zt, xt), expl.inner_grad(z, x)),
        (auto.inner_hvp(zt, xt, vt), expl.inner_hvp(z, x, v)),
        (auto.inner_hessian(zt, xt), logit_hess(z, x, A, y)),
        (auto.inner_hessian_diag(zt, xt), np.diag(logit_hess(z, x, A, y))),
        (auto.inner_cross_vjp(zt, xt, vt), expl.inner_cross_vjp(z, x, v)),
        (auto.inner_hessian_diag_cross_vjp(zt, xt, vt),
         expl.inner_hessian_diag_cross_vjp(z, x, v)),
        (auto.outer_grad_z(zt, xt), logit_outer_grad(z, Av, yv)),
        (auto.outer_grad_x(zt, xt), expl.outer_grad_x(z, x)),
    ]
    for a, e in pairs:
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(logit_grad(z, x, A, y), expl.inner_grad(z, x), rtol=1e-12)
    for method in ("ift", "newton", "jacobi", "reparam_exp", "reparam_diag"):
        np.testing.assert_allclose(
            hypergradient(auto, zt, xt, method=method).numpy(),
            hypergradient(expl, z, x, method=method), rtol=1e-9, atol=1e-13,
        )
