"""The array-API layer on CUDA torch tensors and CuPy arrays (skipped without a GPU)."""

import numpy as np
import pytest

from sciml_toolbox import _array_api as aa

pytestmark = pytest.mark.gpu


def _namespaces():
    out = []
    try:
        import torch

        if torch.cuda.is_available():
            import array_api_compat.torch as tx

            out.append((tx, "cuda"))
    except ImportError:
        pass
    try:
        import array_api_compat.cupy as cx
        import cupy  # noqa: F401

        out.append((cx, None))
    except ImportError:
        pass
    return out


_NO_GPU = pytest.param(None, None, marks=pytest.mark.skip(reason="no CUDA namespace"))


@pytest.mark.parametrize("xp,dev", _namespaces() or [_NO_GPU])
def test_linalg_on_device(xp, dev):
    g = aa.make_generator(0, xp, dev)
    a = g.normal((50, 30))
    assert aa.device(a) == aa.device(g.normal((1,)))
    _, s, _ = aa.svd(a)
    np.testing.assert_allclose(aa.to_numpy(s), np.linalg.svd(aa.to_numpy(a), compute_uv=False),
                               rtol=1e-10)
    spd = xp.matrix_transpose(a) @ a + xp.eye(30, dtype=xp.float64, device=aa.device(a))
    w, v = aa.eigh(spd)
    np.testing.assert_allclose(aa.to_numpy(spd @ v), aa.to_numpy(v * w[None, :]), atol=1e-8)
    low = aa.cholesky(spd)
    np.testing.assert_allclose(aa.to_numpy(low @ xp.matrix_transpose(low)), aa.to_numpy(spd),
                               atol=1e-8)
    b = g.normal((30, 2))
    np.testing.assert_allclose(aa.to_numpy(spd @ aa.solve(spd, b)), aa.to_numpy(b), atol=1e-8)
    f = aa.rfft(a)
    np.testing.assert_allclose(aa.to_numpy(aa.irfft(f, n=30)), aa.to_numpy(a), atol=1e-10)
    back = aa.from_numpy(np.ones(3), like=a)
    assert aa.device(back) == aa.device(a)
