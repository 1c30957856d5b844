"""Bad-input probes of sciml_toolbox.dynamics: every public name, every array argument spoiled
in turn (NaN/inf, wrong ndim, empty, wrong dtypes), mismatched shapes and bad options; each
case gives a clear error naming the argument or a finite result, and inputs stay unchanged."""

import numpy as np
import pytest

from sciml_toolbox.dynamics import (
    GaussianODEResult,
    anisotropy,
    attention_velocity,
    cluster_count,
    empirical_moments,
    gaussian_ode,
    gaussian_vector_field,
    gaussian_w2,
    limit_rank,
    simulate_particles,
    w2_to_gaussian,
)

from ._probe_utils import Probe, expect_error, spec_tests

PROBED = {"sciml_toolbox.dynamics": {
    "attention_velocity", "simulate_particles", "gaussian_vector_field", "gaussian_ode",
    "GaussianODEResult", "cluster_count", "limit_rank", "anisotropy", "empirical_moments",
    "gaussian_w2", "w2_to_gaussian"}}

_rng = np.random.default_rng(0)
N, D = 5, 3
X = _rng.standard_normal((N, D))
Q = _rng.standard_normal((2, D)) / 2
K = _rng.standard_normal((2, D)) / 2
V = np.eye(D)
MEAN = np.zeros(D)
COV = np.eye(D) + 0.1 * np.ones((D, D))
T = np.array([0.0, 0.1])

# arguments that accept batches (..., n, d) take an extra leading axis legitimately
_BATCH = ("ndim_up",)

SPEC = {
    "attention_velocity": Probe(attention_velocity, X=X, Q=Q, K=K, V=V,
                                skip={"X": _BATCH}),
    "simulate_particles": Probe(simulate_particles, X0=X, Q=Q, K=K, V=V, t_eval=T,
                                skip={"X0": _BATCH, "t_eval": ("int",)}),
    "gaussian_vector_field": Probe(gaussian_vector_field, mean=MEAN, cov=COV, Q=Q, K=K, V=V,
                                   skip={"mean": _BATCH, "cov": _BATCH, "Q": _BATCH,
                                         "K": _BATCH, "V": _BATCH}),
    "gaussian_ode": Probe(gaussian_ode, mean0=MEAN, cov0=COV, Q=Q, K=K, V=V, t_eval=T,
                          skip={"mean0": _BATCH, "cov0": _BATCH, "Q": _BATCH, "K": _BATCH,
                                "V": _BATCH, "t_eval": ("int",)}),
    "cluster_count": Probe(cluster_count, X=X),
    "limit_rank": Probe(limit_rank, cov=COV, skip={"cov": _BATCH}),
    "anisotropy": Probe(anisotropy, cov=COV, skip={"cov": _BATCH}),
    "empirical_moments": Probe(empirical_moments, X=X, skip={"X": _BATCH}),
    "gaussian_w2": Probe(gaussian_w2, mean1=MEAN, cov1=COV, mean2=MEAN + 1, cov2=2 * COV,
                         skip={k: _BATCH for k in ("mean1", "cov1", "mean2", "cov2")}),
    "w2_to_gaussian": Probe(w2_to_gaussian, X=X, mean=MEAN, cov=COV),
    "w2_to_gaussian_assignment": Probe(w2_to_gaussian, X=X, mean=MEAN, cov=COV,
                                       method="assignment", random_state=0),
}


test_good_call, test_bad_array = spec_tests(SPEC)


