"""The simulated MEG group study, the shared preprocessing and the Cam-CAN loader.

The loader runs on a tiny fake BIDS tree written here (Cam-CAN cannot be downloaded) and is
compared with the same steps written directly with MNE.
"""

import warnings

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sciml_toolbox.datasets import (  # noqa: E402
    CAMCAN_AUDITORY_EVENTS,
    load_camcan,
    preprocess_meg_raw,
    simulate_meg_group_study,
)


def test_noise_free_simulation_is_its_forward_model():
    """Raw -> events -> epochs reproduces A_i (warped sources) at every tone, exactly."""
    study = simulate_meg_group_study(3, n_sources=4, n_epochs=5, snr=None, l_freq=None,
                                     h_freq=None, random_state=1)
    assert study.onset == 200 and abs(study.times[study.onset]) < 1e-12
    for i, ep in enumerate(study.epochs):
        assert len(ep) == 5  # the silent checkerboard triggers (code 9) are left out
        assert set(ep.events[:, 2]) <= set(CAMCAN_AUDITORY_EVENTS.values())
        clean = study.mixings[i] @ study.subject_sources[i]
        clean = clean - clean[:, :study.onset + 1].mean(axis=1, keepdims=True)  # baseline
        np.testing.assert_allclose(ep.get_data(), np.broadcast_to(clean, (5,) + clean.shape),
                                   rtol=0, atol=1e-9 * np.abs(clean).max())
    assert study.mixings.shape == (3, 102, 4) and study.subject_sources.shape == (3, 4, 701)
    # ages drive the warps: later and slower responses with age
    assert np.all(np.diff(study.shifts.mean(1)[np.argsort(study.ages)]) > -0.01)


def test_mixing_is_the_field_of_each_subjects_dipole():
    """Each mixing column against mne.make_forward_dipole in the subject's own head position."""
    study = simulate_meg_group_study(2, n_sources=2, n_epochs=1, snr=None, l_freq=None,
                                     random_state=2)
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=0.09, verbose=False)
    info = mne.channels.read_meg_canonical_info("neuromag")
    info = mne.pick_info(info, mne.pick_types(info, meg="mag"))
    assert not np.allclose(study.dev_head_t[0], study.dev_head_t[1])
    for i in range(2):
        info["dev_head_t"] = mne.transforms.Transform("meg", "head", study.dev_head_t[i])
        for j in range(2):
            dip = mne.Dipole(np.zeros(1), study.positions[i, j][None], np.ones(1),
                             study.orientations[i, j][None], np.ones(1))
            fwd, _ = mne.make_forward_dipole(dip, sphere, info, trans=None, verbose=False)
            np.testing.assert_allclose(study.mixings[i][:, j], fwd["sol"]["data"][:, 0],
                                       rtol=1e-6)
    # the head position matters: same nominal source, different field patterns
    corr = np.corrcoef(study.mixings[0][:, 0], study.mixings[1][:, 0])[0, 1]
    assert 0.3 < corr < 0.999


def test_simulated_noise_is_pink_and_spatially_correlated():
    from scipy.signal import welch

    kw = dict(n_sources=3, n_epochs=8, l_freq=None, h_freq=None, return_raw=True)
    clean = simulate_meg_group_study(2, snr=None, random_state=3, **kw).raws[0]
    noisy = simulate_meg_group_study(2, snr=3.0, random_state=3, **kw).raws[0]
    picks = mne.pick_types(clean.info, meg=True)
    noise = noisy.get_data(picks) - clean.get_data(picks)
    f, psd = welch(noise, fs=clean.info["sfreq"], nperseg=2000)
    band = (f >= 2) & (f <= 30)
    slope = np.polyfit(np.log(f[band]), np.log(psd[:, band].mean(axis=0)), 1)[0]
    assert -1.3 < slope < -0.6  # 1/f, slightly flattened by the white sensor noise
    corr = np.corrcoef(noise)
    off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    assert off.mean() > 0.15  # white noise would give about 1 / sqrt(n_times) = 0.007
    # the signal-to-noise ratio is the requested one (before filtering, over the epochs)
    ev = simulate_meg_group_study(2, snr=None, random_state=3, **dict(kw, return_raw=False))
    signal = ev.mixings[0] @ ev.subject_sources[0]
    ratio = np.sqrt(np.mean(signal**2)) / np.sqrt(np.mean(noise**2))
    np.testing.assert_allclose(ratio, 3.0, rtol=1e-6)


