"""Bad-input probes of sciml_toolbox.stiefel: every public name, every array argument spoiled
in turn (NaN/inf, wrong ndim, empty, wrong dtypes), mismatched shapes and bad options; each
case gives a clear error naming the argument or a finite result, and inputs stay unchanged."""

import numpy as np
import pytest

from sciml_toolbox.stiefel import (
    CCAClosedForm,
    LandingCCA,
    LandingICA,
    cca_closed_form,
    cca_subspace_correlation,
    cholesky_retraction,
    generalized_eigh,
    landing_direction,
    landing_step,
    landing_update,
    make_cca_data,
    make_gevp_pencil,
    normal_direction,
    penalty,
    plam_direction,
    polar_retraction,
    relative_gradient,
    riemannian_gradient,
    safe_step_size,
)

from ._probe_utils import Probe, expect_error, spec_tests

PROBED = {"sciml_toolbox.stiefel": {
    "LandingCCA", "LandingICA", "generalized_eigh", "make_cca_data", "make_gevp_pencil",
    "landing_direction", "landing_step", "landing_update", "normal_direction", "penalty",
    "plam_direction",
    "relative_gradient", "riemannian_gradient", "safe_step_size", "cholesky_retraction",
    "polar_retraction", "CCAClosedForm", "cca_closed_form", "cca_subspace_correlation"}}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_rng = np.random.default_rng(0)
N, P = 6, 2
_M = _rng.standard_normal((N, N))
B = _M @ _M.T / N + np.eye(N)
A = np.diag(np.linspace(1.0, 2.0, N))
X = np.linalg.qr(_rng.standard_normal((N, P)))[0]
BX = B @ X
G = _rng.standard_normal((N, P))
BINVG = np.linalg.solve(B, G)
D = _rng.standard_normal((N, P))
XD, YD = _rng.standard_normal((40, 3)), _rng.standard_normal((40, 3))
XI = _rng.laplace(size=(60, 2))

CF = cca_closed_form(XD, YD, 2)
_FITTED = {}


def _fitted(name):
    if name not in _FITTED:
        if name == "cca":
            _FITTED[name] = LandingCCA(n_components=1, batch_size=20, max_epochs=1,
                                       random_state=0).fit(XD, YD)
        else:
            _FITTED[name] = LandingICA(batch_size=30, max_epochs=1, random_state=0).fit(XI)
    return _FITTED[name]


def _cca_fit(X, Y):
    return LandingCCA(n_components=1, batch_size=20, max_epochs=1, random_state=0).fit(
        X, Y).transform(XD, YD)


def _ica_fit(X):
    return LandingICA(batch_size=30, max_epochs=1, random_state=0).fit(X).transform(XI)


def _gevp(A, B):
    return generalized_eigh(A, B, 1, max_iter=5, random_state=0)


