"""Bad-input probes of sciml_toolbox.datasets: every public name with bad arrays (NaN/inf, wrong
ndim, empty, wrong dtypes), mismatched shapes and out-of-range parameters; each case gives a
clear error naming the argument or a finite result, and inputs stay unchanged."""

import numpy as np
import pytest

from sciml_toolbox.datasets import (
    CAMCAN_AUDITORY_EVENTS,
    apply_warps,
    load_camcan,
    make_multiview_sources,
    preprocess_meg_raw,
    simulate_meg_group_study,
)

from ._probe_utils import Probe, expect_error, spec_tests

PROBED = {"sciml_toolbox.datasets": {
    "make_multiview_sources", "apply_warps", "simulate_meg_group_study", "load_camcan",
    "preprocess_meg_raw", "CAMCAN_AUDITORY_EVENTS"}}

_rng = np.random.default_rng(0)
S = _rng.standard_normal((2, 3, 40))
RHO = 1.0 + 0.05 * _rng.random((2, 3))
TAU = 0.02 * _rng.standard_normal((2, 3))

SPEC = {
    "apply_warps": Probe(apply_warps, S=S, dilations=RHO, shifts=TAU),
    "make_multiview_sources": Probe(
        lambda **kw: make_multiview_sources(2, 2, 50, n_concat=1, onset=10, random_state=0).X),
}


test_good_call, test_bad_array = spec_tests(SPEC)


@pytest.mark.parametrize("call, name", [
    (lambda: apply_warps(S, RHO[:1], TAU), "dilations"),
    (lambda: apply_warps(S, RHO, TAU[:, :2]), "shifts"),
    (lambda: apply_warps(S, -RHO, TAU), "dilations"),
    (lambda: apply_warps(S, RHO, TAU, n_concat=3), "n_concat"),
    (lambda: apply_warps(S, RHO, TAU, n_concat=0), "n_concat"),
    (lambda: apply_warps(S, RHO, TAU, onset=40), "onset"),
    (lambda: make_multiview_sources(0), "n_subjects"),
    (lambda: make_multiview_sources(n_sources=2.0), "n_sources"),
    (lambda: make_multiview_sources(n_times=1), "n_times"),
    (lambda: make_multiview_sources(n_sources=3, n_channels=2), "n_channels"),
    (lambda: make_multiview_sources(noise=-0.1), "noise"),
    (lambda: make_multiview_sources(noise=np.nan), "noise"),
    (lambda: make_multiview_sources(n_bins=0), "n_bins"),
    (lambda: make_multiview_sources(bump_weight=1.5), "bump_weight"),
    (lambda: make_multiview_sources(freq_level=-1.0), "freq_level"),
    (lambda: simulate_meg_group_study(1), "n_subjects"),
    (lambda: simulate_meg_group_study(2, n_sources=0), "n_sources"),
    (lambda: simulate_meg_group_study(2, n_epochs=0), "n_epochs"),
    (lambda: simulate_meg_group_study(2, age_range=(80, 20)), "age_range"),
    (lambda: simulate_meg_group_study(2, max_delay=-0.01), "max_delay"),
    (lambda: simulate_meg_group_study(2, max_stretch=0.9), "max_stretch"),
    (lambda: simulate_meg_group_study(2, snr=0.0), "snr"),
    (lambda: simulate_meg_group_study(2, ch_type="eeg"), "ch_type"),
    (lambda: simulate_meg_group_study(2, tmin=0.1), "tmin"),
    (lambda: simulate_meg_group_study(2, tmax=-0.1), "tmax"),
    (lambda: simulate_meg_group_study(2, age_range=(18,)), "age_range"),
    (lambda: simulate_meg_group_study(2, age_range=(18, "old")), "age_range"),
    (lambda: load_camcan(".", ch_type="eeg"), "ch_type"),
    (lambda: load_camcan(".", l_freq=40.0, h_freq=1.0), "l_freq"),
    (lambda: load_camcan(".", tmax=np.inf), "tmax"),
    (lambda: load_camcan(".", event_id=[1, 2]), "event_id"),
])
def test_bad_parameters(call, name):
    expect_error(call, name)


def test_load_camcan_root_that_is_not_a_directory(tmp_path):
    # nothing is downloaded: a missing root is a FileNotFoundError naming root
    expect_error(lambda: load_camcan(tmp_path / "missing"), "root", errors=(FileNotFoundError,))


def test_apply_warps_identity_on_one_subject():
    # one subject, identity warp: the signal itself
    np.testing.assert_allclose(apply_warps(S[:1], np.ones((1, 3)), np.zeros((1, 3))), S[:1])


def _tone_raw():
    """Two magnetometers and STI101 with the Cam-CAN tone codes, 1 kHz, 5 s."""
    mne = pytest.importorskip("mne")
    info = mne.create_info(["MEG0111", "MEG0121", "STI101"], 1000.0, ["mag", "mag", "stim"])
    data = np.zeros((3, 5000))
    data[:2] = _rng.standard_normal((2, 5000)) * 1e-13
    for i, code in enumerate(CAMCAN_AUDITORY_EVENTS.values()):
        data[2, 1000 * (i + 1):1000 * (i + 1) + 20] = code
    return mne.io.RawArray(data, info, verbose=False)


@pytest.mark.parametrize("kwargs, name", [
    (dict(l_freq=40.0, h_freq=1.0), "l_freq"),
    (dict(l_freq=-1.0), "l_freq"),
    (dict(h_freq=np.nan), "h_freq"),
    (dict(sfreq=50.0), "h_freq"),
    (dict(ch_type="eeg"), "ch_type"),
    (dict(ch_type="grad"), "ch_type"),
    (dict(stim_channel="STI014"), "stim_channel"),
    (dict(event_id={"beep": 42}), "event_id"),
    (dict(tmin=0.1), "tmin"),
    (dict(baseline=(-1.0, 0.0)), "baseline"),
    (dict(baseline=0.0), "baseline"),
    (dict(trigger_delay=-0.01), "trigger_delay"),
])
def test_preprocess_meg_raw_bad_parameters(kwargs, name):
    raw = _tone_raw()
    before = raw.get_data().copy()
    expect_error(lambda: preprocess_meg_raw(raw, **kwargs), name)
    np.testing.assert_array_equal(raw.get_data(), before)


def test_preprocess_meg_raw_good_call():
    epochs = preprocess_meg_raw(_tone_raw(), event_id=CAMCAN_AUDITORY_EVENTS)
    assert len(epochs) == 3 and np.all(np.isfinite(epochs.get_data()))
