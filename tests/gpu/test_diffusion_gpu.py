"""CUDA checks of sciml_toolbox.nn.diffusion (skipped without a GPU)."""

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.diffusion import (
    SparseRepellency,
    ddim_sample,
    ddpm_sample,
    shield_share,
    sparse_repellency_delta,
)

pytestmark = pytest.mark.gpu


def _naive(x, z, r):
    d = np.linalg.norm(x[:, None] - z[None], axis=-1)
    w = np.where((d < r) & (d > 0), r / np.where(d > 0, d, 1) - 1, 0)
    return (w[..., None] * (x[:, None] - z[None])).sum(1)


@pytest.mark.parametrize("n_cells", ["auto", None])  # 5000 references: 'auto' builds cells
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_search_on_cuda_matches_naive(dtype, n_cells):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5000, 16, generator=g, dtype=torch.float64)
    q = z[:64] + 0.3 * torch.randn(64, 16, generator=g, dtype=torch.float64)
    spell = SparseRepellency(z.to("cuda", dtype), radius=2.0, chunk_size=1024, n_cells=n_cells)
    delta = spell.correction(q.to("cuda", dtype))
    assert delta.device.type == "cuda" and delta.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(delta.cpu().double().numpy(), _naive(q.numpy(), z.numpy(), 2.0),
                               rtol=tol, atol=tol)


def test_cpu_reference_moves_to_cuda_queries():
    z = torch.randn(100, 8)
    out = SparseRepellency(z, radius=1.0)(torch.randn(4, 8, device="cuda"))
    assert out.device.type == "cuda"


def test_delta_function_on_cuda_counts():
    z = torch.zeros(2, 2, device="cuda")
    z[1, 0] = 0.5
    q = torch.tensor([[0.25, 0.0], [5.0, 5.0]], device="cuda")
    _, counts = sparse_repellency_delta(q, z, 1.0)
    assert counts.tolist() == [2, 0]


@pytest.mark.parametrize("sampler", [ddpm_sample, ddim_sample])
def test_samplers_on_cuda_match_cpu(sampler):
    w = torch.randn(12, 12, generator=torch.Generator().manual_seed(0)) / 12**0.5

    def model(x, t):
        return torch.tanh(x @ w.to(x.device) + t[:, None].to(x.dtype) / 1000)

    ref = torch.randn(30, 12, generator=torch.Generator().manual_seed(1))
    kw = dict(n_steps=20, dtype=torch.float64)
    cpu = sampler(model, (8, 12), repellency=SparseRepellency(ref, radius=2.0),
                  generator=torch.Generator().manual_seed(2), device="cpu", **kw)
    gpu = sampler(model, (8, 12), repellency=SparseRepellency(ref.cuda(), radius=2.0),
                  generator=torch.Generator().manual_seed(2), device="cuda", **kw)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-8, atol=1e-8)


def test_shield_on_cuda_with_trained_model():
    from sciml_toolbox.nn.diffusion import train_ddpm

    ddpm = train_ddpm(n_images=64, n_iter=300, device="cuda")
    spell = SparseRepellency(ddpm.images, radius=1.5)
    x = ddpm_sample(ddpm.model, (128, 1, 8, 8), ddpm.schedule, n_steps=50, repellency=spell)
    assert x.device.type == "cuda"
    assert shield_share(x, ddpm.images, 1.5) <= 0.02
