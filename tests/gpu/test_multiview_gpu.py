"""Multi-view ICA on CUDA (torch) and CuPy arrays: same results as NumPy, results on the device."""

import numpy as np
import pytest

from sciml_toolbox._array_api import device, to_numpy
from sciml_toolbox.datasets import make_multiview_sources
from sciml_toolbox.multiview import MVICAD2, amari_distance
from sciml_toolbox.multiview._loss import joint_loss_grad

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def data():
    return make_multiview_sources(5, 3, 600, n_concat=5, noise=0.01, random_state=0)


def _fit(X):
    return MVICAD2(noise=0.1, n_concat=5, onset=200, random_state=0).fit(X)


def test_torch_cuda_fit_matches_numpy(data):
    torch = pytest.importorskip("torch")
    X = torch.asarray(data.X, device="cuda")
    est = _fit(X)
    ref = _fit(data.X)
    assert str(device(est.components_)).startswith("cuda")
    assert str(device(est.dilations_)).startswith("cuda")
    assert amari_distance(to_numpy(est.components_), data.mixings) < 1.4e-4
    np.testing.assert_allclose(to_numpy(est.dilations_), ref.dilations_, atol=1e-4)
    np.testing.assert_allclose(to_numpy(est.shifts_), ref.shifts_, atol=1e-4)


def test_torch_cuda_gradient_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(4, 3, 1200))
    W = rng.normal(size=(4, 3, 3))
    rho = rng.uniform(0.9, 1.1, (4, 3))
    tau = rng.uniform(-0.04, 0.04, (4, 3))
    kw = dict(noise=0.5, n_concat=2, onset=100, warps="both", max_dilation=1.15, max_shift=0.05)
    ref = joint_loss_grad(W, rho, tau, Z, **kw)
    got = joint_loss_grad(*(torch.asarray(a, device="cuda") for a in (W, rho, tau, Z)), **kw)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-10)
    for g, r in zip(got[1:], ref[1:], strict=True):
        np.testing.assert_allclose(to_numpy(g), r, rtol=1e-8, atol=1e-10)


def test_cupy_fit(data):
    cp = pytest.importorskip("cupy")
    est = _fit(cp.asarray(data.X))
    assert isinstance(est.components_, cp.ndarray)
    assert amari_distance(to_numpy(est.components_), data.mixings) < 1.4e-4
