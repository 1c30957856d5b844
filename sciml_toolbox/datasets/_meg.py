"""MEG group studies: an offline auditory-evoked simulation and a loader for a local Cam-CAN copy.

Both return the same structure (a :class:`sklearn.utils.Bunch` with one ``mne.Epochs`` per subject
and the subjects' ages) and both go through the same preprocessing,
:func:`preprocess_meg_raw` (band-pass filter, tone events from the stimulus channel, epochs,
baseline, resampling, channel type selection), so the same analysis script runs on the
simulation and on real data. Nothing is downloaded: the simulation uses the Neuromag sensor
layout shipped with MNE (``mne.channels.read_meg_canonical_info``), a spherical head model
centred at the origin and forward solutions computed on the fly.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import warnings

import numpy as np
from sklearn.utils import Bunch

from .._optional import import_optional
from .._validation import check_in_range, check_int, check_option, check_positive
from ._multiview import apply_warps

__all__ = ["simulate_meg_group_study", "load_camcan", "preprocess_meg_raw",
           "CAMCAN_AUDITORY_EVENTS"]

#: trigger codes of the tones of Cam-CAN's passive task on STI101 (Taylor et al., 2017)
CAMCAN_AUDITORY_EVENTS = {"audio/300Hz": 6, "audio/600Hz": 7, "audio/1200Hz": 8}
#: trigger code of the checkerboards of the passive task (not auditory)
_CAMCAN_VISUAL_EVENT = 9
#: delay between an STI101 trigger and the tone reaching the ears in Cam-CAN (13 ms)
_CAMCAN_TRIGGER_DELAY = 0.013

#: nominal dipoles (head coordinates, metres) and orientations of the simulated responses;
#: orientations are made tangential to the sphere (radial dipoles are silent in MEG)
_DIPOLES = (
    ((-0.052, 0.0, 0.035), (0.0, 0.35, 0.94)),  # left auditory cortex
    ((0.052, 0.0, 0.035), (0.0, -0.35, 0.94)),  # right auditory cortex
    ((0.0, 0.035, 0.055), (1.0, 0.0, 0.0)),  # fronto-central generator
    ((-0.045, -0.03, 0.03), (0.3, 0.9, 0.3)),  # left posterior temporal
    ((0.045, -0.03, 0.045), (0.2, 0.3, 0.93)),  # right posterior temporal
    ((0.0, -0.05, 0.05), (0.9, 0.4, 0.0)),  # parietal
)


def _waveforms(times):
    """Six evoked-response shapes (A m), times in seconds from the tone onset."""
    def g(mu, sd):
        return np.exp(-0.5 * ((times - mu) / sd) ** 2)

    return np.stack([
        20 * g(0.05, 0.012) - 35 * g(0.10, 0.018),  # M50 / M100 complex
        -30 * g(0.11, 0.022) + 8 * g(0.17, 0.03),  # M100
        25 * g(0.20, 0.04) - 10 * g(0.30, 0.05),  # M200
        15 * g(0.08, 0.01) + 12 * g(0.14, 0.015),  # double peak
        -18 * g(0.25, 0.06),  # slow sustained response
        12 * np.sin(2 * np.pi * 10 * (times - 0.05)) * g(0.15, 0.04),  # 10 Hz burst
    ]) * 1e-9


def _check_preprocessing(ch_type, l_freq, h_freq, tmin, tmax, baseline, sfreq, trigger_delay):
    """Validated preprocessing parameters (a JSON-able dict, also the cache key)."""
    check_option(ch_type, "ch_type", ("mag", "grad", "all"))
    l_freq = check_positive(l_freq, "l_freq", allow_none=True)
    h_freq = check_positive(h_freq, "h_freq", allow_none=True)
    if l_freq is not None and h_freq is not None and not l_freq < h_freq:
        raise ValueError(f"l_freq must be below h_freq, got l_freq={l_freq}, h_freq={h_freq}")
    tmin = check_in_range(tmin, "tmin", None, 0.0)
    tmax = check_in_range(tmax, "tmax", 0.0, None, closed="neither")
    if baseline is not None:
        if not (isinstance(baseline, (tuple, list)) and len(baseline) == 2):
            raise ValueError(f"baseline must be None or a pair (start, stop), got {baseline!r}")
        baseline = tuple(None if b is None else check_in_range(b, "baseline", tmin, tmax)
                         for b in baseline)
    sfreq = check_positive(sfreq, "sfreq", allow_none=True)
    if sfreq is not None and h_freq is not None and h_freq >= sfreq / 2:
        raise ValueError(f"h_freq={h_freq} must be below the Nyquist frequency of sfreq={sfreq}")
    trigger_delay = check_in_range(trigger_delay, "trigger_delay", 0.0, 1.0)
    return dict(ch_type=ch_type, l_freq=l_freq, h_freq=h_freq, tmin=tmin, tmax=tmax,
                baseline=baseline, sfreq=sfreq, trigger_delay=trigger_delay)


def preprocess_meg_raw(raw, *, ch_type="mag", l_freq=1.0, h_freq=40.0, stim_channel="STI101",
                       event_id=None, trigger_delay=_CAMCAN_TRIGGER_DELAY, tmin=-0.2, tmax=0.5,
                       baseline=(None, 0.0), sfreq=None, verbose=False):
    """Epochs of the tone responses of one recording: the preprocessing before MVICAD2.

    In order: keep the good channels of ``ch_type``; band-pass filter them (MNE's default
    zero-phase FIR, ``raw.filter``); find the events on ``stim_channel``
    (``mne.find_events``) and keep those of ``event_id``, moved by ``trigger_delay`` so that
    time 0 is the tone onset; cut epochs from ``tmin`` to ``tmax``, subtract the mean of the
    ``baseline`` interval; resample the epochs to ``sfreq``. The input is not modified.

    Parameters
    ----------
    raw : mne.io.Raw
        A continuous recording (loaded or not).
    ch_type : {'mag', 'grad', 'all'}, default='mag'
        Sensors kept (102 magnetometers in the MVICAD2 Cam-CAN analysis). Channels marked
        bad are dropped.
    l_freq, h_freq : float or None, default=1.0, 40.0
        Pass band in Hz (``None`` for no high-pass or no low-pass). Evoked responses live
        below 40 Hz; the high-pass removes slow drifts, at the price of small distortions of
        slow components: lower it (e.g. 0.1) to study those.
    stim_channel : str or None, default='STI101'
        Channel holding the trigger codes (Cam-CAN: ``STI101``). ``None`` takes the events
        from the annotations instead (``mne.events_from_annotations``).
    event_id : dict, optional
        Events to epoch, name to code (default: the three tones of Cam-CAN's passive task,
        :data:`CAMCAN_AUDITORY_EVENTS`; with ``stim_channel=None``, every annotation).
    trigger_delay : float, default=0.013
        Seconds from a trigger to the tone onset (13 ms in Cam-CAN's event description).
    tmin, tmax : float, default=-0.2, 0.5
        Epoch limits in seconds around the tone onset.
    baseline : (float or None, float or None) or None, default=(None, 0.0)
        Interval whose mean is subtracted from each epoch (``None``: no correction).
    sfreq : float, optional
        Resample the epochs to this rate (e.g. 250 Hz for faster fits; must exceed
        ``2 * h_freq``). Default: keep the recording's rate (1 kHz in Cam-CAN).
    verbose : bool, default=False
        MNE's log messages.

    Returns
    -------
    epochs : mne.Epochs
        Preloaded, shape ``(n_events, n_channels, n_times)``.

    Raises
    ------
    ValueError
        When ``stim_channel`` is not a channel of ``raw`` or no event of ``event_id`` is found.
    """
    prm = _check_preprocessing(ch_type, l_freq, h_freq, tmin, tmax, baseline, sfreq,
                               trigger_delay)
    return _preprocess(raw, prm, stim_channel, event_id, verbose, "raw")


def _preprocess(raw, prm, stim_channel, event_id, verbose, name):
    mne = import_optional("mne", "meg", feature="preprocess_meg_raw")

    fs = raw.info["sfreq"]
    if stim_channel is not None:
        if stim_channel not in raw.ch_names:
            raise ValueError(
                f"stim_channel={stim_channel!r} is not a channel of {name} (channels: "
                f"{raw.ch_names[:3]} ...): pass the events channel of the recording, or "
                "stim_channel=None to use its annotations"
            )
        event_id = dict(CAMCAN_AUDITORY_EVENTS if event_id is None else event_id)
        events = mne.find_events(raw, stim_channel=stim_channel, shortest_event=1,
                                 verbose=verbose)
    else:
        events, found = mne.events_from_annotations(raw, event_id=event_id, verbose=verbose)
        event_id = found if event_id is None else dict(event_id)
    present = {k: v for k, v in event_id.items() if np.any(events[:, 2] == v)} \
        if len(events) else {}
    if not present:
        where = f"on {stim_channel}" if stim_channel is not None else "in the annotations"
        raise ValueError(f"{name} has no event of event_id={event_id} {where}")
    events = events[np.isin(events[:, 2], list(present.values()))].copy()
    events[:, 0] += int(round(prm["trigger_delay"] * fs))
    meg = {"mag": "mag", "grad": "grad", "all": True}[prm["ch_type"]]
    picks = mne.pick_types(raw.info, meg=meg, exclude="bads")
    if len(picks) == 0:
        raise ValueError(f"{name} has no good channel of ch_type={prm['ch_type']!r}")
    data = raw.copy().pick(picks)
    data.load_data(verbose=verbose)
    if prm["l_freq"] is not None or prm["h_freq"] is not None:
        data.filter(prm["l_freq"], prm["h_freq"], verbose=verbose)
    baseline = prm["baseline"]
    epochs = mne.Epochs(data, events, present, tmin=prm["tmin"], tmax=prm["tmax"],
                        baseline=None if baseline is None else tuple(baseline),
                        preload=True, verbose=verbose)
    if prm["sfreq"] is not None and prm["sfreq"] != fs:
        epochs.resample(prm["sfreq"], verbose=verbose)
    return epochs


def _tangential(loc, ori):
    r = np.asarray(loc, dtype=float) / np.linalg.norm(loc)
    o = np.asarray(ori, dtype=float)
    o = o - (o @ r) * r
    return o / np.linalg.norm(o)


def _pink_noise(rng, n_signals, n_times, sfreq, f_knee=1.0):
    """Unit-variance noise whose power falls as 1/f above ``f_knee`` (flat below)."""
    spec = rng.standard_normal((n_signals, n_times // 2 + 1)) \
        + 1j * rng.standard_normal((n_signals, n_times // 2 + 1))
    f = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    spec *= 1.0 / np.sqrt(np.maximum(f, f_knee))
    spec[:, 0] = 0.0
    x = np.fft.irfft(spec, n=n_times, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def simulate_meg_group_study(n_subjects=12, *, n_sources=5, n_epochs=20, ch_type="mag",
                             age_range=(18, 88), max_delay=0.03, max_stretch=0.12,
                             warp_jitter=0.1, snr=3.0, head_jitter=0.004, n_noise_sources=40,
                             l_freq=1.0, h_freq=40.0, tmin=-0.2, tmax=0.5, sfreq=None,
                             return_raw=False, random_state=None):
    """Simulate an auditory-evoked MEG group study whose latencies stretch with age.

    Every subject is a continuous 1 kHz recording, preprocessed by :func:`preprocess_meg_raw`
    exactly as :func:`load_camcan` preprocesses Cam-CAN:

    - **Sensors and head.** The Neuromag layout shipped with MNE, a sphere head model (radius
      9 cm, centred at the origin) and, per subject, its own head position in the helmet
      (``info['dev_head_t']``: a rotation of a few degrees and a translation of
      ``head_jitter`` metres per axis), so the same source gives each subject a different
      field pattern, as in a real group study.
    - **Sources.** ``n_sources`` dipoles (auditory cortices, fronto-central, posterior
      temporal, parietal; at most 6) placed per subject 6 mm around nominal positions, with
      distinct evoked waveforms. Subject ``i`` of age ``a_i`` sees source ``j`` through the
      MVICAD2 warp ``S_j(rho_ij (t - t_0) + t_0 - tau_ij n)`` (``t_0`` the tone onset,
      ``n`` the epoch length) with a delay growing linearly with age and a dilation shrinking
      with it (slower responses), as reported on Cam-CAN by Price et al. (2017) and
      Heurtebise et al. (2024); ``warp_jitter`` adds subject- and source-specific variation.
    - **Noise.** Background brain activity from ``n_noise_sources`` random dipoles with
      independent 1/f time courses (above 1 Hz), seen through the same forward model (so the
      sensor noise covariance has the spatial structure of real brain noise), plus white
      sensor noise carrying 20 % of the noise power.
    - **Events.** Tones every 0.9-1.2 s with the Cam-CAN trigger codes 6/7/8 on ``STI101``
      (the sound arrives 13 ms after the trigger, as in Cam-CAN), and a few checkerboard
      triggers (code 9) without response that the preprocessing leaves out.

    Parameters
    ----------
    n_subjects : int, default=12
    n_sources : int, default=5
        Number of evoked sources (1 to 6).
    n_epochs : int, default=20
        Tones per subject.
    ch_type : {'mag', 'grad', 'all'}, default='mag'
        Sensors simulated and kept.
    age_range : (float, float), default=(18, 88)
        Ages are uniform in this range.
    max_delay : float, default=0.03
        Delay of the oldest subject relative to the mean age, as a fraction of the epoch.
    max_stretch : float, default=0.12
        ``1 / rho - 1`` of the oldest subject relative to the mean age.
    warp_jitter : float, default=0.1
        Relative size of the subject- and source-specific warp noise.
    snr : float or None, default=3.0
        RMS of the evoked signal over the epoch divided by the RMS of the noise, both before
        filtering. ``None`` simulates noise-free recordings.
    head_jitter : float, default=0.004
        Standard deviation (metres, at most 0.01 so that the head stays inside the helmet)
        of the head translation per axis; the rotation about
        each axis has a standard deviation of ``head_jitter * 10`` radians (2.3 degrees by
        default).
    n_noise_sources : int, default=40
        Background dipoles of the brain noise.
    l_freq, h_freq, tmin, tmax, sfreq
        Preprocessing, as in :func:`preprocess_meg_raw`.
    return_raw : bool, default=False
        Also return the simulated recordings (``raws``).
    random_state : int, numpy Generator or None

    Returns
    -------
    study : sklearn.utils.Bunch
        ``epochs`` (list of mne.Epochs), ``ages`` (m,), ``dilations`` and ``shifts`` (m, k) of
        the forward model, ``sources`` (k, n_win) in A m at 1 kHz over ``source_times``,
        ``subject_sources`` (m, k, n_win) warped per subject, ``mixings`` (m, n_channels, k)
        in T / (A m), ``positions`` and ``orientations`` (m, k, 3) of the dipoles (head
        coordinates, metres), ``dev_head_t`` (m, 4, 4), ``onset``
        (the sample of time 0 in the epochs), ``times`` (the epochs' times) and, with
        ``return_raw``, ``raws``.
    """
    mne = import_optional("mne", "meg", feature="simulate_meg_group_study")

    m = check_int(n_subjects, "n_subjects", min_value=2)
    k = check_int(n_sources, "n_sources", min_value=1, max_value=len(_DIPOLES))
    n_epochs = check_int(n_epochs, "n_epochs", min_value=1)
    if not (isinstance(age_range, (tuple, list)) and len(age_range) == 2):
        raise ValueError(f"age_range must be a pair (youngest, oldest), got {age_range!r}")
    lo_age, hi_age = (check_in_range(a, "age_range", 0.0, None) for a in age_range)
    if not lo_age < hi_age:
        raise ValueError(f"age_range must be increasing, got {age_range}")
    max_delay = check_in_range(max_delay, "max_delay", 0.0, 0.2)
    max_stretch = check_in_range(max_stretch, "max_stretch", 0.0, 0.5)
    warp_jitter = check_positive(warp_jitter, "warp_jitter", strict=False)
    snr = check_positive(snr, "snr", allow_none=True)
    head_jitter = check_in_range(head_jitter, "head_jitter", 0.0, 0.01)
    n_noise = check_int(n_noise_sources, "n_noise_sources", min_value=1)
    if not isinstance(return_raw, bool):
        raise TypeError(f"return_raw must be a bool, got {return_raw!r}")
    prm = _check_preprocessing(ch_type, l_freq, h_freq, tmin, tmax, (None, 0.0), sfreq,
                               _CAMCAN_TRIGGER_DELAY)
    rng = np.random.default_rng(random_state)

    info = mne.channels.read_meg_canonical_info("neuromag")
    meg = {"mag": "mag", "grad": "grad", "all": True}[ch_type]
    info = mne.pick_info(info, mne.pick_types(info, meg=meg))
    fs = info["sfreq"]
    win = np.arange(int(round(prm["tmin"] * fs)), int(round(prm["tmax"] * fs)) + 1)
    source_times = win / fs
    onset0 = int(np.argmin(np.abs(source_times)))
    n = win.size
    sphere = mne.make_sphere_model(r0=(0.0, 0.0, 0.0), head_radius=0.09, verbose=False)

    ages = rng.uniform(lo_age, hi_age, size=m)
    z = (ages - ages.mean()) / (0.5 * (hi_age - lo_age))  # in [-1, 1]
    stretch = 1.0 + max_stretch * (z[:, None] + warp_jitter * rng.standard_normal((m, k)))
    dilations = 1.0 / np.clip(stretch, 0.5, 2.0)
    shifts = max_delay * (z[:, None] + warp_jitter * rng.standard_normal((m, k)))
    S = _waveforms(source_times)[:k]
    subject_sources = apply_warps(np.broadcast_to(S, (m, k, n)), dilations, shifts,
                                  onset=onset0)
    stim_info = mne.create_info(["STI101"], fs, ch_types="stim")
    delay = int(round(_CAMCAN_TRIGGER_DELAY * fs))

    mixings, positions, orientations, heads, epochs, raws = [], [], [], [], [], []
    for i in range(m):
        angles = 10 * head_jitter * rng.standard_normal(3)
        trans = mne.transforms.translation(*(head_jitter * rng.standard_normal(3)))
        info_i = info.copy()
        info_i["dev_head_t"] = mne.transforms.Transform(
            "meg", "head", trans @ mne.transforms.rotation(*angles))
        rr = np.array([np.asarray(loc) + rng.normal(0, 0.006, 3) for loc, _ in _DIPOLES[:k]])
        ori = np.array([_tangential(r, np.asarray(o) + rng.normal(0, 0.15, 3))
                        for r, (_, o) in zip(rr, _DIPOLES[:k], strict=True)])
        u = rng.standard_normal((n_noise, 3))
        noise_rr = u / np.linalg.norm(u, axis=1, keepdims=True) \
            * 0.07 * rng.uniform(0.3, 1.0, (n_noise, 1))
        noise_ori = np.array([_tangential(r, rng.standard_normal(3)) for r in noise_rr])
        all_rr = np.concatenate([rr, noise_rr])
        src = mne.setup_volume_source_space(
            pos=dict(rr=all_rr, nn=np.tile([0.0, 0.0, 1.0], (len(all_rr), 1))),
            sphere=sphere, mindist=0.0, verbose=False)
        fwd = mne.make_forward_solution(info_i, trans=None, src=src, bem=sphere, meg=True,
                                        eeg=False, verbose=False)
        gain = fwd["sol"]["data"]
        if gain.shape[1] != 3 * len(all_rr):  # pragma: no cover - every point is inside
            raise RuntimeError("a simulated dipole fell outside the head model")
        orients = np.concatenate([ori, noise_ori])
        G = np.einsum("pvd,vd->pv", gain.reshape(gain.shape[0], -1, 3), orients)
        A = G[:, :k]
        evoked = A @ subject_sources[i]

        # event timeline: tones (codes 6/7/8) and a few silent checkerboards (code 9)
        codes = rng.choice(list(CAMCAN_AUDITORY_EVENTS.values()), size=n_epochs)
        n_visual = max(1, n_epochs // 10)
        codes = np.insert(codes, rng.integers(0, n_epochs, n_visual), _CAMCAN_VISUAL_EVENT)
        gaps = rng.uniform(0.9, 1.2, size=codes.size)
        samples = (0.6 * fs + np.concatenate([[0.0], np.cumsum(gaps[:-1])]) * fs).astype(int)
        n_times = int(samples[-1] + 1.2 * fs)
        signal = np.zeros((len(info_i["ch_names"]), n_times))
        stim = np.zeros((1, n_times))
        for s, code in zip(samples, codes, strict=True):
            stim[0, s:s + 20] = code
            if code != _CAMCAN_VISUAL_EVENT:
                start = s + delay + win[0]
                signal[:, start:start + n] += evoked
        if snr is not None:
            brain = G[:, k:] @ _pink_noise(rng, n_noise, n_times, fs)
            brain *= np.sqrt(0.8) / np.sqrt(np.mean(brain**2))
            noise = brain + rng.standard_normal(signal.shape) * np.sqrt(0.2)
            sigma = np.sqrt(np.mean(evoked**2)) / snr
            signal += sigma / np.sqrt(np.mean(noise**2)) * noise
        raw = mne.io.RawArray(signal, info_i, verbose=False)
        raw.add_channels([mne.io.RawArray(stim, stim_info, verbose=False)],
                         force_update_info=True)
        epochs.append(_preprocess(raw, prm, "STI101", CAMCAN_AUDITORY_EVENTS, False,
                                  f"the simulated recording of subject {i}"))
        if return_raw:
            raws.append(raw)
        mixings.append(A)
        positions.append(rr)
        orientations.append(ori)
        heads.append(info_i["dev_head_t"]["trans"])
    out = Bunch(epochs=epochs, ages=ages, dilations=dilations, shifts=shifts, sources=S,
                subject_sources=subject_sources, source_times=source_times,
                mixings=np.stack(mixings), positions=np.stack(positions),
                orientations=np.stack(orientations),
                dev_head_t=np.stack(heads), onset=int(np.argmin(np.abs(epochs[0].times))),
                times=epochs[0].times)
    if return_raw:
        out.raws = raws
    return out


def _read_participants(root):
    import csv

    tsv = root / "participants.tsv"
    if not tsv.is_file():
        raise FileNotFoundError(
            f"no participants.tsv under root={str(root)!r}: the subjects' ages come from it "
            "(columns participant_id and age), is root the BIDS root of the Cam-CAN copy?"
        )
    ages = {}
    with open(tsv, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            label = (row.get("participant_id") or "").replace("sub-", "")
            try:
                ages[label] = float(row.get("age") or "nan")
            except ValueError:
                ages[label] = float("nan")
    return ages


def _load_subject(root, sub, task, prm, stim_channel, event_id, cache_dir):
    """Preprocessed epochs of one subject (module level, so joblib workers can run it)."""
    mne = import_optional("mne", "meg", feature="load_camcan")

    fname = None
    if cache_dir is not None:
        key = json.dumps(dict(prm, task=task, stim_channel=stim_channel,
                              event_id=event_id), sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        fname = os.path.join(cache_dir, f"sub-{sub}_task-{task}_{digest}-epo.fif")
        if os.path.isfile(fname):
            return mne.read_epochs(fname, preload=True, verbose=False)
    from mne_bids import BIDSPath, read_raw_bids

    subject_dir = root / f"sub-{sub}"
    # the session of the first recording of the task (Cam-CAN: ses-passive)
    fname_task = sorted(subject_dir.rglob(f"*task-{task}*_meg.fif"))[0]
    sessions = [p[4:] for p in fname_task.relative_to(subject_dir).parts if p.startswith("ses-")]
    path = BIDSPath(subject=sub, session=sessions[0] if sessions else None, task=task,
                    datatype="meg", root=root, suffix="meg", extension=".fif")
    with warnings.catch_warnings():
        # the events come from the stimulus channel: a missing events.tsv does not matter
        warnings.filterwarnings("ignore", message="Did not find any events.tsv")
        raw = read_raw_bids(path, verbose=False)
    epochs = _preprocess(raw, prm, stim_channel, event_id, False, f"the recording of sub-{sub}")
    if fname is not None:
        tmp = fname.replace("-epo.fif", f".tmp{os.getpid()}-epo.fif")
        epochs.save(tmp, overwrite=True, verbose=False)
        os.replace(tmp, fname)  # atomic: parallel readers never see a partial file
    return epochs


def load_camcan(root, *, subjects=None, max_subjects=None, task="passive", ch_type="mag",
                l_freq=1.0, h_freq=40.0, tmin=-0.2, tmax=0.5, baseline=(None, 0.0),
                sfreq=None, stim_channel="STI101", event_id=None,
                trigger_delay=_CAMCAN_TRIGGER_DELAY, n_jobs=None, cache_dir=None,
                verbose=False):
    """Read and preprocess the Cam-CAN passive auditory task from a local BIDS copy.

    Cam-CAN (Shafto et al., 2014; Taylor et al., 2017) requires a data-use agreement and cannot
    be redistributed or downloaded here: point ``root`` at your local copy (the BIDS root of
    the passive task, holding ``participants.tsv`` and ``sub-*/``). Each subject's recording
    is read with ``mne_bids.read_raw_bids`` and preprocessed by :func:`preprocess_meg_raw`
    (band-pass, tone events from ``STI101``, epochs, baseline, resampling, channel type).
    Ages come from ``participants.tsv`` (columns ``participant_id`` and ``age``).

    Subjects are processed in parallel with joblib (``n_jobs``); any joblib backend works,
    e.g. a Dask cluster with ``joblib.parallel_config(backend="dask")`` around the call.
    With ``cache_dir``, each subject's preprocessed epochs are saved there (one ``-epo.fif``
    per subject, named by a hash of the preprocessing parameters) and read back on later
    calls with the same parameters instead of being recomputed.

    Parameters
    ----------
    root : str or path-like
        BIDS root.
    subjects : list of str, optional
        Subject labels without ``sub-`` (default: every subject with a recording of
        ``task``, in sorted order).
    max_subjects : int, optional
        Keep at most this many subjects.
    task : str, default='passive'
    ch_type, l_freq, h_freq, tmin, tmax, baseline, sfreq, stim_channel, event_id, trigger_delay
        Preprocessing, see :func:`preprocess_meg_raw`.
    n_jobs : int, optional
        Number of joblib workers (``None``: 1 unless a ``joblib.parallel_config`` says
        otherwise; -1: all cores).
    cache_dir : str or path-like, optional
        Directory of the cache of preprocessed epochs (created if needed).
    verbose : bool, default=False
        Show a progress bar over subjects (tqdm).

    Returns
    -------
    study : sklearn.utils.Bunch
        ``epochs`` (list of mne.Epochs), ``ages`` (m,), ``subjects`` (list of str) and
        ``onset`` (the sample of time 0 in an epoch), as :func:`simulate_meg_group_study`.

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a directory, holds no ``participants.tsv``, no recording of
        ``task``, or no recording for one of ``subjects``.
    ValueError
        When a subject has no age in ``participants.tsv``, its recording has no
        ``stim_channel`` or no event of ``event_id``.
    """
    from pathlib import Path

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    root = Path(root)
    prm = _check_preprocessing(ch_type, l_freq, h_freq, tmin, tmax, baseline, sfreq,
                               trigger_delay)
    if not root.is_dir():
        raise FileNotFoundError(
            f"root={str(root)!r} is not a directory: Cam-CAN cannot be downloaded, point root at "
            "a local BIDS copy (see https://camcan-archive.mrc-cbu.cam.ac.uk)"
        )
    if stim_channel is not None and not isinstance(stim_channel, str):
        raise TypeError(f"stim_channel must be a channel name or None, got {stim_channel!r}")
    if event_id is not None:
        if not isinstance(event_id, dict) or not all(
                isinstance(v, numbers.Integral) for v in event_id.values()):
            raise TypeError(f"event_id must be a dict of name: int code, got {event_id!r}")
        event_id = {str(a): int(b) for a, b in event_id.items()}
    import_optional("mne_bids", "meg", feature="load_camcan", package="mne-bids")

    def has_recording(s):
        d = root / f"sub-{s}"
        return d.is_dir() and any(d.rglob(f"*task-{task}*_meg.fif"))

    if subjects is None:
        found = sorted(p.name[4:] for p in root.glob("sub-*") if p.is_dir())
        subjects = [s for s in found if has_recording(s)]
        if not subjects:
            raise FileNotFoundError(
                f"no subject with a task-{task} MEG recording under root={str(root)!r}: is it "
                "a Cam-CAN BIDS copy?"
            )
    else:
        if isinstance(subjects, str):
            raise TypeError("subjects must be a list of labels, not a single string")
        subjects = [str(s).replace("sub-", "") for s in subjects]
        missing = [s for s in subjects if not has_recording(s)]
        if missing:
            raise FileNotFoundError(
                f"subjects: no task-{task} MEG recording for sub-{missing[0]} under "
                f"root={str(root)!r}" + (f" (and {len(missing) - 1} more)"
                                        if len(missing) > 1 else "")
            )
    if max_subjects is not None:
        subjects = subjects[:check_int(max_subjects, "max_subjects", min_value=1)]
    ages_by_subject = _read_participants(root)
    no_age = [s for s in subjects if not np.isfinite(ages_by_subject.get(s, np.nan))]
    if no_age:
        raise ValueError(f"participants.tsv gives no age for sub-{no_age[0]}")
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
        os.makedirs(cache_dir, exist_ok=True)
    jobs = (delayed(_load_subject)(root, s, task, prm, stim_channel, event_id, cache_dir)
            for s in subjects)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    epochs = list(tqdm(results, total=len(subjects), desc="Cam-CAN subjects",
                       disable=not verbose))
    onset = int(np.argmin(np.abs(epochs[0].times)))
    return Bunch(epochs=epochs, ages=np.array([ages_by_subject[s] for s in subjects]),
                 subjects=list(subjects), onset=onset)
