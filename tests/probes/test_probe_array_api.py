"""Probes of the public modules ``sciml_toolbox.array_api``, ``sciml_toolbox.utils`` and
``sciml_toolbox.cli`` (issue 17): arguments that are not arrays, the wrong number of
dimensions, non-square matrices, mismatched systems, bad FFT lengths and axes, bad seeds and
shapes, bad thread counts and command lines get an error naming the argument; good calls agree
with NumPy and leave their inputs unchanged."""

import numpy as np
import pytest

from sciml_toolbox import array_api as A
from sciml_toolbox.cli import main
from sciml_toolbox.utils import set_threads

from ._probe_utils import assert_unchanged, expect_error, snapshot

PROBED = {
    "sciml_toolbox.array_api": set(A.__all__),
    "sciml_toolbox.utils": {"set_threads"},
    "sciml_toolbox.cli": {"main"},
}

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3))
S = X.T @ X  # symmetric positive definite
XP = A.get_namespace(X)

NOT_ARRAYS = [None, 1.0, "a", [[1.0, 2.0], [3.0, 4.0]]]

# (function, name of the probed argument, call with the argument replaced)
ARRAY_ARG = {
    "device": ("x", lambda v: A.device(v)),
    "size": ("x", lambda v: A.size(v)),
    "from_numpy": ("like", lambda v: A.from_numpy(X, v)),
    "svd": ("x", lambda v: A.svd(v)),
    "eigh": ("x", lambda v: A.eigh(v)),
    "solve": ("a", lambda v: A.solve(v, X[:3])),
    "solve_triangular": ("a", lambda v: A.solve_triangular(v, X[:3])),
    "cholesky": ("a", lambda v: A.cholesky(v)),
    "inv": ("a", lambda v: A.inv(v)),
    "qr": ("a", lambda v: A.qr(v)),
    "slogdet": ("a", lambda v: A.slogdet(v)),
    "sqrtm_psd": ("a", lambda v: A.sqrtm_psd(v)),
    "rfft": ("x", lambda v: A.rfft(v)),
    "irfft": ("x", lambda v: A.irfft(v)),
    "fft": ("x", lambda v: A.fft(v)),
    "ifft": ("x", lambda v: A.ifft(v)),
}


@pytest.mark.parametrize("fname", sorted(ARRAY_ARG))
@pytest.mark.parametrize("bad", NOT_ARRAYS, ids=["none", "float", "str", "list"])
def test_not_an_array(fname, bad):
    name, call = ARRAY_ARG[fname]
    expect_error(lambda: call(bad), name)


MATRIX_FUNCS = {"svd": A.svd, "eigh": A.eigh, "cholesky": A.cholesky, "inv": A.inv,
                "qr": A.qr, "slogdet": A.slogdet, "sqrtm_psd": A.sqrtm_psd}
SQUARE_FUNCS = {"eigh", "cholesky", "inv", "slogdet", "sqrtm_psd"}


@pytest.mark.parametrize("fname", sorted(MATRIX_FUNCS))
def test_matrix_functions_need_two_dimensions(fname):
    expect_error(lambda: MATRIX_FUNCS[fname](X[0]), "x" if fname in ("svd", "eigh") else "a")


@pytest.mark.parametrize("fname", sorted(SQUARE_FUNCS))
def test_square_functions_refuse_rectangular(fname):
    expect_error(lambda: MATRIX_FUNCS[fname](X), "x" if fname == "eigh" else "a")


@pytest.mark.parametrize("solver", [A.solve, A.solve_triangular], ids=["solve", "triangular"])
def test_systems_with_mismatched_rows(solver):
    expect_error(lambda: solver(S, X), "b")  # b has 6 rows, a is 3 x 3
    expect_error(lambda: solver(X, X), "a")  # a not square


def test_sqrtm_psd_refuses_an_indefinite_matrix_and_matches_scipy():
    import scipy.linalg

    expect_error(lambda: A.sqrtm_psd(-S), "positive semi-definite")
    np.testing.assert_allclose(A.sqrtm_psd(S), np.real(scipy.linalg.sqrtm(S)), atol=1e-10)
    # round-off below zero is clipped, not an error
    low_rank = np.outer(X[:, 0], X[:, 0])[:3, :3]
    assert np.all(np.isfinite(A.sqrtm_psd(low_rank)))


