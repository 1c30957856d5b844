"""MNE input and output of the multi-view ICA estimators, checked against mne.preprocessing.ICA.

The reference is MNE's own ICA code: an ``mne.preprocessing.ICA`` is fitted on a subject, then
its PCA basis and unmixing are replaced by the multi-view estimator's unmixing of that subject
(an orthonormal basis whose first ``k`` rows span ``components_[i]``, completed to all
channels). MNE's ``get_sources`` and ``apply`` on that object must then agree with the
estimator's methods, which share no code with MNE's.
"""

import warnings

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sciml_toolbox.datasets import simulate_meg_group_study  # noqa: E402
from sciml_toolbox.multiview import (  # noqa: E402
    MVICA,
    MVICAD2,
    plot_mixing_topomaps,
    sources_to_mne,
)

K = 3


@pytest.fixture(scope="module")
def study():
    return simulate_meg_group_study(4, n_sources=K, n_epochs=6, random_state=0)


@pytest.fixture(scope="module")
def fitted(study):
    est = MVICAD2(n_components=K, noise=0.1, max_dilation=1.3, max_shift=0.05, n_concat=2,
                  onset=study.onset, tol=1e-3, max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a loose tol: convergence is not the point here
        est.fit(study.epochs)
    return est


def _with_stim(inst):
    """``inst`` plus a stimulus channel the estimator was not fitted on."""
    info = mne.create_info(["STI101"], inst.info["sfreq"], ch_types="stim")
    shape = inst.get_data().shape
    stim = np.zeros(shape[:-2] + (1, shape[-1]))
    stim[..., 10] = 5.0
    if isinstance(inst, mne.BaseEpochs):
        extra = mne.EpochsArray(stim, info, events=inst.events, tmin=inst.tmin, verbose=False)
    elif isinstance(inst, mne.Evoked):
        extra = mne.EvokedArray(stim, info, tmin=inst.tmin, nave=inst.nave, verbose=False)
    else:
        extra = mne.io.RawArray(stim, info, first_samp=inst.first_samp, verbose=False)
    out = inst.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.add_channels([extra], force_update_info=True)
    return out


def _raw_of(epochs, first_samp=123, meas_date=None):
    """The trials of ``epochs`` end to end as a continuous recording, with annotations."""
    data = np.concatenate(list(epochs.get_data()), axis=-1)
    raw = mne.io.RawArray(data, epochs.info, first_samp=first_samp, verbose=False)
    raw.set_meas_date(meas_date)
    raw.set_annotations(mne.Annotations([0.5, 1.5], [0.1, 0.1], ["a", "b"]))
    return raw


def _kinds(study, i):
    ep = _with_stim(study.epochs[i])
    return {"epochs": ep, "evoked": _with_stim(study.epochs[i].average()),
            "raw": _with_stim(_raw_of(study.epochs[i])),
            "raw_dated": _with_stim(_raw_of(study.epochs[i], meas_date=1.6e9))}


_PLANTED = {}


def _planted_mne_ica(est, i, epochs):
    """An ``mne.preprocessing.ICA`` whose unmixing is the estimator's for subject ``i``."""
    if (id(est), i) not in _PLANTED:
        _PLANTED[id(est), i] = (est, _plant(est, i, epochs))  # keep est alive: stable id
    return _PLANTED[id(est), i][1].copy()


def _plant(est, i, epochs):
    ica = mne.preprocessing.ICA(n_components=K, method="fastica", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica.fit(epochs, verbose=False)
    C = np.asarray(est.components_[i])
    p = C.shape[1]
    assert ica.pca_components_.shape == (p, p)
    Q, _ = np.linalg.qr(C.T, mode="complete")  # first K columns span the rows of C
    ica.pre_whitener_ = np.ones((p, 1))
    ica.pca_mean_ = np.asarray(est.means_[i])[:, 0].copy()
    ica.pca_components_ = Q.T.copy()
    ica.unmixing_matrix_ = C @ Q[:, :K]
    ica.mixing_matrix_ = np.linalg.inv(ica.unmixing_matrix_)
    return ica


@pytest.mark.parametrize("kind", ["epochs", "evoked", "raw", "raw_dated"])
def test_get_sources_matches_mne_ica(fitted, study, kind):
    i = 1
    insts = _kinds(study, i)
    inst = insts[kind]
    before = inst.get_data().copy()
    ica = _planted_mne_ica(fitted, i, study.epochs[i])
    ref = ica.get_sources(inst)
    (got,) = fitted.get_sources([inst], subjects=[i])
    np.testing.assert_array_equal(inst.get_data(), before)  # input unchanged
    base = {"epochs": mne.BaseEpochs, "evoked": mne.Evoked}.get(kind, mne.io.BaseRaw)
    assert isinstance(got, base) and isinstance(ref, base)
    assert got.get_data().shape == ref.get_data().shape
    np.testing.assert_allclose(got.get_data(), ref.get_data(), rtol=1e-10,
                               atol=1e-10 * np.abs(ref.get_data()).max())
    np.testing.assert_array_equal(got.times, ref.times)
    assert got.ch_names == ref.ch_names == ["ICA000", "ICA001", "ICA002"]
    assert got.get_channel_types() == ref.get_channel_types()
    assert [c["unit"] for c in got.info["chs"]] == [c["unit"] for c in ref.info["chs"]]
    assert got.info["sfreq"] == ref.info["sfreq"]
    if kind == "epochs":
        np.testing.assert_array_equal(got.events, ref.events)
        assert got.event_id == ref.event_id
    elif kind == "evoked":
        assert got.nave == ref.nave and got.comment == ref.comment
    else:
        assert got.first_samp == ref.first_samp
        assert got.info["meas_date"] == ref.info["meas_date"]
        assert list(got.annotations.description) == list(ref.annotations.description)
        np.testing.assert_allclose(got.annotations.onset, ref.annotations.onset)


@pytest.mark.parametrize("kind", ["epochs", "evoked", "raw"])
@pytest.mark.parametrize("exclude", [[], [1], [0, 2]])
@pytest.mark.parametrize("keep_residual", [True, False])
def test_apply_matches_mne_ica_and_numpy(fitted, study, kind, exclude, keep_residual):
    i = 2
    inst = _kinds(study, i)[kind]
    before = inst.get_data().copy()
    ica = _planted_mne_ica(fitted, i, study.epochs[i])
    p = len(ica.ch_names)
    ref = ica.apply(inst.copy(), exclude=exclude,
                    n_pca_components=p if keep_residual else K, on_baseline="ignore",
                    verbose=False)
    (got,) = fitted.apply([inst], exclude=exclude, keep_residual=keep_residual,
                          subjects=[i])
    np.testing.assert_array_equal(inst.get_data(), before)  # input unchanged
    assert type(got) is type(inst)
    scale = np.abs(before).max()
    np.testing.assert_allclose(got.get_data(), ref.get_data(), rtol=0, atol=1e-10 * scale)
    # direct computation with the fitted mixing: subtract the back-projection of `exclude`
    picks = mne.pick_types(inst.info, meg=True)
    X = before[..., picks, :]
    C = np.asarray(fitted.components_[i])
    A = np.asarray(fitted.mixings_[i])
    mu = np.asarray(fitted.means_[i])
    kept = [j for j in range(K) if j not in exclude]
    if keep_residual:
        expected = X - A[:, exclude] @ C[exclude] @ (X - mu)
    else:
        expected = mu + A[:, kept] @ C[kept] @ (X - mu)
    np.testing.assert_allclose(got.get_data()[..., picks, :], expected, rtol=0,
                               atol=1e-10 * scale)
    stim = mne.pick_types(inst.info, meg=False, stim=True)
    np.testing.assert_array_equal(got.get_data()[..., stim, :], before[..., stim, :])


def test_apply_nothing_excluded(fitted, study):
    """exclude=[]: the input itself, or its projection on the subject's principal subspace."""
    i = 0
    ep = study.epochs[i]
    X = ep.get_data()
    (same,) = fitted.apply([ep], exclude=[], subjects=[i])
    np.testing.assert_allclose(same.get_data(), X, rtol=0, atol=1e-12 * np.abs(X).max())
    (proj,) = fitted.apply([ep], keep_residual=False, subjects=[i])
    mu = np.asarray(fitted.means_[i])
    # the principal subspace of the fit, from its PCA projections (not from the mixing)
    U, _ = np.linalg.qr(np.asarray(fitted.projections_[i]).T)
    expected = mu + U @ U.T @ (X - mu)
    np.testing.assert_allclose(proj.get_data(), expected, rtol=0, atol=1e-9 * np.abs(X).max())
    # the dropped part is orthogonal to the subspace and is most of the single-trial noise
    resid = X - proj.get_data()
    assert np.abs(U.T @ resid).max() < 1e-9 * np.abs(resid).max()


def test_get_sources_of_epochs_missing_a_condition(fitted, study):
    ep = study.epochs[0]
    code = ep.events[0, 2]
    sub = ep.copy().drop(np.flatnonzero(ep.events[:, 2] == code), verbose=False)
    (src,) = fitted.get_sources([sub], subjects=[0])
    np.testing.assert_array_equal(src.events, sub.events)
    assert src.event_id == sub.event_id  # the absent condition is kept, as in the input


def test_apply_include_is_complement_of_exclude(fitted, study):
    insts = study.epochs[:2]
    a = fitted.apply(insts, include=[0], subjects=[0, 1])
    b = fitted.apply(insts, exclude=[1, 2], subjects=[0, 1])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.get_data(), y.get_data())


def test_fit_on_raw_and_get_sources(study):
    """Raw input: fit on continuous recordings (n_concat=1), sources as RawArray."""
    raws = [_raw_of(ep) for ep in study.epochs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MVICA(n_components=K, max_iter=50, random_state=0).fit(raws)
    np.testing.assert_array_equal(est.times_, raws[0].times)
    srcs = est.get_sources(raws)
    assert all(isinstance(s, mne.io.BaseRaw) for s in srcs)
    for s, r, C, mu in zip(srcs, raws, est.components_, est.means_, strict=True):
        np.testing.assert_allclose(s.get_data(), C @ (r.get_data() - mu), rtol=1e-10)
        np.testing.assert_array_equal(s.times, r.times)
    # the fit's own sources agree with transform on the same data
    np.testing.assert_allclose(np.stack([s.get_data() for s in srcs]), est.transform(raws),
                               rtol=1e-9, atol=1e-12)
    cleaned = est.apply(raws, exclude=[0])
    assert all(c is not r for c, r in zip(cleaned, raws, strict=True))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_subjects_with_different_bad_channels(study):
    """A bad channel in one subject: per-subject matrices are lists; the bad one is untouched."""
    eps = [ep.copy() for ep in study.epochs[:3]]
    bad = eps[1].ch_names[3]
    eps[1].info["bads"] = [bad]
    est = MVICA(n_components=K, max_iter=30, random_state=0).fit(eps)
    assert isinstance(est.components_, list) and est.components_[1].shape == (K, 101)
    (src,) = est.get_sources(eps[1:2], subjects=[1])
    (out,) = est.apply(eps[1:2], exclude=[1], subjects=[1])
    good = [j for j, c in enumerate(eps[1].ch_names) if c != bad]
    X = eps[1].get_data()
    C, A, mu = est.components_[1], est.mixings_[1], est.means_[1]
    np.testing.assert_allclose(src.get_data(), C @ (X[:, good] - mu), rtol=1e-10)
    np.testing.assert_allclose(out.get_data()[:, good],
                               X[:, good] - A[:, [1]] @ C[[1]] @ (X[:, good] - mu),
                               rtol=0, atol=1e-10 * np.abs(X).max())
    np.testing.assert_array_equal(out.get_data()[:, 3], X[:, 3])


def test_mne_methods_check_their_input(fitted, study):
    eps = study.epochs
    with pytest.raises(ValueError, match="insts"):
        fitted.get_sources(eps[:2])
    with pytest.raises(TypeError, match="insts"):
        fitted.get_sources(eps[0])
    with pytest.raises(TypeError, match=r"insts\[0\]"):
        fitted.apply([np.zeros((3, 3))], subjects=[0])
    with pytest.raises(ValueError, match="subjects"):
        fitted.apply(eps[:1], subjects=[7])
    with pytest.raises(ValueError, match="exclude"):
        fitted.apply(eps, exclude=[K])
    with pytest.raises(TypeError, match="exclude"):
        fitted.apply(eps, exclude=["ICA000"])
    with pytest.raises(ValueError, match="not both"):
        fitted.apply(eps, exclude=[0], include=[1])
    with pytest.raises(TypeError, match="keep_residual"):
        fitted.apply(eps, keep_residual="yes")
    dropped = eps[0].copy().drop_channels(eps[0].ch_names[:2])
    with pytest.raises(ValueError, match="lacks 2 channel"):
        fitted.get_sources([dropped], subjects=[0])
    resampled = eps[0].copy().resample(500.0)
    with pytest.raises(ValueError, match="Hz"):
        fitted.apply([resampled], subjects=[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mne_methods_need_mne_fit():
    rng = np.random.default_rng(0)
    est = MVICA(n_components=2, max_iter=5).fit(rng.laplace(size=(3, 2, 300)))
    with pytest.raises(ValueError, match="MNE"):
        sources_to_mne(est)
    with pytest.raises(ValueError, match="MNE"):
        est.get_sources([])


def test_fit_on_epochs_keeps_mne_metadata(fitted, study):
    assert len(fitted.info_) == 4
    np.testing.assert_allclose(fitted.times_, study.epochs[0].times)
    p = len(study.epochs[0].ch_names)
    assert fitted.components_.shape == (4, K, p)
    shared = sources_to_mne(fitted)
    assert isinstance(shared, mne.EpochsArray)
    assert shared.get_data().shape == (2, K, study.epochs[0].times.size)
    np.testing.assert_allclose(shared.times, study.epochs[0].times)
    per_subject = sources_to_mne(fitted, study.epochs)
    assert len(per_subject) == 4 and per_subject[0].get_data().shape[:2] == (2, K)


def test_plot_components(fitted):
    import matplotlib.pyplot as plt

    fig = fitted.plot_components(picks=[0, 2], subjects=[1], show=False)
    assert len(fig.axes) >= 2 and fig.axes[0].get_title() == "ICA000"
    assert fig.axes[1].get_title() == "ICA002"
    fig2 = plot_mixing_topomaps(fitted, subjects=[3], components=[1])
    assert fig2.axes[0].get_title() == "ICA001"
    with pytest.raises(ValueError, match="ch_type"):
        fitted.plot_components(ch_type="eeg", show=False)
    plt.close("all")


def test_plot_sources_draws_the_evoked_sources(fitted, study):
    import matplotlib.pyplot as plt

    fig = fitted.plot_sources(study.epochs[:2], subjects=[0, 1], picks=[2], show=False)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 2
    for i, line in enumerate(lines):
        C = np.asarray(fitted.components_[i])
        mu = np.asarray(fitted.means_[i])
        expected = (C @ (study.epochs[i].get_data() - mu)).mean(axis=0)[2]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-10)
        np.testing.assert_allclose(line.get_xdata(), study.epochs[i].times)
    plt.close("all")


def test_fit_on_evoked(study):
    evokeds = [ep.average() for ep in study.epochs]
    est = MVICA(n_components=K, noise=1.0, random_state=0, max_iter=100).fit(evokeds)
    assert est.components_.shape[:2] == (4, K)
    assert sources_to_mne(est).get_data().shape[:2] == (1, K)
    (src,) = est.get_sources(evokeds[:1], subjects=[0])
    assert isinstance(src, mne.Evoked) and src.nave == evokeds[0].nave


def test_bad_n_concat_with_evoked(study):
    evokeds = [ep.average() for ep in study.epochs]
    with pytest.raises(ValueError, match="n_concat"):
        MVICAD2(n_concat=2).fit(evokeds)


def test_bad_n_concat_above_n_epochs(study):
    with pytest.raises(ValueError, match="n_concat"):
        MVICAD2(n_concat=50).fit(study.epochs)


@pytest.mark.slow
def test_mvicad2_recovers_the_age_trends_of_the_simulated_study():
    """The gallery's claim, at 250 Hz: estimated mean delays and stretches follow age."""
    study = simulate_meg_group_study(12, n_sources=5, sfreq=250.0, random_state=0)
    est = MVICAD2(n_components=5, noise=0.1, max_dilation=1.3, max_shift=0.05, n_concat=2,
                  onset=study.onset, tol=1e-4, random_state=0).fit(study.epochs)
    delay = np.asarray(est.shifts_).mean(axis=1)
    stretch = (1.0 / np.asarray(est.dilations_)).mean(axis=1)
    assert np.corrcoef(study.ages, delay)[0, 1] > 0.9
    assert np.corrcoef(study.ages, stretch)[0, 1] > 0.8
    assert np.corrcoef(study.shifts.mean(axis=1), delay)[0, 1] > 0.9