# the estimators follow scikit-learn: object arrays of numbers become float64
_OBJ, _OBJ2 = {"X": ("object",)}, {"X": ("object",), "Y": ("object",)}
SPEC = {
    "penalty": Probe(penalty, X=X, BX=BX),
    "normal_direction": Probe(normal_direction, X=X, BX=BX),
    "relative_gradient": Probe(relative_gradient, X=X, G=G, BX=BX),
    "riemannian_gradient": Probe(riemannian_gradient, X=X, G=G, BinvG=BINVG),
    "plam_direction": Probe(plam_direction, X=X, G=G, BX=BX, omega=1.0),
    "landing_direction": Probe(landing_direction, X=X, G=G, BX=BX),
    "landing_direction_two": Probe(landing_direction, X=X, G=G, BX=BX, BX2=BX + 0.01,
                                   G2=G + 0.01, skip={"G2": ("none",)}),
    "landing_direction_riem": Probe(landing_direction, X=X, G=G, BX=BX, BinvG=BINVG,
                                    gradient="riemannian"),
    "safe_step_size": Probe(safe_step_size, X=X, BX=BX, direction=D, curvature=1.0,
                            symmetric_part=BX.T @ D + D.T @ BX, constraint=X.T @ BX - np.eye(P),
                            skip={"symmetric_part": ("none",), "constraint": ("none",)}),
    "landing_step": Probe(landing_step, X=X, G=G, BX=BX, B=B, learning_rate=0.1),
    "landing_update": Probe(landing_update, X=X, G=G, BX=BX, B=B, learning_rate=0.1),
    "cholesky_retraction": Probe(cholesky_retraction, Y=X, BY=BX),
    "polar_retraction": Probe(polar_retraction, Y=X, BY=BX),
    "generalized_eigh": Probe(_gevp, A=A, B=B),
    "cca_closed_form": Probe(lambda X, Y: cca_closed_form(X, Y, 2), X=XD, Y=YD),
    "cca_subspace_correlation": Probe(
        lambda Wx, Wy: cca_subspace_correlation(Wx, Wy, CF.covariances), Wx=CF.weights_x,
        Wy=CF.weights_y),
    "LandingCCA.fit": Probe(_cca_fit, X=XD, Y=YD, allow=_OBJ2),
    "LandingCCA.transform": Probe(lambda X, Y: _fitted("cca").transform(X, Y), X=XD, Y=YD,
                                  skip={"Y": ("none",)},  # transform(X) alone is allowed
                                  allow=_OBJ2),
    "LandingCCA.partial_fit": Probe(
        lambda X, Y: LandingCCA(n_components=1, random_state=0).partial_fit(X, Y).partial_fit(
            XD, YD).transform(XD, YD), X=XD, Y=YD, allow=_OBJ2),
    "LandingICA.fit": Probe(_ica_fit, X=XI, allow=_OBJ),
    "LandingICA.transform": Probe(lambda X: _fitted("ica").transform(X), X=XI, allow=_OBJ),
    "LandingICA.inverse_transform": Probe(lambda X: _fitted("ica").inverse_transform(X), X=XI,
                                          allow=_OBJ),
}


test_good_call, test_bad_array = spec_tests(SPEC)


