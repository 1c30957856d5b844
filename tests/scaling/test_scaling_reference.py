"""Independent checks of the scaling-law fitting: SciPy, finite differences, closed forms,
published parameters."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize, rosen, rosen_der
from scipy.special import huber as sp_huber

from sciml_toolbox.scaling import (
    ChinchillaLaw,
    CustomLaw,
    FinetuningLaw,
    ForgettingLaw,
    batched_lbfgs,
    huber,
    make_grid,
)

# Epoch AI replication of Chinchilla approach 3 (Besiroglu et al., 2024), from the reference note
EPOCH = {"E": 1.817, "A": 477.8, "B": 2143.9, "alpha": 0.347, "beta": 0.367}


def chinchilla(N, D, p):
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


def forgetting(N, D, pinj, p, L0):
    return L0 + p["A"] * D ** p["beta"] / ((1 + p["B"] * pinj) * N) ** p["alpha"]


def _chinchilla_points(n, rng, lo_n=7e7, hi_n=1.6e10, lo_d=5e9, hi_d=5e11):
    N = np.exp(rng.uniform(np.log(lo_n), np.log(hi_n), n))
    D = np.exp(rng.uniform(np.log(lo_d), np.log(hi_d), n))
    return np.c_[N, D]


def test_huber_matches_scipy():
    r = np.linspace(-0.01, 0.01, 101)
    np.testing.assert_allclose(huber(r, 1e-3), sp_huber(1e-3, r), rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("law", [
    ChinchillaLaw(), ForgettingLaw("power"), ForgettingLaw("given"),
    FinetuningLaw("additive"), FinetuningLaw("additive_p"), FinetuningLaw("multiplicative"),
    FinetuningLaw("multiplicative_p"),
])
def test_objective_gradient_matches_finite_differences(law):
    rng = np.random.default_rng(0)
    n = 30
    cols = [np.exp(rng.uniform(15, 20, n)), np.exp(rng.uniform(15, 20, n))]
    if law._n_columns[0] >= 3:
        cols.append(rng.uniform(0, 0.05, n))
    if law._n_columns[0] == 4:
        cols.append(rng.uniform(2, 3, n))
    X = np.stack(cols, 1)
    y = rng.uniform(2, 4, n)
    law.delta = 0.05  # a mix of quadratic and linear residuals
    fg = law._objective(law._features(X), np.log(y))
    P = len(law.fit_param_names)
    theta = rng.uniform(0.1, 1.0, P)
    f = lambda t: fg(t[None, :], np.zeros(1, int))[0][0]  # noqa: E731
    g = fg(theta[None, :], np.zeros(1, int))[1][0]
    np.testing.assert_allclose(g, approx_fprime(theta, f, 1e-7), rtol=1e-4, atol=1e-8)


def test_batched_lbfgs_solves_independent_rosenbrock_problems():
    x0 = make_grid([-1.5, 0.0, 1.5], [-1.0, 2.0])

    def fg(x, rows):
        return np.array([rosen(v) for v in x]), np.array([rosen_der(v) for v in x])

    x, f, n_iter, conv = batched_lbfgs(fg, x0, max_iter=500)
    np.testing.assert_allclose(x, 1.0, atol=1e-5)
    assert conv.all()
    # same minimum as SciPy's L-BFGS-B from each start
    for start, sol in zip(x0, x, strict=True):
        ref = minimize(rosen, start, jac=rosen_der, method="L-BFGS-B").x
        np.testing.assert_allclose(sol, ref, atol=1e-4)


def test_batched_lbfgs_rows_are_independent():
    # problem k: minimise sum_i c_k (x_i - k)^2 ; solution x = k whatever the other rows do
    c = np.array([1.0, 10.0, 1e3, 1e-2])

    def fg(x, rows):
        k = rows[:, None].astype(float)
        return (c[rows, None] * (x - k) ** 2).sum(1), 2 * c[rows, None] * (x - k)

    x, _, _, _ = batched_lbfgs(fg, np.zeros((4, 3)))
    np.testing.assert_allclose(x, np.arange(4)[:, None] * np.ones(3), atol=1e-6)


def test_chinchilla_fit_reproduces_epoch_replication_parameters():
    rng = np.random.default_rng(0)
    X = _chinchilla_points(245, rng)
    y = chinchilla(X[:, 0], X[:, 1], EPOCH)
    law = ChinchillaLaw().fit(X, y)  # the 4,500-start grid of Hoffmann et al. / Epoch AI
    assert law.n_starts_ == 4500
    for k, v in EPOCH.items():
        assert law.params_[k] == pytest.approx(v, rel=1e-3), k


def test_chinchilla_recovers_parameters_from_noisy_data():
    rng = np.random.default_rng(1)
    true = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al.
    X = _chinchilla_points(400, rng, 1e7, 1e11, 1e8, 1e12)
    y = chinchilla(X[:, 0], X[:, 1], true) * np.exp(rng.normal(0, 1e-3, len(X)))
    grid = make_grid([0, 5, 10], [0, 5, 10], [-1, 0, 1], [0.2, 0.6, 1.0], [0.2, 0.6, 1.0])
    law = ChinchillaLaw(grid=grid).fit(X, y)
    for k, v in true.items():
        assert law.params_[k] == pytest.approx(v, rel=0.05), k


def _forgetting_data(rng, base, noise=1e-3):
    true = {"A": 30.0, "B": 900.0, "alpha": 0.4, "beta": 0.2}
    Ns = np.array([4e7, 1e8, 3e8, 1e9])
    Ds = np.array([1e6, 3e6, 1e7, 3e7, 1e8])
    ps = np.array([0.0, 0.001, 0.01, 0.05])
    N, D, P = (g.ravel() for g in np.meshgrid(Ns, Ds, ps, indexing="ij"))
    L0 = 1.8 + 400.0 / N ** 0.33
    y = forgetting(N, D, P, true, L0) * np.exp(rng.normal(0, noise, N.size))
    X = np.c_[N, D, P] if base == "power" else np.c_[N, D, P, L0]
    return X, y, true


@pytest.mark.parametrize("base", ["given", "power"])
def test_forgetting_law_recovers_parameters(base):
    rng = np.random.default_rng(2)
    X, y, true = _forgetting_data(rng, base)
    law = ForgettingLaw(base).fit(X, y)
    for k, v in true.items():
        assert law.params_[k] == pytest.approx(v, rel=0.05), k
    if base == "power":
        np.testing.assert_allclose(law.base_loss_of([4e7, 1e9]),
                                   1.8 + 400.0 / np.array([4e7, 1e9]) ** 0.33, rtol=0.01)


def test_predict_matches_closed_form():
    rng = np.random.default_rng(3)
    X = _chinchilla_points(50, rng)
    y = chinchilla(X[:, 0], X[:, 1], EPOCH) * np.exp(rng.normal(0, 0.01, 50))
    grid = make_grid([5, 10], [5, 10], [0, 1], [0.3, 0.6], [0.3, 0.6])
    law = ChinchillaLaw(grid=grid).fit(X, y)
    np.testing.assert_allclose(law.predict(X), chinchilla(X[:, 0], X[:, 1], law.params_),
                               rtol=1e-12)


def test_custom_law_with_finite_differences_matches_builtin():
    rng = np.random.default_rng(4)
    X = _chinchilla_points(120, rng)
    y = chinchilla(X[:, 0], X[:, 1], EPOCH) * np.exp(rng.normal(0, 1e-3, 120))
    grid = make_grid([5, 10], [5, 10], [0, 1], [0.3, 0.6], [0.3, 0.6])

    def logf(th, X):
        lN, lD = np.log(X[None, :, 0]), np.log(X[None, :, 1])
        return np.logaddexp(np.logaddexp(th[:, :1] - th[:, 3:4] * lN,
                                         th[:, 1:2] - th[:, 4:5] * lD), th[:, 2:3])

    custom = CustomLaw(logf, ["a", "b", "e", "alpha", "beta"], grid, positive_columns=(0, 1))
    custom.fit(X, y)
    ref = ChinchillaLaw(grid=grid).fit(X, y)
    np.testing.assert_allclose(custom.theta_, ref.theta_, rtol=1e-4, atol=1e-5)


def test_bootstrap_interval_covers_truth():
    rng = np.random.default_rng(5)
    X = _chinchilla_points(200, rng)
    y = chinchilla(X[:, 0], X[:, 1], EPOCH) * np.exp(rng.normal(0, 2e-3, 200))
    grid = make_grid([5, 10], [5, 10], [0, 1], [0.3, 0.6], [0.3, 0.6])
    law = ChinchillaLaw(grid=grid, n_bootstrap=40, random_state=0).fit(X, y)
    lo, hi = law.params_ci_["alpha"]
    assert lo < EPOCH["alpha"] < hi
    assert law.bootstrap_params_["E"].shape == (40,)
