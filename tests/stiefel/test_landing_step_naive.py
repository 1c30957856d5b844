"""The one landing step against the formulas of the method note, written naively with NumPy.

Every landing solver takes the step of ``stiefel._landing`` (``landing_step`` /
``landing_update``): ``generalized_eigh``, ``LandingCCA`` / ``LandingICA``
(``landing_block_step``) and the torch optimizer. Here it is checked, on NumPy and torch
inputs, against dense formulas: :math:`\\Psi_B(X) = \\mathrm{skew}(GX^\\top B)BX`,
:math:`\\nabla\\mathcal{N}(X) = BX(X^\\top BX - I)`, the two-estimate field and the safe step.
"""

import numpy as np
import pytest

from sciml_toolbox._array_api import to_numpy
from sciml_toolbox.stiefel import landing_step, landing_update, safe_step_size
from sciml_toolbox.stiefel._landing import landing_block_step

torch = pytest.importorskip("torch")

N, P = 7, 3
OMEGA, LR = 0.7, 0.05


def _skew(M):
    return 0.5 * (M - M.T)


def _naive_field(X, G, B, omega):
    """Psi_B(X) + omega grad N(X), dense."""
    psi = _skew(G @ X.T @ B) @ B @ X
    normal = B @ X @ (X.T @ B @ X - np.eye(X.shape[1]))
    return psi + omega * normal


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((N, N))
    B = M @ M.T / N + np.eye(N)
    # a point near the manifold: B-orthonormal, then perturbed
    Q = np.linalg.qr(rng.standard_normal((N, P)))[0]
    L = np.linalg.cholesky(Q.T @ B @ Q)
    X = Q @ np.linalg.inv(L).T + 0.05 * rng.standard_normal((N, P))
    G = rng.standard_normal((N, P))
    return X, G, B


