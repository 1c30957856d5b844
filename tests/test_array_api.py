"""The array-API layer against NumPy/SciPy on every namespace (numpy, array_api_strict, torch)."""

import numpy as np
import pytest
import scipy.linalg

from sciml_toolbox import _array_api as aa


def _rand(xp, shape, seed=0):
    return aa.make_generator(seed, xp).normal(shape)


def test_namespace_and_name(xp):
    x = _rand(xp, (3, 2))
    ns = aa.get_namespace(x)
    assert aa.namespace_name(ns) == aa.namespace_name(xp)
    # scalars and None are ignored
    assert aa.namespace_name(aa.get_namespace(x, 1.0, None)) == aa.namespace_name(xp)
    # lists become numpy
    assert aa.namespace_name(aa.get_namespace([1.0, 2.0])) == "numpy"


def test_mixed_namespaces_raise():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one array library"):
        aa.get_namespace(np.zeros(2), torch.zeros(2))


def test_to_numpy_roundtrip(xp):
    host = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    x = aa.asarray(host, xp)
    back = aa.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)
    y = aa.from_numpy(host * 2, like=x)
    assert aa.namespace_name(aa.get_namespace(y)) == aa.namespace_name(xp)
    assert aa.device(y) == aa.device(x)
    np.testing.assert_array_equal(aa.to_numpy(y), host * 2)


def test_from_numpy_keeps_float_dtype(xp):
    like = aa.asarray(np.zeros(2), xp, dtype=xp.float32)
    y = aa.from_numpy(np.ones(3), like)
    assert y.dtype == xp.float32


def test_generator_same_numbers_on_every_namespace(xp):
    a = aa.to_numpy(aa.make_generator(42, xp).normal((5, 4)))
    b = np.random.default_rng(42).normal(size=(5, 4))
    np.testing.assert_array_equal(a, b)
    u = aa.to_numpy(aa.make_generator(1, xp).uniform((1000,), low=-2, high=3))
    assert u.min() >= -2 and u.max() < 3
    p = np.sort(aa.to_numpy(aa.make_generator(3, xp).permutation(10)))
    np.testing.assert_array_equal(p, np.arange(10))
    i = aa.to_numpy(aa.make_generator(3, xp).integers(2, 5, (100,)))
    assert i.min() >= 2 and i.max() < 5


def test_generator_seeds_are_reproducible_and_distinct(xp):
    g1, g2 = aa.make_generator(7, xp), aa.make_generator(7, xp)
    np.testing.assert_array_equal(aa.to_numpy(g1.normal((3,))), aa.to_numpy(g2.normal((3,))))
    g3 = aa.make_generator(8, xp)
    assert not np.allclose(aa.to_numpy(g1.normal((3,))), aa.to_numpy(g3.normal((3,))))
    # a Generator passes through unchanged; RandomState is accepted
    assert aa.make_generator(g1, xp) is g1
    aa.make_generator(np.random.RandomState(0), xp).normal((2,))


def test_native_torch_generator():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as tx

    g = aa.make_generator(0, tx, "cpu", native=True)
    x = g.normal((1000,), dtype=torch.float32)
    assert x.dtype == torch.float32
    assert abs(float(x.mean())) < 0.2 and abs(float(x.std()) - 1) < 0.2


def test_svd_matches_numpy(xp):
    a = _rand(xp, (7, 5))
    u, s, vh = aa.svd(a)
    an = aa.to_numpy(a)
    np.testing.assert_allclose(aa.to_numpy(s), np.linalg.svd(an, compute_uv=False), rtol=1e-12)
    np.testing.assert_allclose(aa.to_numpy(u * s[None, :] @ vh), an, atol=1e-12)
    assert u.shape == (7, 5) and vh.shape == (5, 5)


def test_eigh_matches_scipy(xp):
    a = _rand(xp, (6, 6))
    a = a + xp.matrix_transpose(a)
    w, v = aa.eigh(a)
    an = aa.to_numpy(a)
    np.testing.assert_allclose(aa.to_numpy(w), scipy.linalg.eigh(an, eigvals_only=True),
                               rtol=1e-10, atol=1e-12)
    vn = aa.to_numpy(v)
    np.testing.assert_allclose(an @ vn, vn * aa.to_numpy(w)[None, :], atol=1e-10)


