"""Bad-input probes of sciml_toolbox.bilevel: every public name, every array argument spoiled
in turn (NaN/inf, wrong ndim, empty, wrong dtypes), mismatched shapes and bad options; each
case gives a clear error naming the argument or a finite result, and inputs stay unchanged."""

import numpy as np
import pytest

from sciml_toolbox.bilevel import (
    HYPERGRADIENT_METHODS,
    AutogradProblem,
    BilevelLogisticRegressionCV,
    BilevelProblem,
    BilevelRidgeCV,
    InnerResult,
    LogisticProblem,
    QuadraticProblem,
    RidgeProblem,
    conjugate_gradient,
    hypergradient,
    hypergradient_error_curve,
    loglog_slope,
    solve_inner,
    unrolled_hypergradient,
)

from ._probe_utils import Probe, expect_error, spec_tests

PROBED = {"sciml_toolbox.bilevel": {
    "AutogradProblem", "BilevelLogisticRegressionCV", "BilevelRidgeCV", "BilevelProblem",
    "HYPERGRADIENT_METHODS", "InnerResult", "LogisticProblem", "QuadraticProblem",
    "RidgeProblem", "conjugate_gradient", "hypergradient", "hypergradient_error_curve",
    "loglog_slope", "solve_inner", "unrolled_hypergradient"}}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_rng = np.random.default_rng(0)
N, P = 12, 3
X = _rng.standard_normal((N, P))
Y = X @ np.array([1.0, -1.0, 0.5]) + 0.1 * _rng.standard_normal(N)
XV = _rng.standard_normal((8, P))
YV = XV @ np.array([1.0, -1.0, 0.5])
LAB = np.where(Y > 0, 1.0, -1.0)
LABV = np.where(YV > 0, 1.0, -1.0)
Q = np.eye(P) + 0.1 * np.ones((P, P))
B = _rng.standard_normal((P, 2))
RIDGE = RidgeProblem(X, Y, XV, YV)
Z = np.zeros(P)
XO = np.zeros(P)  # per-feature log-penalties
A_SPD = Q.copy()
BVEC = np.array([1.0, 2.0, 3.0])


def _ridge(X, y, X_val, y_val):
    prob = RidgeProblem(X, y, X_val, y_val)
    return hypergradient(prob, prob.inner_solution(XO), XO)


def _logistic(X, y, X_val, y_val):
    prob = LogisticProblem(X, y, X_val, y_val)
    return hypergradient(prob, solve_inner(prob, XO, max_iter=20).z, XO)


def _quadratic(Q, B):
    prob = QuadraticProblem(Q, B)
    x = np.zeros(2)
    return hypergradient(prob, prob.inner_solution(x), x)


def _cg(b, x0, precond):
    return conjugate_gradient(lambda v: A_SPD @ v, b, x0=x0, precond=precond)


_TUNER_OBJ = {"X": ("object",), "y": ("object",)}
SPEC = {
    "RidgeProblem": Probe(_ridge, X=X, y=Y, X_val=XV, y_val=YV),
    "LogisticProblem": Probe(_logistic, X=X, y=LAB, X_val=XV, y_val=LABV,
                             skip={"y": ("int",), "y_val": ("int",)}),  # int labels tested
    "QuadraticProblem": Probe(_quadratic, Q=Q, B=B),
    "hypergradient": Probe(lambda z, x: hypergradient(RIDGE, z, x), z=Z, x=XO),
    "unrolled_hypergradient": Probe(
        lambda x, z0: unrolled_hypergradient(RIDGE, x, z0, n_iter=3, step=0.1), x=XO, z0=Z),
    "solve_inner": Probe(lambda x, z0: solve_inner(RIDGE, x, z0, max_iter=5).z, x=XO, z0=Z,
                         skip={"z0": ("none",)}),  # optional: zeros
    "conjugate_gradient": Probe(_cg, b=BVEC, x0=np.zeros(3), precond=np.ones(3),
                                skip={"x0": ("none",), "precond": ("none",)}),
    "loglog_slope": Probe(loglog_slope, inner_error=np.array([1.0, 0.1, 0.01]),
                          error=np.array([1.0, 0.01, 0.0001])),
    "hypergradient_error_curve": Probe(
        lambda x: hypergradient_error_curve(RIDGE, x, [Z, Z + 0.1], methods=("ift",)), x=XO),
    "BilevelRidgeCV.fit": Probe(
        lambda X, y: BilevelRidgeCV(max_iter=2).fit(X, y).predict(XV), X=X, y=Y,
        allow=_TUNER_OBJ),
    "BilevelLogisticRegressionCV.fit": Probe(
        lambda X, y: BilevelLogisticRegressionCV(max_iter=2).fit(X, y).predict(XV), X=X,
        # labels: object arrays of floats are 'unknown' targets for scikit-learn classifiers
        y=LAB, allow={"X": ("object",)},
        skip={"y": ("nan", "inf", "complex", "float16", "int", "object")}),
}


