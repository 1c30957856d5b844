"""Bad-input probes of sciml_toolbox.scaling: every public name, every array argument spoiled
in turn (NaN/inf, wrong ndim, empty, wrong dtypes), mismatched shapes and bad options; each
case gives a clear error naming the argument or a finite result, and inputs stay unchanged."""

import numpy as np
import pytest

from sciml_toolbox.scaling import (
    ChinchillaLaw,
    CustomLaw,
    FinetuningLaw,
    ForgettingLaw,
    ScalingLaw,
    batched_lbfgs,
    compare_laws,
    huber,
    make_grid,
    plot_law_fit,
    plot_residuals,
)

from ._probe_utils import Probe, expect_error, spec_tests

PROBED = {"sciml_toolbox.scaling": {
    "ScalingLaw", "ChinchillaLaw", "ForgettingLaw", "FinetuningLaw", "CustomLaw",
    "compare_laws", "batched_lbfgs", "huber", "make_grid", "plot_law_fit", "plot_residuals"}}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_rng = np.random.default_rng(0)
_n = 12
X = np.c_[np.exp(_rng.uniform(17, 23, _n)), np.exp(_rng.uniform(21, 26, _n))]
Y = 1.8 + 400 / X[:, 0] ** 0.34 + 2000 / X[:, 1] ** 0.37
GRID = make_grid([5.0], [5.0], [0.0, 1.0], [0.3], [0.3])
R = np.array([-2.0, -0.1, 0.0, 0.5, 3.0])
X0 = np.array([[1.0, -1.0], [0.5, 2.0]])


def _law():
    return ChinchillaLaw(grid=GRID, max_iter=20)


_FITTED = {}


def _fitted():
    if "law" not in _FITTED:
        _FITTED["law"] = _law().fit(X, Y)
    return _FITTED["law"]


def _quad(x, rows):
    return 0.5 * np.sum(x * x, axis=1), x


def _logf(theta, X):
    # log L = e + log(1 + a / N): a toy two-parameter law and its Jacobian
    e, a = theta[:, :1], theta[:, 1:2]
    inner = 1.0 + np.exp(a) / X[None, :, 0]
    return e + np.log(inner), [np.ones_like(inner), (inner - 1.0) / inner]


def _plot(fn):
    def call(**kw):
        import matplotlib.pyplot as plt

        try:
            return fn(**kw) and None
        finally:
            plt.close("all")
    return call


# the estimators follow scikit-learn: object arrays of numbers become float64
_OBJ = {"X": ("object",), "y": ("object",)}
SPEC = {
    "ChinchillaLaw.fit": Probe(lambda X, y: _law().fit(X, y).predict(X[:2] if len(X) else X),
                               X=X, y=Y, allow=_OBJ),
    "ChinchillaLaw.predict": Probe(lambda X: _fitted().predict(X), X=X, allow=_OBJ),
    "ChinchillaLaw.score": Probe(lambda X, y: _fitted().score(X, y), X=X, y=Y, allow=_OBJ),
    "compare_laws": Probe(lambda X, y: compare_laws({"c": _law()}, X, y, n_splits=2), X=X, y=Y),
    "huber": Probe(huber, r=R, delta=1.0, skip={"r": ("ndim_up", "ndim_down", "empty")}),
    "batched_lbfgs": Probe(lambda x0: batched_lbfgs(_quad, x0, max_iter=5), x0=X0),
    "plot_law_fit": Probe(_plot(lambda X, y: plot_law_fit(_fitted(), X, y)), X=X, y=Y,
                          allow=_OBJ),
    "plot_residuals": Probe(_plot(lambda X, y: plot_residuals(_fitted(), X, y)), X=X, y=Y,
                            allow=_OBJ),
}


test_good_call, test_bad_array = spec_tests(SPEC)


@pytest.mark.parametrize("call, name", [
    # mismatched shapes and bad values
    (lambda: _law().fit(X, Y[:-1]), "y"),
    (lambda: _law().fit(X[:1], Y[:1]), "X"),  # one point: too few for five parameters
    (lambda: _law().fit(X[:, :1], Y), "X"),
    (lambda: _law().fit(-X, Y), "N"),
    (lambda: _law().fit(X, -Y), "y"),
    (lambda: _fitted().predict(X[:, :1]), "X"),
    (lambda: ChinchillaLaw(grid=GRID[:, :3]).fit(X, Y), "grid"),
    (lambda: ChinchillaLaw(grid=np.full((2, 5), np.nan)).fit(X, Y), "grid"),
    (lambda: ChinchillaLaw(delta=0.0).fit(X, Y), "delta"),
    (lambda: ChinchillaLaw(max_iter=0).fit(X, Y), "max_iter"),
    (lambda: ChinchillaLaw(grid=GRID, n_bootstrap=-1).fit(X, Y), "n_bootstrap"),
    (lambda: ChinchillaLaw(grid=GRID, confidence=1.5).fit(X, Y), "confidence"),
    (lambda: ForgettingLaw("exponential").fit(X, Y), "base_loss"),
    (lambda: ForgettingLaw().fit(X, Y), "X"),
    (lambda: FinetuningLaw("linear").fit(X, Y), "form"),
    (lambda: FinetuningLaw().fit(X, Y), "X"),
    (lambda: CustomLaw(_logf, ["e", "a"], make_grid([0.0], [0.0, 1.0]),
                       positive_columns=(3,)).fit(X, Y), "positive_columns"),
    (lambda: CustomLaw(_logf, ["e"], make_grid([0.0], [0.0, 1.0])).fit(X, Y), "grid"),
    (lambda: CustomLaw("not callable", ["e", "a"], make_grid([0.0], [1.0])).fit(X, Y),
     "log_predict"),
    (lambda: ScalingLaw().fit(X, Y), "ScalingLaw"),
    (lambda: compare_laws({"c": _law()}, X, Y, n_splits=1), "n_splits"),
    (lambda: compare_laws({"c": _law()}, X, Y[:-1]), "y"),
    (lambda: compare_laws({"c": _law()}, X, Y, groups=np.zeros(3)), "groups"),
    (lambda: compare_laws([_law()], X, Y), "laws"),
    (lambda: huber(R, -1.0), "delta"),
    (lambda: huber(R, np.nan), "delta"),
    (lambda: make_grid([0.0, np.nan], [1.0]), "axes"),
    (lambda: make_grid([[0.0, 1.0]], [1.0]), "axes"),
    (lambda: make_grid(), "axes"),
    (lambda: batched_lbfgs(_quad, X0, max_iter=-1), "max_iter"),
    (lambda: batched_lbfgs(_quad, X0, memory=0), "memory"),
    (lambda: batched_lbfgs("f", X0), "fun_grad"),
    (lambda: batched_lbfgs(lambda x, rows: (x[:, 0], x[:1]), X0), "fun_grad"),
    (lambda: plot_law_fit(_fitted(), X, Y, x_column=5), "x_column"),
    (lambda: plot_law_fit(_law(), X, Y), "fitted"),
    (lambda: plot_law_fit("law", X, Y), "law"),
    (lambda: plot_residuals(_fitted(), X, Y[:-1]), "y"),
])
def test_bad_shapes_and_options(call, name):
    import matplotlib.pyplot as plt

    try:
        expect_error(call, name)
    finally:
        plt.close("all")
