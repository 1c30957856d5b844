"""Bad-input probes of sciml_toolbox.multiview: every public name, every array argument spoiled
in turn (NaN/inf, wrong ndim, empty, wrong dtypes), mismatched shapes and bad options; each
case gives a clear error naming the argument or a finite result, and inputs stay unchanged."""

import warnings

import numpy as np
import pytest

from sciml_toolbox.multiview import (
    MVICA,
    MVICAD,
    MVICAD2,
    amari_distance,
    match_sources,
    plot_mixing_topomaps,
    sources_to_mne,
    warp,
    warp_errors,
)

from ._probe_utils import Probe, check_call, expect_error, spec_tests

PROBED = {"sciml_toolbox.multiview": {
    "MVICA", "MVICAD", "MVICAD2", "amari_distance", "warp_errors", "warp", "sources_to_mne",
    "plot_mixing_topomaps", "match_sources"}}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_rng = np.random.default_rng(0)
M, P, T = 3, 2, 40
X = _rng.laplace(size=(M, P, T))
W = _rng.standard_normal((P, P))
A = _rng.standard_normal((P, P))
RHO = 1.0 + 0.05 * _rng.random((M, P))
TAU = 0.02 * _rng.standard_normal((M, P))

ESTIMATORS = {
    "MVICA": lambda: MVICA(n_components=2, max_iter=3, random_state=0),
    "MVICAD": lambda: MVICAD(n_components=2, max_iter=3, grid_size=2, random_state=0),
    "MVICAD2": lambda: MVICAD2(n_components=2, max_iter=3, grid_size=2, onset=5,
                               random_state=0),
}
_FITTED = {}


def _fitted(name):
    if name not in _FITTED:
        _FITTED[name] = ESTIMATORS[name]().fit(X)
    return _FITTED[name]


def _fit(name):
    return lambda X: ESTIMATORS[name]().fit(X).components_


def _transform(name):
    return lambda X: _fitted(name).transform(X)


def _inverse(name):
    return lambda X: _fitted(name).inverse_transform(X)


_S = _rng.standard_normal((M, 2, T))
SPEC = {
    "amari_distance": Probe(amari_distance, W=W, A=A, skip={"W": ("ndim_up",),
                                                            "A": ("ndim_up",)}),
    "warp_errors": Probe(warp_errors, dilations=RHO, shifts=TAU, true_dilations=RHO,
                         true_shifts=TAU),
    "warp": Probe(warp, S=X, rho=RHO, tau=TAU),
    "match_sources": Probe(match_sources, W=W, A=A),
}
for _n in ESTIMATORS:
    # a 2-D X is one view per row: rejected (at least 2 views of 2-D data), so ndim_down fails
    SPEC[f"{_n}.fit"] = Probe(_fit(_n), X=X)
    SPEC[f"{_n}.transform"] = Probe(_transform(_n), X=X)
    # inverse_transform takes (m, k, T) or shared sources (k, T): one axis less is legitimate
    SPEC[f"{_n}.inverse_transform"] = Probe(_inverse(_n), X=_S, skip={"X": ("ndim_down",)})


test_good_call, test_bad_array = spec_tests(SPEC)


def _list_of_views():
    return [X[0], X[1][:1], X[2]]


@pytest.mark.parametrize("call, name", [
    # mismatched shapes
    (lambda: amari_distance(W, A[:1]), "A"),
    (lambda: amari_distance(W[None], A), "A"),
    (lambda: match_sources(W, A[:1]), "A"),
    (lambda: match_sources(W[:1], A), "A"),
    (lambda: match_sources(W, _rng.standard_normal((P + 1, P))), "A"),
    (lambda: warp_errors(RHO, TAU[:2], RHO, TAU), "shifts"),
    (lambda: warp_errors(RHO, TAU, RHO[:, :1], TAU), "true_dilations"),
    (lambda: warp(X, RHO[:2], TAU), "rho"),
    (lambda: warp(X, RHO, TAU, n_concat=0), "n_concat"),
    (lambda: warp(X, RHO, TAU, onset=-1), "onset"),
    (lambda: MVICA().fit([X[0], X[1][:, :30]]), "X"),
    (lambda: _fitted("MVICA").transform(X[:2]), "X"),
    (lambda: _fitted("MVICA").transform(X[:, :1]), "X[0]"),
    (lambda: _fitted("MVICAD").inverse_transform(_S[:, :1]), "X"),
    (lambda: _fitted("MVICAD2").inverse_transform(_S[:2]), "X"),
    # one sample / one subject
    (lambda: MVICA().fit(X[:1]), "X"),
    (lambda: MVICA().fit(X[..., :1]), "X[0]"),
    (lambda: MVICAD2(grid_size=2).fit(X[..., :2]), "X[0]"),
    (lambda: amari_distance(np.zeros((P, P)), A), "W"),
    (lambda: MVICAD(n_concat=2).fit(X[..., :3]), "n_concat"),
    # out-of-range hyperparameters
    (lambda: MVICA(n_components=3).fit(X), "n_components"),
    (lambda: MVICA(n_components=0).fit(X), "n_components"),
    (lambda: MVICA(noise=-1.0).fit(X), "noise"),
    (lambda: MVICA(max_iter=-1).fit(X), "max_iter"),
    (lambda: MVICA(tol=np.nan).fit(X), "tol"),
    (lambda: MVICA(init="pca").fit(X), "init"),
    (lambda: MVICA(init=np.eye(3)).fit(X), "init"),
    (lambda: MVICAD(max_shift=0.5).fit(X), "max_shift"),
    (lambda: MVICAD(onset=T).fit(X), "onset"),
    (lambda: MVICAD(grid_size=0).fit(X), "grid_size"),
    (lambda: MVICAD(smoothing=0).fit(X), "smoothing"),
    (lambda: MVICAD(penalty=-1.0).fit(X), "penalty"),
    (lambda: MVICAD2(max_dilation=0.9).fit(X), "max_dilation"),
    (lambda: MVICAD2(n_concat=3).fit(X), "n_concat"),
])
def test_bad_shapes_and_options(call, name):
    expect_error(call, name)


