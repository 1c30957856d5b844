"""The fitting machinery: fused objectives against the generic path and finite differences,
multistart pruning, and fits that cannot give finite parameters."""

import warnings

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize
from sklearn.exceptions import ConvergenceWarning

from sciml_toolbox.scaling import ChinchillaLaw, CustomLaw, ScalingLaw, batched_lbfgs, make_grid

EPOCH = {"E": 1.817, "A": 477.8, "B": 2143.9, "alpha": 0.347, "beta": 0.367}
GRID = make_grid([5, 10], [5, 10], [0, 1], [0.3, 0.6], [0.3, 0.6])


def _data(n=60, seed=0, noise=1e-3):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), n))
    D = np.exp(rng.uniform(np.log(5e9), np.log(5e11), n))
    y = EPOCH["E"] + EPOCH["A"] / N ** EPOCH["alpha"] + EPOCH["B"] / D ** EPOCH["beta"]
    return np.c_[N, D], y * np.exp(rng.normal(0, noise, n))


def _logf(th, X):
    lN, lD = np.log(X[None, :, 0]), np.log(X[None, :, 1])
    return np.logaddexp(np.logaddexp(th[:, :1] - th[:, 3:4] * lN, th[:, 1:2] - th[:, 4:5] * lD),
                        th[:, 2:3])


@pytest.mark.parametrize("weighted", [False, True])
def test_chinchilla_fused_objective_matches_generic_path(weighted):
    # the fused pass of ChinchillaLaw against the generic log-sum-exp path of the base class
    X, y = _data()
    law = ChinchillaLaw(delta=0.02)  # residuals on both sides of delta
    F, z = law._features(X), np.log(y)
    rng = np.random.default_rng(1)
    theta = np.c_[rng.uniform(0, 10, 50), rng.uniform(0, 10, 50), rng.uniform(-1, 1, 50),
                  rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)]
    w = rng.dirichlet(np.ones(len(y)), size=50) if weighted else None
    f1, g1 = law._loss_grad(theta, F, z, w, 0.02, {})
    f2, g2 = ScalingLaw._loss_grad(law, theta, F, z, w, 0.02, {})
    np.testing.assert_allclose(f1, f2, rtol=1e-10)
    np.testing.assert_allclose(g1, g2, rtol=1e-8, atol=1e-14)


def test_weighted_objective_gradient_matches_finite_differences():
    X, y = _data()
    law = ChinchillaLaw(delta=0.02)
    w = np.random.default_rng(2).multinomial(len(y), np.full(len(y), 1 / len(y)), 3) / len(y)
    fg = law._objective(law._features(X), np.log(y), weights=w)
    theta = np.array([6.0, 7.5, 0.5, 0.35, 0.37])
    for row in range(3):
        rows = np.array([row])

        def f(t, rows=rows):
            return fg(t[None, :], rows)[0][0]

        g = fg(theta[None, :], rows)[1][0]
        np.testing.assert_allclose(g, approx_fprime(theta, f, 1e-7), rtol=1e-4, atol=1e-9)


def test_pruning_keeps_the_best_rows_running():
    # problem k: minimise (x - k)^2 + k from x0 = 10; after 1 iteration only the 2 rows of
    # lowest objective continue, the others stop where they are
    def fg(x, rows):
        k = rows[:, None].astype(float)
        return ((x - k) ** 2).sum(1) * (1 + k[:, 0]) + k[:, 0], 2 * (x - k) * (1 + k)

    x0 = np.full((5, 2), 10.0)
    x, f, n_iter, conv = batched_lbfgs(fg, x0, max_iter=50, warm_iter=1, n_keep=2)
    # a scalar reference for the rows that kept running
    for k in np.flatnonzero(conv):
        ref = minimize(lambda v, k=k: fg(v[None, :], np.array([k]))[0][0], x0[k]).x
        np.testing.assert_allclose(x[k], ref, atol=1e-5)
    assert conv.sum() == 2
    assert np.all(n_iter[~conv] == 1)
    assert np.all(f[conv] <= f[~conv].min())