# mismatched shapes, one-sample input, out-of-range options
@pytest.mark.parametrize("call, name", [
    (lambda: attention_velocity(X, Q[:, :2], K, V), "Q"),
    (lambda: attention_velocity(X, Q, K[:1], V), "K"),
    (lambda: attention_velocity(X, Q, K, np.eye(D + 1)), "V"),
    (lambda: attention_velocity(X, Q, K, V, kind="cosine"), "kind"),
    (lambda: attention_velocity(X, Q, K, V, mask=np.ones((N, N))), "mask"),
    (lambda: attention_velocity(X, Q, K, V, mask=np.ones((N, N + 1), bool)), "mask"),
    (lambda: attention_velocity(X, Q, K, V, mask="anticausal"), "mask"),
    (lambda: attention_velocity(X, Q, K, V, epsilon=0.0), "epsilon"),
    (lambda: attention_velocity(X, Q, K, V, kind="sinkhorn", n_iter=0), "n_iter"),
    (lambda: attention_velocity(X, Q, K, V, bias=np.nan), "bias"),
    (lambda: attention_velocity(X, Q, K, V, block_size=0), "block_size"),
    (lambda: attention_velocity(X, Q, K, V, block_size=2.5), "block_size"),
    (lambda: attention_velocity(X, Q, K, V, sphere="yes"), "sphere"),
    (lambda: attention_velocity(X, Q, K, V, normalize=1), "normalize"),
    (lambda: attention_velocity(X, [Q], [K, K], [V]), "K"),
    (lambda: attention_velocity(X, Q, K, np.ones((2, D))), "V"),
    (lambda: simulate_particles(X, Q, K, V, [0.0, 0.1, 0.05]), "t_eval"),
    (lambda: simulate_particles(X, Q, K, V, []), "t_eval"),
    (lambda: simulate_particles(X, Q, K, V, T, method="rk45"), "method"),
    (lambda: simulate_particles(X, Q, K, V, T, dt=-0.1), "dt"),
    (lambda: simulate_particles(np.zeros((N, D)), Q, K, V, T, sphere=True), "X0"),
    (lambda: gaussian_vector_field(MEAN[:2], COV, Q, K, V), "mean"),
    (lambda: gaussian_vector_field(MEAN, -COV, Q, K, V), "cov"),
    (lambda: gaussian_vector_field(MEAN, COV[:, :2], Q, K, V), "cov"),
    (lambda: gaussian_vector_field(MEAN, COV, Q, K, V, kind="sigmoid"), "kind"),
    (lambda: gaussian_ode(MEAN, COV, Q, K, V, T, rtol=0.0), "rtol"),
    (lambda: gaussian_ode(MEAN, COV, Q, K, V, T, max_steps=0), "max_steps"),
    (lambda: gaussian_ode(MEAN, COV, Q, K, V, T, rank_tol=-1.0), "rank_tol"),
    (lambda: gaussian_ode(MEAN, COV, Q, K, V, T, blowup_threshold=np.inf), "blowup_threshold"),
    (lambda: gaussian_ode(MEAN, np.diag([1.0, -1.0, 1.0]), Q, K, V, T), "cov0"),
    (lambda: cluster_count(X, threshold=1.0), "threshold"),
    (lambda: cluster_count(np.zeros((N, D))), "X"),
    (lambda: limit_rank(COV[:2]), "cov"),
    (lambda: limit_rank(COV, tol=-0.1), "tol"),
    (lambda: anisotropy(np.zeros((D, D))), "cov"),
    (lambda: anisotropy(np.diag([1.0, -0.5, 0.1])), "cov"),
    (lambda: limit_rank(np.array([[1.0, 2.0], [0.0, 1.0]])), "cov"),
    (lambda: empirical_moments(X[0]), "X"),
    (lambda: gaussian_w2(MEAN, COV, MEAN[:2], COV), "mean2"),
    (lambda: gaussian_w2(MEAN, COV, MEAN, np.eye(D + 1)), "cov2"),
    (lambda: w2_to_gaussian(X, MEAN[:2], COV), "mean"),
    (lambda: w2_to_gaussian(X, MEAN, COV, method="sinkhorn"), "method"),
    (lambda: GaussianODEResult(np.zeros((2, D)), np.zeros((2, D))), "covs"),
])
def test_bad_shapes_and_options(call, name):
    expect_error(call, name)


def test_one_sample_input():
    # one token: its own cluster, zero covariance, and a finite velocity
    x1 = X[:1]
    assert cluster_count(x1) == 1
    m, C = empirical_moments(x1)
    np.testing.assert_allclose(m, x1[0])
    np.testing.assert_allclose(C, 0.0)
    np.testing.assert_allclose(attention_velocity(x1, Q, K, V), x1)  # softmax over one token
    # W2 against a Gaussian from one particle: the empirical covariance is 0
    want = np.sqrt(np.sum(x1[0] ** 2) + np.trace(COV))
    assert w2_to_gaussian(x1, MEAN, COV) == pytest.approx(want, rel=1e-10)


def test_torch_inputs_are_checked_like_numpy():
    torch = pytest.importorskip("torch")
    Xt = torch.tensor(X)
    bad = Xt.clone()
    bad[0, 0] = float("inf")
    expect_error(lambda: attention_velocity(bad, Q, K, V), "X")
    expect_error(lambda: gaussian_w2(torch.tensor(MEAN), -torch.tensor(COV), torch.tensor(MEAN),
                                     torch.tensor(COV)), "cov1")
    expect_error(lambda: empirical_moments(Xt[0]), "X")
    np.testing.assert_allclose(attention_velocity(Xt, Q, K, V).numpy(),
                               attention_velocity(X, Q, K, V))