def test_list_of_views_with_different_channels():
    # a list of 2-D views may have different channel counts; a different number of samples not
    est = MVICA(n_components=1, max_iter=3).fit([X[0], X[1][:1], X[2]])
    assert est.components_[1].shape == (1, 1)
    check_call(lambda: MVICA().fit([X[0], X[1][:, :-1]]), "X", True, inputs=[X])


# ------------------------------------------------------------------------------ MNE helpers
@pytest.fixture(scope="module")
def mne_fitted():
    mne = pytest.importorskip("mne")
    info = mne.create_info(["EEG001", "EEG002"], 100.0, ch_types="eeg")
    epochs = [mne.EpochsArray(_rng.standard_normal((4, P, 20)), info, verbose=False)
              for _ in range(M)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MVICA(n_components=2, max_iter=3).fit(epochs)
    return est, epochs


def test_sources_to_mne_good_and_bad(mne_fitted):
    est, epochs = mne_fitted
    assert sources_to_mne(est).get_data().shape == (1, 2, 20)
    assert len(sources_to_mne(est, epochs)) == M
    expect_error(lambda: sources_to_mne(est, np.ones((M, P + 1, 20))), "X[0]")
    expect_error(lambda: sources_to_mne(est, epochs[:2]), "X")
    expect_error(lambda: sources_to_mne(est, "epochs"), "X")
    expect_error(lambda: sources_to_mne(_fitted("MVICA")), "fitted on arrays")
    with pytest.raises(ValueError, match="not fitted|fitted"):
        sources_to_mne(MVICA())


def test_plot_mixing_topomaps_bad_arguments(mne_fitted):
    est, _ = mne_fitted
    expect_error(lambda: plot_mixing_topomaps(est, subjects=[M]), "subjects")
    expect_error(lambda: plot_mixing_topomaps(est, components=[2]), "components")
    expect_error(lambda: plot_mixing_topomaps(est, components=[0.5]), "components")
    expect_error(lambda: plot_mixing_topomaps(est, ch_type="meg"), "ch_type")
    expect_error(lambda: plot_mixing_topomaps(est, axes=np.empty((1, 1), object)), "axes")
    expect_error(lambda: plot_mixing_topomaps(_fitted("MVICA")), "fitted on arrays")


def test_torch_inputs_are_checked_like_numpy():
    torch = pytest.importorskip("torch")
    St = torch.tensor(X)
    expect_error(lambda: warp(St, RHO, TAU), "rho")  # torch S with NumPy warps
    bad = St.clone()
    bad[0, 0, 0] = float("nan")
    expect_error(lambda: warp(bad, torch.tensor(RHO), torch.tensor(TAU)), "S")
    expect_error(lambda: MVICA().fit(bad), "X")
    np.testing.assert_allclose(warp(St, torch.tensor(RHO), torch.tensor(TAU)).numpy(),
                               warp(X, RHO, TAU))


@pytest.mark.parametrize("k, p", [(3, 3), (2, 5)])
def test_match_sources_recovers_a_known_permutation(k, p):
    # W = D P pinv(A): W A = D P, a scaled permutation, so estimated source i is true source
    # perm[i]; with noise on W the matching stays the same while W A stays near D P
    rng = np.random.default_rng(k + p)
    A_true = rng.standard_normal((p, k))
    perm = rng.permutation(k)
    scale = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 2.0, k)
    W_est = scale[:, None] * np.linalg.pinv(A_true)[perm]
    W_est += 1e-3 * rng.standard_normal(W_est.shape)
    np.testing.assert_array_equal(match_sources(W_est, A_true), perm)
    # lists and torch tensors give the same answer as NumPy arrays
    np.testing.assert_array_equal(match_sources(W_est.tolist(), A_true.tolist()), perm)
    torch = pytest.importorskip("torch")
    order = match_sources(torch.from_numpy(W_est), torch.from_numpy(A_true))
    np.testing.assert_array_equal(np.asarray(order), perm)