def test_simulation_checks_arguments():
    with pytest.raises(ValueError, match="n_sources"):
        simulate_meg_group_study(2, n_sources=7)
    with pytest.raises(ValueError, match="age_range"):
        simulate_meg_group_study(2, age_range=(80, 20))
    with pytest.raises(ValueError, match="h_freq"):
        simulate_meg_group_study(2, sfreq=50.0)
    with pytest.raises(TypeError, match="return_raw"):
        simulate_meg_group_study(2, return_raw=1)


# ----------------------------------------------------------------------------- Cam-CAN loader
_CODES = (6, 7, 9, 8, 6, 7)  # tones and one checkerboard (9), as on Cam-CAN's STI101


def _fake_raw(seed, n_ch=6, stim=True):
    info = mne.channels.read_meg_canonical_info("neuromag")
    info = mne.pick_info(info, mne.pick_types(info, meg="mag")[:n_ch])
    rng = np.random.default_rng(seed)
    n_times = 7000
    data = rng.normal(size=(n_ch, n_times)) * 1e-13
    t = np.arange(n_times) / 1000.0
    onsets = 0.5 + np.arange(len(_CODES))
    for o in onsets:  # a 10 Hz burst 13 ms after each trigger: the tone's response
        data += 5e-13 * np.sin(2 * np.pi * 10 * (t - o)) * ((t > o + 0.013) & (t < o + 0.2))
    raw = mne.io.RawArray(data, info, verbose=False)
    if stim:
        trig = np.zeros((1, n_times))
        for o, c in zip(onsets, _CODES, strict=True):
            trig[0, int(o * 1000):int(o * 1000) + 20] = c
        raw.add_channels([mne.io.RawArray(trig, mne.create_info(["STI101"], 1000.0, "stim"),
                                          verbose=False)], force_update_info=True)
    raw.info["line_freq"] = 50.0
    return raw


def _write_tree(root, ages, stim=True, participants=True):
    mne_bids = pytest.importorskip("mne_bids")
    root.mkdir(parents=True)
    labels = []
    for s in range(len(ages)):
        label = f"CC1100{s:02d}"
        labels.append(label)
        fname = root.parent / f"tmp_{root.name}_{label}_raw.fif"
        _fake_raw(s, stim=stim).save(fname, overwrite=True, verbose=False)
        raw = mne.io.read_raw_fif(fname, verbose=False)
        path = mne_bids.BIDSPath(subject=label, session="passive", task="passive",
                                 datatype="meg", root=root)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No events found")  # events on STI101
            mne_bids.write_raw_bids(raw, path, overwrite=True, verbose=False)
    if participants:
        with open(root / "participants.tsv", "w") as fh:
            fh.write("participant_id\tage\n")
            for label, age in zip(labels, ages, strict=True):
                fh.write(f"sub-{label}\t{age}\n")
    return labels


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("camcan") / "bids"
    labels = _write_tree(root, [25, 70, 48])
    return root, labels


def _direct(seed, l_freq=1.0, h_freq=40.0, sfreq=None):
    """The preprocessing written directly with MNE on the original recording."""
    raw = _fake_raw(seed)
    events = mne.find_events(raw, "STI101", shortest_event=1, verbose=False)
    events = events[events[:, 2] != 9]
    events[:, 0] += 13
    meg = raw.copy().pick("mag").filter(l_freq, h_freq, verbose=False)
    ep = mne.Epochs(meg, events, dict(a=6, b=7, c=8), -0.2, 0.5, baseline=(None, 0),
                    preload=True, verbose=False)
    return ep.resample(sfreq, verbose=False) if sfreq else ep


def test_load_camcan_matches_direct_mne_preprocessing(tree):
    root, labels = tree
    study = load_camcan(root)
    assert study.subjects == labels
    np.testing.assert_array_equal(study.ages, [25.0, 70.0, 48.0])
    assert study.onset == 200
    for s, ep in enumerate(study.epochs):
        ref = _direct(s)
        assert len(ep) == 5 and len(ep.ch_names) == 6 and ep.times.size == 701
        np.testing.assert_array_equal(ep.events, ref.events)
        np.testing.assert_allclose(ep.get_data(), ref.get_data(), rtol=1e-6, atol=1e-20)
    # the evoked burst starts at the tone (t = 0 after the 13 ms trigger delay)
    evoked = study.epochs[0].average().data.mean(axis=0)
    times = study.epochs[0].times
    assert np.abs(evoked[(times > 0.01) & (times < 0.2)]).max() > \
        5 * np.abs(evoked[times < -0.02]).max()