def test_solve_and_inv(xp):
    a = _rand(xp, (5, 5)) + 5 * xp.eye(5, dtype=xp.float64)
    b = _rand(xp, (5, 3), seed=1)
    x = aa.solve(a, b)
    np.testing.assert_allclose(aa.to_numpy(x), scipy.linalg.solve(aa.to_numpy(a), aa.to_numpy(b)),
                               rtol=1e-10)
    v = _rand(xp, (5,), seed=2)
    np.testing.assert_allclose(aa.to_numpy(aa.solve(a, v)),
                               np.linalg.solve(aa.to_numpy(a), aa.to_numpy(v)), rtol=1e-10)
    np.testing.assert_allclose(aa.to_numpy(aa.inv(a)), np.linalg.inv(aa.to_numpy(a)), rtol=1e-10)


@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular_matches_scipy(xp, lower):
    full = aa.to_numpy(_rand(xp, (5, 5))) + 5 * np.eye(5)
    tri = np.tril(full) if lower else np.triu(full)
    b = _rand(xp, (5, 3), seed=1)
    x = aa.solve_triangular(aa.from_numpy(tri, b), b, lower=lower)
    np.testing.assert_allclose(
        aa.to_numpy(x), scipy.linalg.solve(tri, aa.to_numpy(b)), rtol=1e-10, atol=1e-12)


def test_cholesky_qr_slogdet(xp):
    m = _rand(xp, (6, 4))
    spd = xp.matrix_transpose(m) @ m + xp.eye(4, dtype=xp.float64)
    low = aa.cholesky(spd)
    np.testing.assert_allclose(aa.to_numpy(low),
                               scipy.linalg.cholesky(aa.to_numpy(spd), lower=True), rtol=1e-10)
    up = aa.cholesky(spd, upper=True)
    np.testing.assert_allclose(aa.to_numpy(up), aa.to_numpy(low).T, rtol=1e-12)
    q, r = aa.qr(m)
    np.testing.assert_allclose(aa.to_numpy(q @ r), aa.to_numpy(m), atol=1e-12)
    np.testing.assert_allclose(aa.to_numpy(xp.matrix_transpose(q) @ q), np.eye(4), atol=1e-12)
    sign, logdet = aa.slogdet(spd)
    s_ref, l_ref = np.linalg.slogdet(aa.to_numpy(spd))
    assert float(sign) == s_ref
    np.testing.assert_allclose(float(logdet), l_ref, rtol=1e-12)


def test_cholesky_rejects_indefinite(xp):
    a = aa.asarray(np.array([[1.0, 2.0], [2.0, 1.0]]), xp)
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own LinAlgError
        low = aa.cholesky(a)
        # some backends return NaN instead of raising; that must not pass silently either
        if not np.all(np.isfinite(aa.to_numpy(low))):
            raise ValueError("non-finite Cholesky factor")


def test_sqrtm_psd(xp):
    m = _rand(xp, (5, 5))
    spd = xp.matrix_transpose(m) @ m + 0.5 * xp.eye(5, dtype=xp.float64)
    r = aa.sqrtm_psd(spd)
    np.testing.assert_allclose(aa.to_numpy(r @ r), aa.to_numpy(spd), atol=1e-10)
    np.testing.assert_allclose(aa.to_numpy(r), scipy.linalg.sqrtm(aa.to_numpy(spd)).real,
                               atol=1e-10)
    ri = aa.sqrtm_psd(spd, inverse=True)
    np.testing.assert_allclose(aa.to_numpy(ri @ spd @ ri), np.eye(5), atol=1e-9)


def test_fft_roundtrip(xp):
    x = _rand(xp, (3, 16))
    f = aa.rfft(x)
    np.testing.assert_allclose(aa.to_numpy(f), np.fft.rfft(aa.to_numpy(x)), atol=1e-12)
    np.testing.assert_allclose(aa.to_numpy(aa.irfft(f, n=16)), aa.to_numpy(x), atol=1e-12)
    c = aa.fft(x, axis=0)
    np.testing.assert_allclose(aa.to_numpy(c), np.fft.fft(aa.to_numpy(x), axis=0), atol=1e-12)
    np.testing.assert_allclose(np.real(aa.to_numpy(aa.ifft(c, axis=0))), aa.to_numpy(x),
                               atol=1e-12)


def test_float_dtype(xp):
    i = aa.asarray(np.arange(3), xp)
    assert aa.float_dtype(xp, None, i) == xp.float64
    f32 = aa.asarray(np.zeros(2), xp, dtype=xp.float32)
    assert aa.float_dtype(xp, None, f32) == xp.float32
    assert aa.supports_float64(xp)