def _as(namespace, *arrays):
    if namespace == "numpy":
        return arrays
    return tuple(torch.from_numpy(a) for a in arrays)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_landing_step_without_safe_step_is_the_naive_field(namespace):
    X, G, B = _problem()
    Xa, Ga, Ba, BXa = _as(namespace, X, G, B, B @ X)
    X_new, step = landing_step(Xa, Ga, BXa, learning_rate=LR, omega=OMEGA, epsilon=None)
    assert step == LR
    np.testing.assert_allclose(to_numpy(X_new), X - LR * _naive_field(X, G, B, OMEGA),
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_landing_update_safe_step_from_naive_quantities(namespace):
    X, G, B = _problem(1)
    Xa, Ga, Ba, BXa = _as(namespace, X, G, B, B @ X)
    big = 10.0  # the safe step, not the learning rate, decides
    D, eta = landing_update(Xa, Ga, BXa, learning_rate=big, omega=OMEGA, B=Ba, epsilon=0.5)
    lam = _naive_field(X, G, B, OMEGA)
    np.testing.assert_allclose(to_numpy(D), lam, rtol=1e-12, atol=1e-13)
    # the safe step with S = X^T B L + L^T B X and q = tr(L^T B L) formed densely
    S = X.T @ B @ lam + lam.T @ B @ X
    q = np.trace(lam.T @ B @ lam)
    ref = float(safe_step_size(X, B @ X, lam, q, epsilon=0.5, symmetric_part=S,
                               constraint=X.T @ B @ X - np.eye(P)))
    assert 0 < ref < big
    np.testing.assert_allclose(float(eta), ref, rtol=1e-10)
    X_new = X - float(eta) * lam
    assert np.linalg.norm(X_new.T @ B @ X_new - np.eye(P)) <= 0.5 + 1e-12
    X_step, eta2 = landing_step(Xa, Ga, BXa, learning_rate=big, omega=OMEGA, B=Ba)
    np.testing.assert_allclose(to_numpy(X_step), X_new, rtol=1e-10, atol=1e-12)
    # the learning rate caps the step
    _, eta3 = landing_update(Xa, Ga, BXa, learning_rate=1e-3 * ref, omega=OMEGA, B=Ba)
    np.testing.assert_allclose(float(eta3), 1e-3 * ref)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_two_estimates_and_riemannian_field(namespace):
    X, G, B = _problem(2)
    rng = np.random.default_rng(3)
    A1, A2 = rng.standard_normal((40, N)), rng.standard_normal((40, N))
    B1, B2 = A1.T @ A1 / 40, A2.T @ A2 / 40
    G2 = rng.standard_normal((N, P))
    eye = np.eye(P)
    ref = 0.5 * (_skew(G @ X.T @ B1) @ B2 @ X + _skew(G2 @ X.T @ B2) @ B1 @ X) + 0.5 * OMEGA * (
        B1 @ X @ (X.T @ B2 @ X - eye) + B2 @ X @ (X.T @ B1 @ X - eye))
    Xa, Ga, G2a, B1X, B2X = _as(namespace, X, G, G2, B1 @ X, B2 @ X)
    X_new, _ = landing_step(Xa, Ga, B1X, BX2=B2X, G2=G2a, learning_rate=LR, omega=OMEGA,
                            epsilon=None)
    np.testing.assert_allclose(to_numpy(X_new), X - LR * ref, rtol=1e-12, atol=1e-13)
    # Riemannian gradient B^{-1} G - X sym(X^T G) in place of Psi_B
    BinvG = np.linalg.solve(B, G)
    riem = BinvG - X @ (0.5 * (X.T @ G + G.T @ X))
    riem = riem + OMEGA * B @ X @ (X.T @ B @ X - eye)
    Xa, Ga, BXa, BinvGa = _as(namespace, X, G, B @ X, BinvG)
    X_new, _ = landing_step(Xa, Ga, BXa, gradient="riemannian", BinvG=BinvGa,
                            learning_rate=LR, omega=OMEGA, epsilon=None)
    np.testing.assert_allclose(to_numpy(X_new), X - LR * riem, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
def test_block_step_is_the_landing_step_of_the_minibatch_covariance(namespace):
    """LandingCCA / LandingICA's step: B = Xb^T Xb / r + reg I, curvature tr(D^T B D)."""
    X, G, _ = _problem(4)
    rng = np.random.default_rng(5)
    Xb = rng.standard_normal((50, N))
    reg = 0.1
    B = Xb.T @ Xb / 50 + reg * np.eye(N)
    Xa, Ga, Xba, BXa, Ba = _as(namespace, X, G, Xb, B @ X, B)
    W_new, dn = landing_block_step(Xa, Ga, Xba, reg, BXa, learning_rate=LR, omega=OMEGA,
                                   epsilon=None)
    lam = _naive_field(X, G, B, OMEGA)
    np.testing.assert_allclose(to_numpy(W_new), X - LR * lam, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(float(dn), np.sum(lam * lam), rtol=1e-12)
    W_new, _ = landing_block_step(Xa, Ga, Xba, reg, BXa, learning_rate=10.0, omega=OMEGA,
                                  epsilon=0.5)
    X_ref, _ = landing_step(Xa, Ga, BXa, learning_rate=10.0, omega=OMEGA, B=Ba, epsilon=0.5)
    np.testing.assert_allclose(to_numpy(W_new), to_numpy(X_ref), rtol=1e-10, atol=1e-12)


def test_torch_optimizer_takes_the_same_step():
    from sciml_toolbox.nn.optim import LandingGeneralizedStiefel

    X, G, B = _problem(6)
    Xt, Gt, Bt = _as("torch", X, G, B)
    param = torch.nn.Parameter(Xt.clone())
    param.grad = Gt.clone()
    opt = LandingGeneralizedStiefel([param], lr=10.0, omega=OMEGA)
    opt.step(B=Bt)
    X_ref, _ = landing_step(Xt, Gt, Bt @ Xt, learning_rate=10.0, omega=OMEGA, B=Bt)
    np.testing.assert_allclose(param.detach().numpy(), X_ref.numpy(), rtol=1e-12, atol=1e-13)
    param2 = torch.nn.Parameter(Xt.clone())
    param2.grad = Gt.clone()
    LandingGeneralizedStiefel([param2], lr=LR, omega=OMEGA, epsilon=None).step(B=Bt)
    np.testing.assert_allclose(param2.detach().numpy(), X - LR * _naive_field(X, G, B, OMEGA),
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("namespace", ["numpy", "torch"])
@pytest.mark.parametrize("epsilon", [None, 0.5])
def test_generalized_eigh_iteration_is_the_landing_step(namespace, epsilon):
    """One iteration of generalized_eigh(method='landing') on f = -tr(X^T A X) / 2."""
    from sciml_toolbox.stiefel._gevp import _landing_iteration

    X, _, B = _problem(7)
    rng = np.random.default_rng(8)
    A = rng.standard_normal((N, N))
    A = A + A.T
    Xa, Aa, Ba = _as(namespace, X, A, B)
    X_new, BX_new, D = _landing_iteration(1, Xa, Aa @ Xa, Ba @ Xa, Bop=lambda V: Ba @ V,
                                          learning_rate=LR, omega=OMEGA, epsilon=epsilon,
                                          Binv=None)
    X_ref, _ = landing_step(Xa, -(Aa @ Xa), Ba @ Xa, learning_rate=LR, omega=OMEGA, B=Ba,
                            epsilon=epsilon)
    np.testing.assert_allclose(to_numpy(D), _naive_field(X, -A @ X, B, OMEGA), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(to_numpy(X_new), to_numpy(X_ref), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(to_numpy(BX_new), B @ to_numpy(X_new), rtol=1e-10, atol=1e-12)