def test_load_camcan_options(tree):
    root, labels = tree
    study = load_camcan(root, subjects=[labels[2]], sfreq=250.0, l_freq=0.5, h_freq=30.0)
    ref = _direct(2, 0.5, 30.0, 250.0)
    assert study.subjects == [labels[2]] and study.onset == 50
    np.testing.assert_allclose(study.epochs[0].get_data(), ref.get_data(), rtol=1e-6,
                               atol=1e-20)
    np.testing.assert_array_equal(study.ages, [48.0])
    assert len(load_camcan(root, max_subjects=2).epochs) == 2


def test_load_camcan_parallel_progress_and_cache(tree, tmp_path, monkeypatch, capsys):
    import joblib
    import mne_bids

    root, labels = tree
    serial = load_camcan(root, max_subjects=2)
    cache = tmp_path / "cache"
    with joblib.parallel_config(backend="threading"):
        par = load_camcan(root, max_subjects=2, n_jobs=2, cache_dir=cache, verbose=True)
    assert "Cam-CAN subjects" in capsys.readouterr().err
    for a, b in zip(serial.epochs, par.epochs, strict=True):
        np.testing.assert_array_equal(a.get_data(), b.get_data())
    assert len(list(cache.glob("*-epo.fif"))) == 2

    def no_reading(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mne_bids, "read_raw_bids", no_reading)
    cached = load_camcan(root, max_subjects=2, cache_dir=cache)
    for a, b in zip(serial.epochs, cached.epochs, strict=True):
        np.testing.assert_allclose(a.get_data(), b.get_data(), rtol=1e-6)
    with pytest.raises(AssertionError, match="cache"):  # other parameters: not cached
        load_camcan(root, max_subjects=1, cache_dir=cache, h_freq=30.0)


def test_load_camcan_errors(tree, tmp_path):
    root, labels = tree
    with pytest.raises(FileNotFoundError, match="root"):
        load_camcan(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="task-passive"):
        load_camcan(tmp_path)
    with pytest.raises(FileNotFoundError, match="subjects.*sub-CC999999"):
        load_camcan(root, subjects=[labels[0], "CC999999"])
    with pytest.raises(ValueError, match="stim_channel='STI014'"):
        load_camcan(root, max_subjects=1, stim_channel="STI014")
    with pytest.raises(ValueError, match="event_id"):
        load_camcan(root, max_subjects=1, event_id={"beep": 42})
    with pytest.raises(ValueError, match="l_freq"):
        load_camcan(root, l_freq=50.0, h_freq=40.0)
    with pytest.raises(ValueError, match="baseline"):
        load_camcan(root, baseline=(-1.0, 0.0))


def test_load_camcan_needs_participants_and_events_channel(tmp_path):
    root = tmp_path / "nostim"
    _write_tree(root, [30], stim=False)
    with pytest.raises(ValueError, match="stim_channel='STI101'.*sub-CC110000"):
        load_camcan(root)
    root = tmp_path / "noages"
    _write_tree(root, [30], participants=False)
    (root / "participants.tsv").unlink(missing_ok=True)  # mne-bids may write its own
    with pytest.raises(FileNotFoundError, match="participants.tsv"):
        load_camcan(root)


def test_preprocess_meg_raw_keeps_its_input_and_reads_annotations():
    raw = _fake_raw(0)
    before = raw.get_data().copy()
    ep = preprocess_meg_raw(raw)
    np.testing.assert_array_equal(raw.get_data(), before)
    np.testing.assert_allclose(ep.get_data(), _direct(0).get_data(), rtol=1e-6, atol=1e-20)
    # events from annotations instead of a stimulus channel
    events = mne.find_events(raw, "STI101", shortest_event=1, verbose=False)
    ann = mne.annotations_from_events(events, 1000.0, {6: "tone", 7: "tone", 8: "tone",
                                                       9: "checker"})
    raw2 = raw.copy().drop_channels(["STI101"]).set_annotations(ann)
    ep2 = preprocess_meg_raw(raw2, stim_channel=None, event_id={"tone": 1})
    assert len(ep2) == 5
    np.testing.assert_allclose(ep2.get_data(), ep.get_data(), rtol=1e-6, atol=1e-20)
