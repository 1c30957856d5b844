"""Scaling-law API: array namespaces, options, one test per bad input."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sciml_toolbox._array_api import from_numpy, get_namespace, namespace_name
from sciml_toolbox.scaling import (
    ChinchillaLaw,
    CustomLaw,
    FinetuningLaw,
    ForgettingLaw,
    compare_laws,
    make_grid,
)

GRID = make_grid([5, 10], [5, 10], [0, 1], [0.3, 0.6], [0.3, 0.6])


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(17, 23, n))
    D = np.exp(rng.uniform(21, 26, n))
    y = 1.8 + 400 / N ** 0.34 + 2000 / D ** 0.37
    return np.c_[N, D], y * np.exp(rng.normal(0, 1e-3, n))


def _ft_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.exp(rng.uniform(13, 17, n)), np.exp(rng.uniform(10, 14, n)),
              rng.choice([0.0, 0.01, 0.05], n)]
    y = (1.5 + 30 / X[:, 0] ** 0.3 + 40 / X[:, 1] ** 0.3) * (1 + 2 * X[:, 2])
    return X, y


def test_fit_and_predict_in_any_namespace(xp):
    X, y = _data()
    like = xp.asarray([1.0], dtype=xp.float64)
    Xx, yx = from_numpy(X, like), from_numpy(y, like)
    law = ChinchillaLaw(grid=GRID).fit(Xx, yx)
    pred = law.predict(Xx)
    assert namespace_name(get_namespace(pred)) == namespace_name(xp)
    ref = ChinchillaLaw(grid=GRID).fit(X, y)
    np.testing.assert_allclose(law.theta_, ref.theta_, rtol=1e-8)
    assert law.score(Xx, yx) > 0.99


def test_residuals_and_start_losses():
    X, y = _data()
    law = ChinchillaLaw(grid=GRID).fit(X, y)
    assert law.start_losses_.shape == (GRID.shape[0],)
    assert law.loss_ <= law.start_losses_.min() + 1e-15
    assert np.abs(law.residuals(X, y)).max() < 0.01


# small grids (parameter order a, e, alpha, beta[, b][, c]) keep the test fast
_AX = ([0.0, 5.0], [-1.0, 0.0, 1.0], [0.2, 0.6], [0.2, 0.6])
FT_GRIDS = {"additive": make_grid(*_AX, [0.0, 5.0]),
            "additive_p": make_grid(*_AX, [0.0, 5.0], [-2.0, 1.0]),
            "multiplicative": make_grid(*_AX)}


def test_finetuning_forms_and_compare():
    X, y = _ft_data()
    res = compare_laws({f: FinetuningLaw(f, grid=FT_GRIDS[f]) for f in
                        ("additive", "additive_p")}, X, y, n_splits=3)
    # the data follow the additive form with a (1 + C p) factor: it predicts better
    assert res["additive_p"]["rmse_log"] < res["additive"]["rmse_log"]
    law = FinetuningLaw("additive_p", grid=FT_GRIDS["additive_p"]).fit(X, y)
    assert law.params_["C"] == pytest.approx(2.0, rel=0.05)
    groups = np.round(np.log(X[:, 0]))
    out = compare_laws({"m": FinetuningLaw("multiplicative", grid=FT_GRIDS["multiplicative"])},
                       X, y, groups=groups)
    assert len(out["m"]["fold_rmse"]) == len(np.unique(groups))


def test_get_params_clone():
    from sklearn.base import clone

    law = ForgettingLaw("given", delta=1e-2)
    c = clone(law)
    assert c.get_params()["base_loss"] == "given" and c.delta == 1e-2


def test_input_not_modified():
    X, y = _data()
    X0, y0 = X.copy(), y.copy()
    ChinchillaLaw(grid=GRID).fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# ----------------------------------------------------------------------------- bad input
def test_bad_nonpositive_N():
    X, y = _data()
    X[0, 0] = 0.0
    with pytest.raises(ValueError, match="N"):
        ChinchillaLaw(grid=GRID).fit(X, y)


def test_bad_nonpositive_D():
    X, y = _data()
    X[3, 1] = -5.0
    with pytest.raises(ValueError, match="D"):
        ChinchillaLaw(grid=GRID).fit(X, y)


def test_bad_nonpositive_loss():
    X, y = _data()
    y[2] = 0.0
    with pytest.raises(ValueError, match="y"):
        ChinchillaLaw(grid=GRID).fit(X, y)


def test_bad_nan_loss():
    X, y = _data()
    y[2] = np.nan
    with pytest.raises(ValueError, match="y"):
        ChinchillaLaw(grid=GRID).fit(X, y)


def test_bad_p_above_one():
    X, y = _ft_data()
    X[0, 2] = 1.5
    with pytest.raises(ValueError, match="p"):
        ForgettingLaw().fit(X, y)


def test_bad_p_negative():
    X, y = _ft_data()
    X[0, 2] = -0.1
    with pytest.raises(ValueError, match="p"):
        FinetuningLaw().fit(X, y)


def test_bad_too_few_points():
    X, y = _data(n=5)
    with pytest.raises(ValueError, match="too few points"):
        ChinchillaLaw(grid=GRID).fit(X, y)


def test_bad_columns():
    X, y = _data()
    with pytest.raises(ValueError, match="columns"):
        ForgettingLaw().fit(X, y)


def test_bad_given_base_loss_needs_4_columns():
    X, y = _ft_data()
    with pytest.raises(ValueError, match="columns"):
        ForgettingLaw("given").fit(X, y)


def test_bad_lengths():
    X, y = _data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ChinchillaLaw(grid=GRID).fit(X, y[:-1])


def test_bad_delta():
    X, y = _data()
    with pytest.raises(ValueError, match="delta"):
        ChinchillaLaw(delta=0.0).fit(X, y)


def test_bad_grid_shape():
    X, y = _data()
    with pytest.raises(ValueError, match="grid"):
        ChinchillaLaw(grid=np.zeros((3, 4))).fit(X, y)


def test_bad_form():
    X, y = _ft_data()
    with pytest.raises(ValueError, match="form"):
        FinetuningLaw("quadratic").fit(X, y)


def test_bad_base_loss():
    X, y = _ft_data()
    with pytest.raises(ValueError, match="base_loss"):
        ForgettingLaw("linear").fit(X, y)


def test_bad_custom_needs_grid():
    X, y = _data()
    with pytest.raises(ValueError, match="grid"):
        CustomLaw(lambda th, X: th[:, :1] + 0 * X[None, :, 0], ["e"], None).fit(X, y)


def test_bad_custom_not_callable():
    X, y = _data()
    with pytest.raises(TypeError, match="log_predict"):
        CustomLaw("nope", ["e"], np.zeros((1, 1))).fit(X, y)


def test_bad_custom_output_shape():
    X, y = _data()
    with pytest.raises(ValueError, match="log_predict"):
        CustomLaw(lambda th, X: np.zeros(3), ["e"], np.zeros((1, 1))).fit(X, y)


def test_bad_confidence():
    X, y = _data()
    with pytest.raises(ValueError, match="confidence"):
        ChinchillaLaw(grid=GRID, confidence=1.5).fit(X, y)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        ChinchillaLaw().predict(np.ones((2, 2)))
