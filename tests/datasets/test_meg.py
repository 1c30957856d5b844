"""The simulated MEG group study and the Cam-CAN loader (on a fake BIDS tree)."""

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sciml_toolbox.datasets import load_camcan, simulate_meg_group_study  # noqa: E402


@pytest.fixture(scope="module")
def study():
    return simulate_meg_group_study(4, n_epochs=6, random_state=0)


def test_simulated_study_follows_its_model(study):
    assert len(study.epochs) == 4
    ep = study.epochs[0]
    assert len(ep.ch_names) == 102 and ep.times.size == 701
    assert study.onset == 200 and abs(ep.times[study.onset]) < 1e-9
    # the trial average is the forward-model evoked response, up to noise / sqrt(n_epochs)
    for i, ep in enumerate(study.epochs):
        clean = study.mixings[i] @ study.subject_sources[i]
        err = np.linalg.norm(ep.get_data().mean(0) - clean) / np.linalg.norm(clean)
        assert err < 1.0 / 3.0 / np.sqrt(6) * 1.5
    # delays grow and dilations shrink with age, by construction
    assert np.corrcoef(study.ages, study.shifts.mean(1))[0, 1] > 0.9
    assert np.corrcoef(study.ages, study.dilations.mean(1))[0, 1] < -0.9


def test_load_camcan_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="root"):
        load_camcan(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="task-passive"):
        load_camcan(tmp_path)


def _write_fake_camcan(root, ages):
    """A tiny BIDS tree shaped like Cam-CAN's passive task: 6 magnetometers, tone annotations."""
    mne_bids = pytest.importorskip("mne_bids")
    info = mne.channels.read_meg_canonical_info("neuromag")
    info = mne.pick_info(info, mne.pick_types(info, meg="mag")[:6])
    info["line_freq"] = 50.0
    rng = np.random.default_rng(0)
    labels = []
    for s in range(len(ages)):
        label = f"CC1100{s:02d}"
        labels.append(label)
        raw = mne.io.RawArray(rng.normal(size=(6, 4000)) * 1e-13, info, verbose=False)
        onsets = np.arange(0.5, 3.5, 0.5)
        raw.set_annotations(mne.Annotations(onsets, 0.0, ["audio/300Hz"] * len(onsets)))
        fname = root.parent / f"tmp_{label}_raw.fif"
        raw.save(fname, overwrite=True, verbose=False)
        raw = mne.io.read_raw_fif(fname, verbose=False)
        path = mne_bids.BIDSPath(subject=label, session="passive", task="passive",
                                 datatype="meg", root=root)
        mne_bids.write_raw_bids(raw, path, overwrite=True, verbose=False)
    with open(root / "participants.tsv", "w") as fh:
        fh.write("participant_id\tage\n")
        for label, age in zip(labels, ages, strict=True):
            fh.write(f"sub-{label}\t{age}\n")
    return labels


def test_load_camcan_on_fake_bids_tree(tmp_path):
    root = tmp_path / "bids"
    root.mkdir()
    labels = _write_fake_camcan(root, [25, 70])
    study = load_camcan(root)
    assert study.subjects == labels
    np.testing.assert_array_equal(study.ages, [25.0, 70.0])
    assert len(study.epochs) == 2
    ep = study.epochs[0]
    assert len(ep) == 6 and len(ep.ch_names) == 6
    assert ep.times.size == 701 and study.onset == 200
    assert len(load_camcan(root, max_subjects=1).epochs) == 1
