"""sciml_toolbox.dynamics on CUDA torch tensors (skipped without a GPU)."""

import numpy as np
import pytest

from sciml_toolbox._array_api import to_numpy
from sciml_toolbox.dynamics import (
    attention_velocity,
    gaussian_ode,
    limit_rank,
    simulate_particles,
)

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")


def _cuda(a, dtype=None):
    return torch.tensor(np.asarray(a), device="cuda", dtype=dtype or torch.float64)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n, d = 3000, 16
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, rng.standard_normal((d, d)) / 4, rng.standard_normal((d, d)) / 4, np.eye(d)


@pytest.mark.parametrize("kind", ["softmax", "l2", "sinkhorn", "sigmoid", "masked"])
def test_velocity_on_cuda_matches_numpy(problem, kind):
    X, Q, K, V = problem
    want = attention_velocity(X, Q, K, V, kind=kind, block_size=1024)
    got = attention_velocity(_cuda(X), _cuda(Q), _cuda(K), _cuda(V), kind=kind,
                             block_size=1024)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-9, atol=1e-11)


def test_blocked_large_n_fits_memory():
    # n = 1e5, d = 16: the dense score matrix would need 80 GB in float64
    rng = np.random.default_rng(1)
    X = _cuda(rng.standard_normal((100_000, 16)), torch.float32)
    Q = K = V = torch.eye(16, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    out = simulate_particles(X, Q, K, V, [0.0, 0.05], dt=0.05, sphere=True)
    assert out.shape == (2, 100_000, 16) and out.device.type == "cuda"
    assert torch.isfinite(out).all()
    assert torch.cuda.max_memory_allocated() < 2 * 2**30


def test_gaussian_ode_on_cuda_matches_numpy():
    rng = np.random.default_rng(2)
    d, runs = 4, 50
    Qs = rng.standard_normal((runs, d // 2, d))
    G = rng.standard_normal((runs, d, d))
    S0 = G @ np.swapaxes(G, -1, -2)
    want = gaussian_ode(np.zeros((runs, d)), S0, Qs, -Qs, np.eye(d), [0.0, 10.0], rtol=1e-8)
    got = gaussian_ode(_cuda(np.zeros((runs, d))), _cuda(S0), _cuda(Qs), _cuda(-Qs),
                       _cuda(np.eye(d)), [0.0, 10.0], rtol=1e-8)
    assert got.covs.device.type == "cuda"
    np.testing.assert_allclose(to_numpy(got.covs), to_numpy(want.covs), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(to_numpy(limit_rank(got.covs[:, -1])),
                                  limit_rank(want.covs[:, -1]))
