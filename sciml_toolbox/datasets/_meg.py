"""MEG group studies: an offline auditory-evoked simulation and a loader for a local Cam-CAN copy.

Both return the same structure (a :class:`sklearn.utils.Bunch` with one ``mne.Epochs`` per subject
and the subjects' ages), so the same analysis script runs on the simulation and on real data.
Nothing is downloaded: the simulation uses the Neuromag sensor layout shipped with MNE
(``mne.channels.read_meg_canonical_info``), a spherical head model centred at the origin, a
volume source space and a forward solution computed on the fly.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_in_range, check_int, check_option, check_positive
from ._multiview import apply_warps

__all__ = ["simulate_meg_group_study", "load_camcan"]

#: nominal dipoles (head coordinates, metres) and orientations of the simulated responses
_DIPOLES = (
    ((-0.052, 0.0, 0.035), (0.0, 0.35, 0.94)),  # left auditory cortex
    ((0.052, 0.0, 0.035), (0.0, -0.35, 0.94)),  # right auditory cortex
    ((0.0, 0.035, 0.055), (1.0, 0.0, 0.0)),  # fronto-central generator
)


def _waveforms(times):
    """Three evoked-response shapes (nAm): M50/M100 complex, M100, M200 (times in seconds)."""
    def g(mu, sd):
        return np.exp(-0.5 * ((times - mu) / sd) ** 2)

    return np.stack([
        20 * g(0.05, 0.012) - 35 * g(0.10, 0.018),
        -30 * g(0.11, 0.022) + 8 * g(0.17, 0.03),
        25 * g(0.20, 0.04) - 10 * g(0.30, 0.05),
    ]) * 1e-9


def simulate_meg_group_study(n_subjects=12, *, n_epochs=20, ch_type="mag", age_range=(18, 88),
                             max_delay=0.03, max_stretch=0.12, warp_jitter=0.1, snr=3.0,
                             tmin=-0.2, tmax=0.5, random_state=None):
    """Simulate an auditory-evoked MEG group study whose latencies stretch with age.

    Three sources (left and right auditory cortex, a fronto-central generator) with evoked
    waveforms are placed, per subject, near nominal positions of a volume source space in a
    sphere head model (radius 9 cm, centred at the origin); sensor signals on the Neuromag
    layout come from ``mne.make_forward_solution``. Each subject ``i`` of age ``a_i`` sees source
    ``j`` through the MVICAD2 warp ``S_j(rho_ij (t - t_0) + t_0 - tau_ij n)`` (``t_0`` the
    stimulus sample) with a delay growing linearly with age and a dilation shrinking with it
    (slower responses), as reported on Cam-CAN by Price et al. (2017) and Heurtebise et al.
    (2024); ``warp_jitter`` adds subject- and source-specific variation.

    Parameters
    ----------
    n_subjects : int, default=12
    n_epochs : int, default=20
        Trials per subject (sensor noise is independent across trials).
    ch_type : {'mag', 'grad', 'all'}, default='mag'
        Sensors kept (102 magnetometers by default, as in the MVICAD2 Cam-CAN analysis).
    age_range : (float, float), default=(18, 88)
        Ages are uniform in this range.
    max_delay : float, default=0.03
        Delay of the oldest subject relative to the mean age, as a fraction of the epoch.
    max_stretch : float, default=0.12
        ``1 / rho - 1`` of the oldest subject relative to the mean age.
    warp_jitter : float, default=0.1
        Relative size of the subject- and source-specific warp noise.
    snr : float, default=3.0
        Ratio of the RMS of the evoked signal to the RMS of the sensor noise of one trial.
    tmin, tmax : float, default=-0.2, 0.5
        Epoch limits in seconds (1 kHz sampling: 701 samples, as in the Cam-CAN epochs).
    random_state : int, numpy Generator or None

    Returns
    -------
    study : sklearn.utils.Bunch
        ``epochs`` (list of mne.EpochsArray), ``ages`` (m,), ``dilations`` and ``shifts``
        (m, 3) of the forward model, ``sources`` (3, n) in nAm-scaled units, ``mixings``
        (m, n_channels, 3), ``onset`` (stimulus sample), ``positions`` (m, 3, 3) dipole
        positions in metres.
    """
    import mne

    m = check_int(n_subjects, "n_subjects", min_value=2)
    n_epochs = check_int(n_epochs, "n_epochs", min_value=1)
    check_option(ch_type, "ch_type", ("mag", "grad", "all"))
    lo_age, hi_age = (float(a) for a in age_range)
    if not lo_age < hi_age:
        raise ValueError(f"age_range must be increasing, got {age_range}")
    max_delay = check_in_range(max_delay, "max_delay", 0.0, 0.2)
    max_stretch = check_in_range(max_stretch, "max_stretch", 0.0, 0.5)
    warp_jitter = check_positive(warp_jitter, "warp_jitter", strict=False)
    snr = check_positive(snr, "snr")
    rng = np.random.default_rng(random_state)

    info = mne.channels.read_meg_canonical_info("neuromag")
    meg = {"mag": "mag", "grad": "grad", "all": True}[ch_type]
    info = mne.pick_info(info, mne.pick_types(info, meg=meg))
    sfreq = info["sfreq"]
    times = np.arange(int(round(tmin * sfreq)), int(round(tmax * sfreq)) + 1) / sfreq
    onset = int(np.argmin(np.abs(times)))
    n = times.size
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=0.09, verbose=False)
    src = mne.setup_volume_source_space(sphere=sphere, pos=8.0, mindist=5.0, verbose=False)
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, meg=True, eeg=False,
                                    verbose=False)
    gain = fwd["sol"]["data"]  # (n_channels, 3 * n_sources)
    rr = fwd["source_rr"]

    ages = rng.uniform(lo_age, hi_age, size=m)
    z = (ages - ages.mean()) / (0.5 * (hi_age - lo_age))  # in [-1, 1]
    k = len(_DIPOLES)
    stretch = 1.0 + max_stretch * (z[:, None] + warp_jitter * rng.standard_normal((m, k)))
    dilations = 1.0 / np.clip(stretch, 0.5, 2.0)
    shifts = max_delay * (z[:, None] + warp_jitter * rng.standard_normal((m, k)))
    S = _waveforms(times)
    subject_sources = apply_warps(np.broadcast_to(S, (m, k, n)), dilations, shifts, onset=onset)

    mixings, positions, epochs = [], [], []
    for i in range(m):
        cols, pos = [], []
        for loc, ori in _DIPOLES:
            target = np.asarray(loc) + rng.normal(0, 0.006, 3)
            v = int(np.argmin(np.linalg.norm(rr - target, axis=1)))
            o = np.asarray(ori) + rng.normal(0, 0.15, 3)
            o /= np.linalg.norm(o)
            cols.append(gain[:, 3 * v:3 * v + 3] @ o)
            pos.append(rr[v])
        A = np.stack(cols, axis=1)
        evoked = A @ subject_sources[i]
        sigma = np.sqrt(np.mean(evoked**2)) / snr
        trials = evoked[None] + sigma * rng.standard_normal((n_epochs,) + evoked.shape)
        epochs.append(mne.EpochsArray(trials, info, tmin=times[0], verbose=False))
        mixings.append(A)
        positions.append(np.stack(pos))
    return Bunch(epochs=epochs, ages=ages, dilations=dilations, shifts=shifts, sources=S,
                 subject_sources=subject_sources, mixings=np.stack(mixings), onset=onset,
                 positions=np.stack(positions), times=times)


def load_camcan(root, *, subjects=None, task="passive", ch_type="mag", tmin=-0.2, tmax=0.5,
                event_id=None, max_subjects=None, verbose=False):
    """Read the Cam-CAN passive auditory task from a local BIDS copy into a group study.

    Cam-CAN (Shafto et al., 2014; Taylor et al., 2017) requires a data-use agreement and cannot
    be redistributed or downloaded here: point ``root`` at your local copy. Each subject's
    recording is read with ``mne_bids.read_raw_bids``, epoched around the tone events (from the
    annotations), and the channels of ``ch_type`` are kept. Ages come from
    ``participants.tsv`` (column ``age``).

    Parameters
    ----------
    root : str or path-like
        BIDS root (holding ``participants.tsv`` and ``sub-*/``).
    subjects : list of str, optional
        Subject labels without ``sub-`` (default: every subject with a recording of ``task``).
    task : str, default='passive'
    ch_type : {'mag', 'grad', 'all'}, default='mag'
    tmin, tmax : float, default=-0.2, 0.5
        Epoch limits in seconds.
    event_id : dict, optional
        Events to epoch (default: every annotation description).
    max_subjects : int, optional
        Keep at most this many subjects (in sorted order).
    verbose : bool, default=False

    Returns
    -------
    study : sklearn.utils.Bunch
        ``epochs`` (list of mne.Epochs), ``ages`` (m,), ``subjects`` (list of str) and
        ``onset`` (the sample of time 0 in an epoch), as :func:`simulate_meg_group_study`.

    Raises
    ------
    FileNotFoundError
        When ``root`` holds no BIDS data set with recordings of ``task``.
    """
    import csv
    from pathlib import Path

    import mne

    root = Path(root)
    check_option(ch_type, "ch_type", ("mag", "grad", "all"))
    if not root.is_dir():
        raise FileNotFoundError(
            f"root={str(root)!r} is not a directory: Cam-CAN cannot be downloaded, point root at "
            "a local BIDS copy (see https://camcan-archive.mrc-cbu.cam.ac.uk)"
        )
    try:
        from mne_bids import BIDSPath, read_raw_bids
    except ImportError as exc:  # pragma: no cover - mne-bids is part of the 'meg' extra
        raise ImportError("load_camcan needs mne-bids (pip install mne-bids)") from exc
    found = sorted(p.name[4:] for p in root.glob("sub-*") if p.is_dir())
    if subjects is None:
        subjects = [s for s in found
                    if any((root / f"sub-{s}").rglob(f"*task-{task}*_meg.fif"))]
    if max_subjects is not None:
        subjects = subjects[:check_int(max_subjects, "max_subjects", min_value=1)]
    if not subjects:
        raise FileNotFoundError(
            f"no subject with a task-{task} MEG recording under root={str(root)!r}: is it a "
            "Cam-CAN BIDS copy?"
        )
    ages_by_subject = {}
    tsv = root / "participants.tsv"
    if tsv.exists():
        with open(tsv, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                label = row.get("participant_id", "").replace("sub-", "")
                try:
                    ages_by_subject[label] = float(row.get("age", "nan"))
                except ValueError:
                    ages_by_subject[label] = float("nan")
    meg = {"mag": "mag", "grad": "grad", "all": True}[ch_type]
    epochs, ages = [], []
    for sub in subjects:
        sessions = sorted(p.name[4:] for p in (root / f"sub-{sub}").glob("ses-*"))
        path = BIDSPath(subject=sub, session=sessions[0] if sessions else None, task=task,
                        datatype="meg", root=root, suffix="meg", extension=".fif")
        raw = read_raw_bids(path, verbose=verbose)
        raw.load_data(verbose=verbose)
        events, ids = mne.events_from_annotations(raw, event_id=event_id, verbose=verbose)
        if len(events) == 0:
            raise ValueError(f"no events in the recording of sub-{sub}")
        picks = mne.pick_types(raw.info, meg=meg, exclude="bads")
        ep = mne.Epochs(raw, events, ids, tmin=tmin, tmax=tmax, picks=picks,
                        baseline=(None, 0), preload=True, verbose=verbose)
        epochs.append(ep)
        ages.append(ages_by_subject.get(sub, float("nan")))
    onset = int(np.argmin(np.abs(epochs[0].times)))
    return Bunch(epochs=epochs, ages=np.asarray(ages), subjects=list(subjects), onset=onset)
