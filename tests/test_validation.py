"""Every shared check: accepted input passes unchanged, each bad input names the argument."""

import numpy as np
import pytest

from sciml_toolbox import _array_api as aa
from sciml_toolbox import _validation as v


def _arr(xp, host):
    return aa.asarray(np.asarray(host, dtype=float), xp)


# --------------------------------------------------------------------------- check_array
def test_check_array_passes_through(xp):
    x = _arr(xp, np.ones((4, 3)))
    out = v.check_array(x, "X")
    assert out is x  # no copy, no conversion


def test_check_array_list_becomes_numpy():
    out = v.check_array([[1, 2], [3, 4]], "X")
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


def test_check_array_int_cast_to_float(xp):
    x = aa.asarray(np.arange(6).reshape(3, 2), xp)
    assert xp.isdtype(v.check_array(x, "X").dtype, "real floating")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_array_non_finite(xp, bad):
    host = np.ones((3, 2))
    host[1, 1] = bad
    x = _arr(xp, host)
    with pytest.raises(ValueError, match=r"Xtrain must contain only finite values, got 1 NaN"):
        v.check_array(x, "Xtrain")
    assert v.check_array(x, "X", finite=False) is x


def test_check_array_ndim(xp):
    with pytest.raises(ValueError, match=r"data must be a 2-D array, got shape \(3,\)"):
        v.check_array(_arr(xp, np.ones(3)), "data")
    with pytest.raises(ValueError, match="2-D or 3-D"):
        v.check_array(_arr(xp, np.ones(3)), "data", ndim=(2, 3))


def test_check_array_too_few_samples_and_features(xp):
    with pytest.raises(ValueError, match="X needs at least 2 sample"):
        v.check_array(_arr(xp, np.ones((1, 3))), "X", min_samples=2)
    with pytest.raises(ValueError, match="X needs at least 4 feature"):
        v.check_array(_arr(xp, np.ones((5, 3))), "X", min_features=4)


@pytest.mark.parametrize("bad", [None, "abc", {"a": 1}])
def test_check_array_not_an_array(bad):
    with pytest.raises(TypeError, match="X must be"):
        v.check_array(bad, "X")


def test_check_array_ragged():
    with pytest.raises(TypeError, match="X must be"):
        v.check_array([[1, 2], [3]], "X")


def test_check_array_complex_rejected():
    with pytest.raises(TypeError, match="X must have a real numeric dtype"):
        v.check_array(np.ones((2, 2), dtype=complex), "X")


def test_check_array_does_not_modify_input():
    host = np.arange(6.0).reshape(3, 2)
    copy = host.copy()
    v.check_array(host, "X")
    np.testing.assert_array_equal(host, copy)


# --------------------------------------------------------------------------- consistency
def test_check_consistent_length(xp):
    a, b = _arr(xp, np.ones((4, 2))), _arr(xp, np.ones((5, 2)))
    v.check_consistent_length(a, a, names=("X", "Y"))
    with pytest.raises(ValueError, match=r"X: 4, Y: 5"):
        v.check_consistent_length(a, b, names=("X", "Y"))


def test_check_views(xp):
    views = [_arr(xp, np.ones((3, 10))), _arr(xp, np.ones((5, 10)))]
    assert len(v.check_views(views, "X")) == 2
    stacked = _arr(xp, np.ones((4, 3, 10)))
    assert len(v.check_views(stacked, "X")) == 4
    with pytest.raises(ValueError, match="same number of samples"):
        v.check_views([_arr(xp, np.ones((3, 10))), _arr(xp, np.ones((3, 9)))], "X")
    with pytest.raises(ValueError, match="at least 2 views"):
        v.check_views([_arr(xp, np.ones((3, 10)))], "X")
    with pytest.raises(ValueError, match=r"X\[1\] must be a 2-D array"):
        v.check_views([_arr(xp, np.ones((3, 10))), _arr(xp, np.ones(10))], "X")
    with pytest.raises(TypeError, match="3-D array or a list"):
        v.check_views(42, "X")
    bad = np.ones((2, 3, 4))
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        v.check_views(_arr(xp, bad), "X")