test_good_call, test_bad_array = spec_tests(SPEC)


def _torch_problem():
    torch = pytest.importorskip("torch")
    A = torch.tensor(Q)

    def inner(z, x):
        return 0.5 * z @ A @ z - z @ x

    def outer(z, x):
        return 0.5 * (z * z).sum()

    return torch, AutogradProblem(inner, outer, n_inner=P, n_outer=P)


def test_autograd_problem_good_and_bad():
    torch, prob = _torch_problem()
    z = torch.zeros(P, dtype=torch.float64)
    x = torch.ones(P, dtype=torch.float64)
    h = hypergradient(prob, solve_inner(prob, x, z, method="newton").z, x)
    # closed form: z* = Q^{-1} x, outer = |z*|^2 / 2, dh/dx = Q^{-1} z* = Q^{-2} x
    Qi = np.linalg.inv(Q)
    np.testing.assert_allclose(h.numpy(), Qi @ Qi @ np.ones(P), rtol=1e-8)
    expect_error(lambda: AutogradProblem("f", prob.outer), "inner")
    expect_error(lambda: AutogradProblem(prob.inner, None), "outer")
    expect_error(lambda: AutogradProblem(prob.inner, prob.outer, n_inner=0), "n_inner")
    expect_error(lambda: hypergradient(prob, z[:2], x), "z")
    expect_error(lambda: hypergradient(prob, z, x[:2]), "x")
    expect_error(lambda: hypergradient(prob, z * float("nan"), x), "z")


