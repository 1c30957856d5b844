"""bilevel on CUDA: hypergradients of torch-CUDA problems match NumPy and stay on the device."""

import numpy as np
import pytest

from sciml_toolbox._array_api import to_numpy
from sciml_toolbox.bilevel import (
    HYPERGRADIENT_METHODS,
    AutogradProblem,
    LogisticProblem,
    RidgeProblem,
    hypergradient,
    solve_inner,
)

pytestmark = pytest.mark.gpu


def _data(seed=0, n=500, p=40):
    rng = np.random.default_rng(seed)
    A, Av = rng.standard_normal((n, p)), rng.standard_normal((n // 2, p))
    w = rng.standard_normal(p)
    return A, A @ w + rng.standard_normal(n), Av, Av @ w + rng.standard_normal(n // 2), \
        rng.uniform(-1, 1, p)


@pytest.mark.parametrize("kind", ["ridge", "logistic"])
@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_cuda_matches_numpy(kind, solver):
    torch = pytest.importorskip("torch")
    A, b, Av, bv, x = _data()
    if kind == "logistic":
        b, bv = np.sign(b), np.sign(bv)
    cls = RidgeProblem if kind == "ridge" else LogisticProblem
    prob_np = cls(A, b, Av, bv)
    cu = [torch.as_tensor(a, dtype=torch.float64, device="cuda") for a in (A, b, Av, bv, x)]
    prob = cls(*cu[:4])
    z = solve_inner(prob, cu[4], method="newton", tol=1e-6).z
    assert z.device.type == "cuda"
    for method in HYPERGRADIENT_METHODS:
        h = hypergradient(prob, z, cu[4], method=method, solver=solver)
        assert h.device.type == "cuda"
        ref = hypergradient(prob_np, to_numpy(z), x, method=method)
        np.testing.assert_allclose(to_numpy(h), ref, rtol=1e-8, atol=1e-12)


def test_cuda_autograd_problem():
    torch = pytest.importorskip("torch")
    A, b, Av, bv, x = _data(1, n=200, p=10)
    At, bt, Avt, bvt, xt = (torch.as_tensor(a, dtype=torch.float64, device="cuda")
                            for a in (A, b, Av, bv, x))
    p = A.shape[1]

    def G(z, xx):
        return 0.5 * torch.mean((At @ z - bt) ** 2) + 0.5 * torch.sum(torch.exp(xx) / p * z * z)

    def F(z, xx):
        return 0.5 * torch.mean((Avt @ z - bvt) ** 2)

    auto = AutogradProblem(G, F)
    z = solve_inner(auto, xt, torch.zeros_like(xt), method="newton", tol=1e-12).z
    h = hypergradient(auto, z, xt, method="newton", solver="cg")
    ref = hypergradient(RidgeProblem(A, b, Av, bv), to_numpy(z), x, method="newton")
    assert h.device.type == "cuda"
    np.testing.assert_allclose(to_numpy(h), ref, rtol=1e-7, atol=1e-12)