# --------------------------------------------------------------------------- scalars
def test_check_n_components():
    assert v.check_n_components(None, 7) == 7
    assert v.check_n_components(3, 7) == 3
    with pytest.raises(ValueError, match="n_components=8 is too large: at most 7"):
        v.check_n_components(8, 7)
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        v.check_n_components(0, 7)
    with pytest.raises(TypeError, match="n_components must be an int"):
        v.check_n_components(2.5, 7)
    with pytest.raises(TypeError, match="n_components must be an int"):
        v.check_n_components(True, 7)


def test_check_int():
    assert v.check_int(np.int64(3), "k") == 3
    assert v.check_int(None, "k", allow_none=True) is None
    with pytest.raises(ValueError, match="k must be <= 2"):
        v.check_int(3, "k", max_value=2)


def test_check_positive_and_scalar():
    assert v.check_positive(1e-3, "tol") == 1e-3
    assert v.check_positive(0, "tol", strict=False) == 0
    with pytest.raises(ValueError, match="tol must be > 0, got 0"):
        v.check_positive(0, "tol")
    with pytest.raises(ValueError, match="tol must be >= 0"):
        v.check_positive(-1, "tol", strict=False)
    with pytest.raises(ValueError, match="tol must be finite"):
        v.check_positive(np.nan, "tol")
    with pytest.raises(TypeError, match="tol must be a real number"):
        v.check_positive("1e-3", "tol")
    with pytest.raises(TypeError, match="flag must be a real number"):
        v.check_scalar(True, "flag")


def test_check_in_range():
    assert v.check_in_range(0.5, "beta", 0, 1, closed="left") == 0.5
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1.0"):
        v.check_in_range(1.0, "beta", 0, 1, closed="left")
    with pytest.raises(ValueError, match=r"r must be in \(0, inf\]"):
        v.check_in_range(0.0, "r", 0, None, closed="right")


def test_check_option():
    assert v.check_option("rk4", "method", ("rk4", "euler")) == "rk4"
    with pytest.raises(ValueError, match="method must be one of 'rk4', 'euler', got 'rk5'"):
        v.check_option("rk5", "method", ("rk4", "euler"))


# --------------------------------------------------------------------------- simplex, PSD
def test_check_simplex(xp):
    w = _arr(xp, [0.2, 0.3, 0.5])
    assert v.check_simplex(w, "weights") is w
    with pytest.raises(ValueError, match="weights must be non-negative"):
        v.check_simplex(_arr(xp, [-0.1, 0.6, 0.5]), "weights")
    with pytest.raises(ValueError, match="weights must sum to 1"):
        v.check_simplex(_arr(xp, [0.2, 0.2, 0.2]), "weights")
    with pytest.raises(ValueError, match="weights must have length 4"):
        v.check_simplex(w, "weights", length=4)
    with pytest.raises(ValueError, match="weights must contain only finite"):
        v.check_simplex(_arr(xp, [np.nan, 0.5, 0.5]), "weights")


def test_check_psd(xp):
    m = np.random.default_rng(0).normal(size=(5, 3))
    psd = _arr(xp, m @ m.T)
    assert v.check_psd(psd, "B") is psd
    with pytest.raises(ValueError, match="B must be positive definite"):
        v.check_psd(psd, "B", strict=True)
    with pytest.raises(ValueError, match="B must be positive semi-definite"):
        v.check_psd(_arr(xp, [[1.0, 2.0], [2.0, 1.0]]), "B")
    with pytest.raises(ValueError, match="B must be symmetric"):
        v.check_psd(_arr(xp, [[1.0, 0.5], [0.0, 1.0]]), "B")
    with pytest.raises(ValueError, match="B must be a square matrix"):
        v.check_psd(_arr(xp, np.ones((2, 3))), "B")


def test_check_random_state():
    rs = v.check_random_state(0)
    assert isinstance(rs, np.random.RandomState)


def test_check_array_float16_upcast_except_torch():
    # NumPy has no half-precision linear algebra: float16 becomes float32 (values unchanged);
    # torch keeps half precision
    x = np.array([[0.5, 1.5], [2.0, -3.0]], dtype=np.float16)
    out = v.check_array(x, "X")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))
    assert x.dtype == np.float16  # the input is untouched
    torch = pytest.importorskip("torch")
    t = torch.ones((2, 2), dtype=torch.float16)
    assert v.check_array(t, "X").dtype == torch.float16