@pytest.mark.parametrize("call, name", [
    (lambda: RidgeProblem(X, Y[:-1], XV, YV), "y"),
    (lambda: RidgeProblem(X, Y, XV[:, :2], YV), "X_val"),
    (lambda: RidgeProblem(X, Y, XV, YV[:-1]), "y_val"),
    (lambda: RidgeProblem(X, Y), "X_val"),
    (lambda: RidgeProblem(X, Y, XV, YV, outer="cubic"), "outer"),
    (lambda: RidgeProblem(X, Y, XV, YV, reg_scale=-1.0), "reg_scale"),
    (lambda: RidgeProblem(X, Y, outer="linear"), "outer_vector"),
    (lambda: RidgeProblem(X, Y, outer="linear", outer_vector=np.ones(P + 1)), "outer_vector"),
    (lambda: LogisticProblem(X, Y, XV, LABV), "y"),
    (lambda: QuadraticProblem(-Q, B), "Q"),
    (lambda: QuadraticProblem(Q, B[:2]), "B"),
    (lambda: QuadraticProblem(Q, B, c=np.ones(P + 1)), "c"),
    (lambda: QuadraticProblem(Q, B, mu=-1.0), "mu"),
    (lambda: hypergradient(RIDGE, Z[:2], XO), "z"),
    (lambda: hypergradient(RIDGE, Z, XO[:2]), "x"),
    (lambda: hypergradient(RIDGE, Z, XO, method="adjoint"), "method"),
    (lambda: hypergradient(RIDGE, Z, XO, solver="lu"), "solver"),
    (lambda: hypergradient(RIDGE, Z, XO, tol=-1.0), "tol"),
    (lambda: hypergradient("ridge", Z, XO), "problem"),
    (lambda: hypergradient(BilevelProblem(), Z, XO), "BilevelProblem"),
    (lambda: unrolled_hypergradient(RIDGE, XO, Z, n_iter=-1, step=0.1), "n_iter"),
    (lambda: unrolled_hypergradient(RIDGE, XO, Z, n_iter=2, step=0.0), "step"),
    (lambda: solve_inner(RIDGE, XO, Z, method="lbfgs"), "method"),
    (lambda: solve_inner(RIDGE, XO, Z, max_iter=0), "max_iter"),
    (lambda: solve_inner(RIDGE, XO, Z[:1]), "z0"),
    (lambda: conjugate_gradient("A", BVEC), "matvec"),
    (lambda: conjugate_gradient(lambda v: A_SPD @ v, BVEC, x0=np.zeros(2)), "x0"),
    (lambda: conjugate_gradient(lambda v: A_SPD @ v, BVEC, precond=-np.ones(3)), "precond"),
    (lambda: conjugate_gradient(lambda v: A_SPD @ v, BVEC, rtol=-1.0), "rtol"),
    (lambda: conjugate_gradient(lambda v: A_SPD @ v, BVEC, max_iter=-1), "max_iter"),
    (lambda: conjugate_gradient(lambda v: -A_SPD @ v, BVEC), "strongly convex"),
    (lambda: loglog_slope([1.0, 0.1, 0.01], [1.0, 0.1]), "error"),
    (lambda: loglog_slope([1.0, 0.1, 0.01], [1.0, np.nan, 0.01]), "error"),
    (lambda: loglog_slope([1.0, 0.1], [1.0, 0.1], lo=np.nan), "lo"),
    (lambda: hypergradient_error_curve(RIDGE, XO, [Z], methods=("magic",)), "methods"),
    (lambda: hypergradient_error_curve(RIDGE, XO, []), "z_path"),
    (lambda: hypergradient_error_curve(RIDGE, XO, [Z[:2]]), "z_path[0]"),
    (lambda: BilevelRidgeCV(alpha_init=-1.0).fit(X, Y), "alpha_init"),
    (lambda: BilevelRidgeCV().fit(X, Y[:-1]), "y"),
    (lambda: BilevelRidgeCV().fit(X, Y, XV, None), "y_val"),
    (lambda: BilevelRidgeCV().fit(X, Y, XV[:, :2], YV), "X_val"),
    (lambda: BilevelRidgeCV(hypergradient="magic").fit(X, Y), "hypergradient"),
    (lambda: BilevelLogisticRegressionCV().fit(X, np.zeros(N)), "y"),
    (lambda: BilevelRidgeCV().fit(X[:1], Y[:1]), "X"),
])
def test_bad_shapes_and_options(call, name):
    expect_error(call, name)


def test_constants_and_result_type():
    # HYPERGRADIENT_METHODS is a tuple of the method names hypergradient accepts
    assert isinstance(HYPERGRADIENT_METHODS, tuple)
    for m in HYPERGRADIENT_METHODS:
        assert np.all(np.isfinite(hypergradient(RIDGE, RIDGE.inner_solution(XO), XO, method=m)))
    res = solve_inner(RIDGE, XO, Z, max_iter=3)
    assert isinstance(res, InnerResult) and res.z.shape == (P,)
    # one-sample problems: a clear error or a finite hypergradient
    try:
        h = _ridge(X[:1], Y[:1], XV[:1], YV[:1])
    except (ValueError, TypeError) as exc:
        assert "X" in str(exc)
    else:
        assert np.all(np.isfinite(h))


def test_torch_inputs_are_checked_like_numpy():
    torch = pytest.importorskip("torch")
    At = torch.tensor(A_SPD)
    bt = torch.tensor(BVEC)
    bad = bt.clone()
    bad[0] = float("nan")
    expect_error(lambda: conjugate_gradient(lambda v: At @ v, bad), "b")
    expect_error(lambda: conjugate_gradient(lambda v: At @ v, bt, precond=-torch.ones(3)),
                 "precond")
    x, _, _ = conjugate_gradient(lambda v: At @ v, bt)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A_SPD, BVEC), rtol=1e-10)