def test_pruned_fit_matches_unpruned_fit():
    X, y = _data(n=120, seed=3)
    grid = make_grid([0, 10, 20], [0, 10, 20], [-1, 0, 1], [0.2, 0.6, 1.0], [0.2, 0.6, 1.0])
    pruned = ChinchillaLaw(grid=grid).fit(X, y)
    full = ChinchillaLaw(grid=grid)
    full._warm_iter = None  # every start to its own stopping test
    full.fit(X, y)
    assert pruned.loss_ <= full.loss_ * (1 + 1e-9)
    np.testing.assert_allclose(pruned.theta_, full.theta_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bad_grid_all_nonfinite(bad):
    X, y = _data()
    with pytest.raises(ValueError, match="grid"):
        ChinchillaLaw(grid=np.full((4, 5), bad)).fit(X, y)


def test_bad_grid_one_nan_row():
    X, y = _data()
    grid = GRID.copy()
    grid[3, 2] = np.nan
    with pytest.raises(ValueError, match="grid must be finite"):
        ChinchillaLaw(grid=grid).fit(X, y)


def test_bad_grid_empty():
    X, y = _data()
    with pytest.raises(ValueError, match="grid"):
        ChinchillaLaw(grid=np.zeros((0, 5))).fit(X, y)


def test_custom_law_nan_prediction_raises():
    X, y = _data()
    law = CustomLaw(lambda th, X: np.full((th.shape[0], X.shape[0]), np.nan),
                    ["a", "b", "e", "alpha", "beta"], GRID)
    with pytest.raises(ValueError, match="NaN or infinite at every one of the 32 starts"):
        law.fit(X, y)
    assert not hasattr(law, "params_")


def test_custom_law_nan_at_some_starts_uses_the_finite_ones():
    # the law is undefined (NaN) for e > 0.9 (the fit has e = 0.6): those starts are not run,
    # the others fit
    X, y = _data()

    def logf(th, X):
        out = _logf(th, X)
        out[th[:, 2] > 0.9] = np.nan
        return out

    law = CustomLaw(logf, ["a", "b", "e", "alpha", "beta"], GRID, positive_columns=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        law.fit(X, y)
    started_nan = GRID[:, 2] > 0.9
    assert np.all(np.isinf(law.start_losses_[started_nan]))
    assert np.all(np.isfinite(law.start_losses_[~started_nan]))
    assert all(np.isfinite(v) for v in law.params_.values())
    ref = ChinchillaLaw(grid=GRID[~started_nan]).fit(X, y)
    np.testing.assert_allclose(law.loss_, ref.loss_, rtol=1e-6)


def test_overflowing_parameters_warn():
    # the only start has a = 720 with a steep alpha: the objective is finite, A = e^a is not
    X, y = _data()
    grid = np.array([[720.0, 7.67, 0.6, 40.0, 0.367]])
    law = ChinchillaLaw(grid=grid, max_iter=1)
    law._n_polish = 0  # keep the batched end point: one iteration cannot bring a below 709
    with pytest.warns(ConvergenceWarning, match="A of params_ are not finite"):
        law.fit(X, y)
    assert np.isfinite(law.loss_)
    assert law.theta_[0] > 709


def test_capped_first_step_reaches_scipy_minima():
    # max_step only shortens trial steps: the minima of Rosenbrock problems started far away
    # (first steps much longer than the cap) are those of SciPy's L-BFGS-B
    from scipy.optimize import rosen, rosen_der

    x0 = make_grid([-30.0, 0.0, 25.0], [-20.0, 40.0])

    def fg(x, rows):
        return np.array([rosen(v) for v in x]), np.array([rosen_der(v) for v in x])

    x, f, n_iter, conv = batched_lbfgs(fg, x0, max_iter=2000, max_step=0.5)
    assert conv.all()
    for start, sol in zip(x0, x, strict=True):
        ref = minimize(rosen, start, jac=rosen_der, method="L-BFGS-B",
                       options={"maxiter": 5000}).x
        np.testing.assert_allclose(sol, ref, atol=1e-4)