@pytest.mark.parametrize("fname", ["rfft", "irfft", "fft", "ifft"])
def test_fft_length_and_axis(fname):
    fn = getattr(A, fname)
    for n in (0, -1, 2.5, True):
        expect_error(lambda n=n: fn(X, n=n), "n")
    for axis in (2, -3, 1.0):
        expect_error(lambda axis=axis: fn(X, axis=axis), "axis")
    np.testing.assert_allclose(fn(X, n=4, axis=0), getattr(np.fft, fname)(X, n=4, axis=0))


def test_good_calls_match_numpy_and_leave_inputs_unchanged():
    before = snapshot([X, S])
    U, s, Vh = A.svd(X)
    np.testing.assert_allclose((U * s) @ Vh, X, atol=1e-12)
    w, V = A.eigh(S)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(S))
    np.testing.assert_allclose(A.solve(S, X[:3]), np.linalg.solve(S, X[:3]))
    np.testing.assert_allclose(A.solve(S, X[0]), np.linalg.solve(S, X[0]))
    L = A.cholesky(S)
    np.testing.assert_allclose(A.solve_triangular(L, X[:3]), np.linalg.solve(L, X[:3]))
    np.testing.assert_allclose(A.inv(S), np.linalg.inv(S))
    np.testing.assert_allclose(A.slogdet(S)[1], np.linalg.slogdet(S)[1])
    Q, R = A.qr(X)
    np.testing.assert_allclose(Q @ R, X, atol=1e-12)
    assert A.size(X) == X.size and A.device(X) == "cpu"
    assert_unchanged(before, [X, S])


def test_namespace_arguments():
    for fn in (lambda xp: A.asarray([1.0], xp), A.float_dtype, A.supports_float64,
               lambda xp: A.make_generator(0, xp), lambda xp: A.Generator(0, xp)):
        expect_error(lambda fn=fn: fn(None), "xp")
        expect_error(lambda fn=fn: fn(np.zeros(2)), "xp")
    assert A.float_dtype(XP) == XP.float64 and A.supports_float64(XP)


def test_namespace_helpers():
    import torch

    assert A.namespace_name(A.get_namespace(torch.zeros(1))) == "torch"
    assert A.namespace_name(XP) == "numpy"
    expect_error(lambda: A.get_namespace(X, torch.zeros(2)), "arrays")
    np.testing.assert_array_equal(A.to_numpy(torch.arange(3.0)), np.arange(3.0))
    t = A.from_numpy(X, torch.zeros(1, dtype=torch.float32))
    assert t.dtype == torch.float32 and tuple(t.shape) == X.shape


@pytest.mark.parametrize("seed", ["a", 1.5, -1, True, object()])
def test_bad_seeds(seed):
    expect_error(lambda: A.make_generator(seed, XP), "random_state")


@pytest.mark.parametrize("shape", [(-1,), (2.5,), ("a",), (True,)])
def test_bad_shapes(shape):
    rng = A.make_generator(0, XP)
    for draw in (rng.normal, rng.uniform, rng.laplace):
        expect_error(lambda draw=draw: draw(shape), "shape")
    expect_error(lambda: rng.integers(0, 3, shape), "shape")


def test_generator_matches_numpy_for_a_seed():
    a = A.make_generator(3, XP).normal((4,))
    np.testing.assert_array_equal(a, np.random.default_rng(3).normal(size=4))
    assert A.make_generator(3, XP).permutation(5).tolist() == (
        np.random.default_rng(3).permutation(5).tolist())
    assert isinstance(A.make_generator(3, XP).spawn_seed(), int)


@pytest.mark.parametrize("n", [0, -2, 1.5, "2", True])
def test_set_threads_bad_counts(n):
    expect_error(lambda: set_threads(n), "n")


@pytest.mark.parametrize("argv", [["nope"], ["demo", "--threads", "x"]])
def test_cli_bad_command_line_exits_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_cli_unknown_demo_and_bench_name_them(capsys):
    assert main(["demo", "--only", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["bench", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
