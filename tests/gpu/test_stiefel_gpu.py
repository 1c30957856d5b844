"""CUDA (torch) and CuPy runs of the landing solvers; skipped without a GPU."""

import numpy as np
import pytest

from sciml_toolbox._array_api import to_numpy

pytestmark = pytest.mark.gpu


def _pencil(n=64, seed=0):
    from sciml_toolbox.stiefel import make_gevp_pencil

    return make_gevp_pencil(n, cond_A=10.0, random_state=seed)


@pytest.fixture(params=["torch", "cupy"])
def gpu_xp(request):
    if request.param == "torch":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("needs CUDA")
        import array_api_compat.torch as xp

        return xp, "cuda"
    cupy = pytest.importorskip("cupy")
    import array_api_compat.cupy as xp

    del cupy
    return xp, None


@pytest.mark.parametrize("method", ["landing", "riemannian", "exact"])
def test_generalized_eigh_gpu_matches_cpu(gpu_xp, method):
    import scipy.linalg as sl

    from sciml_toolbox.stiefel import generalized_eigh

    xp, dev = gpu_xp
    n, p = 64, 4
    A, B = _pencil(n)
    w_ref = sl.eigh(A, B, subset_by_index=[n - p, n - 1], eigvals_only=True)[::-1]
    Ag = xp.asarray(A, device=dev) if dev else xp.asarray(A)
    Bg = xp.asarray(B, device=dev) if dev else xp.asarray(B)
    w, V = generalized_eigh(Ag, Bg, p, method=method, max_iter=50000, tol=1e-11,
                            random_state=0)
    if dev:
        assert str(V.device).startswith("cuda")
    np.testing.assert_allclose(to_numpy(w), w_ref, rtol=1e-6)
    Vn = to_numpy(V)
    np.testing.assert_allclose(Vn.T @ B @ Vn, np.eye(p), atol=1e-8)


def test_landing_cca_and_ica_gpu(gpu_xp):
    from sciml_toolbox.stiefel import LandingCCA, LandingICA

    xp, dev = gpu_xp
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4000, 2))
    X = np.c_[Z, rng.standard_normal((4000, 3))]
    Y = np.c_[Z + 0.3 * rng.standard_normal((4000, 2)), rng.standard_normal((4000, 2))]

    def put(a):
        return xp.asarray(a, device=dev) if dev else xp.asarray(a)

    ref = LandingCCA(2, batch_size=200, max_epochs=5, random_state=0).fit(X, Y)
    cca = LandingCCA(2, batch_size=200, max_epochs=5, random_state=0).fit(put(X), put(Y))
    np.testing.assert_allclose(to_numpy(cca.canonical_correlations_),
                               ref.canonical_correlations_, rtol=1e-6)
    S = rng.laplace(size=(4000, 3))
    ica = LandingICA(3, batch_size=500, max_epochs=3, random_state=0).fit(put(S))
    ref = LandingICA(3, batch_size=500, max_epochs=3, random_state=0).fit(S)
    np.testing.assert_allclose(to_numpy(ica.components_), ref.components_, rtol=1e-6,
                               atol=1e-9)


def test_landing_optimizer_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from sciml_toolbox.nn.optim import LandingGeneralizedStiefel

    A, B = _pencil(32)
    At = torch.tensor(A, device="cuda")
    Bt = torch.tensor(B, device="cuda")
    X = torch.nn.Parameter(torch.linalg.qr(torch.randn(32, 3, device="cuda",
                                                       dtype=torch.float64))[0])
    lam_a = float(torch.linalg.eigvalsh(At)[-1])
    lam_b = float(torch.linalg.eigvalsh(Bt)[-1])
    lr = 2.0 / (lam_a * lam_b)
    opt = LandingGeneralizedStiefel([X], lr=lr, omega=0.5 / (lr * lam_b))
    for _ in range(3000):
        X.grad = None
        (-0.5 * torch.trace(X.T @ At @ X)).backward()
        opt.step(B=Bt)
    Xn = X.detach().cpu().numpy()
    np.testing.assert_allclose(Xn.T @ B @ Xn, np.eye(3), atol=1e-6)