@pytest.mark.parametrize("call, name", [
    # mismatched shapes
    (lambda: penalty(X, BX[:, :1]), "BX"),
    (lambda: relative_gradient(X, G[:-1], BX), "G"),
    (lambda: riemannian_gradient(X, G, BINVG.T), "BinvG"),
    (lambda: landing_direction(X, G, BX, BX2=BX[:, :1]), "BX2"),
    (lambda: landing_direction(X, G, BX, G2=G), "BX2"),
    (lambda: landing_direction(X, G, BX, gradient="riemannian"), "BinvG"),
    (lambda: landing_direction(X, G, BX, gradient="euclidean"), "gradient"),
    (lambda: landing_direction(X, G, BX, omega=np.nan), "omega"),
    (lambda: landing_direction(X, G, BX, omega=-1.0), "omega"),
    (lambda: plam_direction(X, G, BX, omega="1"), "omega"),
    (lambda: safe_step_size(X, BX, D, -1.0), "curvature"),
    (lambda: safe_step_size(X, BX, D, np.ones(2)), "curvature"),
    (lambda: safe_step_size(X, BX, D, 1.0, epsilon=0.0), "epsilon"),
    (lambda: safe_step_size(X, BX, D, 1.0, constraint=np.eye(P + 1)), "constraint"),
    (lambda: safe_step_size(X, BX, D, 1.0, symmetric_part=np.eye(N)), "symmetric_part"),
    (lambda: landing_step(X, G, BX, learning_rate=0.1), "curvature"),
    (lambda: landing_step(X, G, BX, learning_rate=-0.1, B=B), "learning_rate"),
    (lambda: landing_step(X, G, BX, learning_rate=0.1, B=B[:3]), "B"),
    (lambda: landing_step(X, G, BX, learning_rate=0.1, B=B, epsilon=-0.5), "epsilon"),
    (lambda: landing_update(X, G, BX, learning_rate=0.1, B=B, BX2=BX[:3]), "BX2"),
    (lambda: landing_update(X, G, BX, learning_rate=0.1, B=B, G2=G), "BX2"),
    (lambda: cholesky_retraction(X, BX[:3]), "BY"),
    (lambda: cholesky_retraction(np.zeros((N, P)), np.zeros((N, P))), "Y"),
    (lambda: polar_retraction(np.ones((N, P)), B @ np.ones((N, P))), "Y"),
    (lambda: polar_retraction(X.T, BX.T), "Y"),
    (lambda: generalized_eigh(A, B[:3], 1), "B"),
    (lambda: generalized_eigh(A, B, 0), "n_components"),
    (lambda: generalized_eigh(A, B, N + 1), "n_components"),
    (lambda: generalized_eigh(A, -B, 1), "B"),
    (lambda: generalized_eigh(A, B, 1, method="newton"), "method"),
    (lambda: generalized_eigh(A, B, 1, max_iter=-1), "max_iter"),
    (lambda: generalized_eigh(A, B, 1, X0=np.ones((N + 1, 1))), "X0"),
    (lambda: make_cca_data(0, 3, 1), "n_samples"),
    (lambda: make_cca_data(10, 3, 4), "n_components"),
    (lambda: make_cca_data(10, 3.5, 1), "n_features"),
    (lambda: make_gevp_pencil(0), "n_features"),
    (lambda: make_gevp_pencil(5, cond_A=0.5), "cond_A"),
    (lambda: make_gevp_pencil(5, cond_A=np.inf), "cond_A"),
    (lambda: cca_closed_form(XD, YD[:-1]), "Y"),
    (lambda: cca_closed_form(XD, YD, 4), "n_components"),
    (lambda: cca_closed_form(XD, YD, reg=-1.0), "reg"),
    (lambda: cca_closed_form(np.ones((40, 3)), YD), "X"),
    (lambda: cca_subspace_correlation(CF.weights_x[:2], CF.weights_y, CF.covariances), "Wx"),
    (lambda: cca_subspace_correlation(np.zeros((3, 2)), CF.weights_y, CF.covariances), "Wx"),
    (lambda: cca_subspace_correlation(CF.weights_x, CF.weights_y, CF.covariances[:2]),
     "covariances"),
    (lambda: cca_subspace_correlation(CF.weights_x, CF.weights_y,
                                      (np.full((3, 3), np.nan),) + CF.covariances[1:]),
     "covariances"),
    (lambda: cca_subspace_correlation(CF.weights_x, CF.weights_y,
                                      (np.eye(2),) + CF.covariances[1:]), "covariances"),
    (lambda: LandingCCA().fit(XD, YD[:-1]), "Y"),
    (lambda: LandingCCA(n_components=4).fit(XD, YD), "n_components"),
    (lambda: LandingCCA(batch_size=0).fit(XD, YD), "batch_size"),
    (lambda: _fitted("cca").transform(XD[:, :2], YD), "X"),
    (lambda: LandingICA(n_components=3).fit(XI), "n_components"),
    (lambda: LandingICA(fun="cube").fit(XI), "fun"),
    (lambda: LandingICA(epsilon=0.0).fit(XI), "epsilon"),
    (lambda: _fitted("ica").transform(XI[:, :1]), "X"),
    (lambda: _fitted("ica").inverse_transform(XI[:, :1]), "X"),
])
def test_bad_shapes_and_options(call, name):
    expect_error(call, name)


def test_one_sample_input():
    # one sample cannot estimate a covariance: a clear error, not a NaN
    expect_error(lambda: LandingICA().fit(XI[:1]), "X")
    expect_error(lambda: LandingCCA(n_components=1).fit(XD[:1], YD[:1]), "X")


def test_cca_closed_form_result():
    # a NamedTuple whose weights whiten both views and diagonalise the cross-covariance
    assert isinstance(CF, CCAClosedForm)
    Sxx, Syy, Sxy = CF.covariances
    np.testing.assert_allclose(CF.weights_x.T @ Sxx @ CF.weights_x, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(CF.weights_x.T @ Sxy @ CF.weights_y, np.diag(CF.correlations),
                               atol=1e-10)


def test_torch_inputs_are_checked_like_numpy():
    # the checks run in the caller's namespace: a NaN in a torch tensor, a torch/NumPy mix
    torch = pytest.importorskip("torch")
    Xt, BXt, Gt = (torch.tensor(a) for a in (X, BX, G))
    bad = Xt.clone()
    bad[0, 0] = float("nan")
    expect_error(lambda: landing_direction(bad, Gt, BXt), "X")
    expect_error(lambda: safe_step_size(Xt, BXt, Gt, torch.tensor(float("inf"))), "curvature")
    expect_error(lambda: relative_gradient(Xt, G, BXt), "G")  # NumPy G with torch X
    expect_error(lambda: cholesky_retraction(Xt, BXt[:, :1]), "BY")
    np.testing.assert_allclose(penalty(Xt, BXt).numpy(), penalty(X, BX))
