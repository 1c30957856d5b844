"""
Delays and dilations against age in a simulated MEG group study
===============================================================

Auditory evoked responses get later and slower with age (Price et al., 2017). MVICAD2 estimates,
for every subject and every shared source, a delay and a dilation of the source's time course,
so these effects can be read directly from the fitted model (Heurtebise et al., 2024, Cam-CAN
analysis). This example runs the whole workflow on a simulated study, with the MNE-style
methods of the fitted estimator (``get_sources``, ``plot_components``, ``plot_sources``,
``apply``), then says how to run it on a local Cam-CAN copy.

No recording can be downloaded here:
:func:`~sciml_toolbox.datasets.simulate_meg_group_study` simulates continuous recordings on the
Neuromag magnetometers shipped with MNE (sphere head model, each subject with its own head
position in the helmet, brain noise with a 1/f spectrum), with tone triggers coded as in
Cam-CAN and latencies and durations that grow with a simulated age. The recordings then go
through :func:`~sciml_toolbox.datasets.preprocess_meg_raw`, the same preprocessing
:func:`~sciml_toolbox.datasets.load_camcan` applies to Cam-CAN (band-pass, events, epochs,
baseline).
"""

# %%
# Simulate the group study
# ------------------------
# Twelve subjects, 20 tones each, five sources (auditory cortices, fronto-central, posterior
# temporal); each subject's data are ``mne.Epochs`` from -0.2 to 0.5 s at 1 kHz, 1-40 Hz.
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.datasets import simulate_meg_group_study
from sciml_toolbox.multiview import MVICAD2
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

study = simulate_meg_group_study(12, n_sources=5, random_state=0)
print(study.epochs[0])

# %%
# Fit MVICAD2 on the epochs
# -------------------------
# The trials of each subject are averaged into ``n_concat=2`` halves that are concatenated; the
# dilations are centred on the tone onset (``onset``, the sample of t = 0).
est = MVICAD2(n_components=5, noise=0.1, max_dilation=1.3, max_shift=0.05, n_concat=2,
              onset=study.onset, tol=1e-4, random_state=0)
est.fit(study.epochs)

# %%
# Components: one topography per subject
# --------------------------------------
# As ``mne.preprocessing.ICA.plot_components``, the topographies are the columns of the
# mixing matrix, here one row per subject: the same source looks a little different in each
# subject because each head sits differently in the helmet.
fig = est.plot_components(subjects=[0, 1, 2], show=False)
fig.suptitle("mixing topographies of three subjects")

# %%
# Sources of each subject, in MNE containers
# ------------------------------------------
# ``get_sources`` returns one object of the input's kind per subject, like ``ICA.get_sources``:
# here ``mne.EpochsArray`` with one source epoch per trial, channels ``ICA000``... of type
# ``misc`` and the original times. ``plot_sources`` draws their averages; the oldest and
# youngest subjects' responses differ in latency and duration.
sources = est.get_sources(study.epochs)
print(sources[0])
order = np.argsort(study.ages)
pick = [int(order[0]), int(order[-1])]
fig = est.plot_sources([study.epochs[i] for i in pick], subjects=pick, show=False)
fig.axes[0].legend([f"age {study.ages[i]:.0f}" for i in pick], fontsize=7)

# %%
# Remove a component from the subjects' data
# ------------------------------------------
# ``apply`` returns cleaned copies (the inputs are never modified): the back-projection
# ``A_i[:, j] S_ij`` of each excluded component is subtracted from subject ``i``'s channels,
# and nothing else changes (``exclude=[]`` returns the data as they were). Here the component
# with the strongest evoked field in subject 0 is removed from every subject.
evoked_sources = sources[0].get_data().mean(axis=0)  # (n_components, n_times)
mixing = np.asarray(est.mixings_[0])
strength = [np.linalg.norm(np.outer(mixing[:, j], evoked_sources[j]))
            for j in range(est.n_components_)]
j = int(np.argmax(strength))
cleaned = est.apply(study.epochs, exclude=[j])
before, after = study.epochs[0].average(), cleaned[0].average()
fig, axes = plt.subplots(1, 2, sharey=True, figsize=(8, 3))
axes[0].plot(before.times, before.data.T * 1e15, lw=0.4, color="k")
axes[1].plot(after.times, after.data.T * 1e15, lw=0.4, color="k")
axes[0].set(title="subject 0, evoked", xlabel="time (s)", ylabel="field (fT)")
axes[1].set(title=f"without component ICA{j:03d}", xlabel="time (s)")
fig.tight_layout()

# %%
# Delays and dilations against age
# --------------------------------
# Delays are a fraction of the 701-sample epoch (1 kHz); a dilation below 1 stretches the
# subject's response (``S(rho (t - t0) + t0 - tau n)``), so ``1 / rho`` grows with age. Both
# are centred over subjects (the model identifies them up to a common warp).
n_times = study.times.size
delay_ms = np.asarray(est.shifts_) * n_times
stretch = 1.0 / np.asarray(est.dilations_)
r_delay = np.corrcoef(study.ages, delay_ms.mean(axis=1))[0, 1]
r_stretch = np.corrcoef(study.ages, stretch.mean(axis=1))[0, 1]
r_true = np.corrcoef(study.shifts.mean(axis=1), delay_ms.mean(axis=1))[0, 1]
print(f"correlation with age: mean delay {r_delay:.2f}, mean stretch {r_stretch:.2f}; "
      f"estimated against simulated mean delay: {r_true:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for j in range(est.n_components_):
    axes[0].scatter(study.ages, delay_ms[:, j], s=12, label=f"ICA{j:03d}")
    axes[1].scatter(study.ages, stretch[:, j], s=12)
axes[0].plot(study.ages, delay_ms.mean(axis=1), "k.", ms=9, label="mean")
axes[1].plot(study.ages, stretch.mean(axis=1), "k.", ms=9)
axes[0].set(xlabel="age (years)", ylabel="estimated delay (ms)",
            title=f"r(age, mean delay) = {r_delay:.2f}")
axes[1].set(xlabel="age (years)", ylabel="estimated stretch 1 / rho",
            title=f"r(age, mean stretch) = {r_stretch:.2f}")
axes[0].legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %%
# The same script on Cam-CAN
# --------------------------
# Cam-CAN's data-use agreement forbids redistribution, so the data must be a local BIDS copy
# of the passive task (``participants.tsv`` and ``sub-*/ses-passive/meg/*_meg.fif``). Only
# the loading line changes: :func:`~sciml_toolbox.datasets.load_camcan` reads the subjects
# in parallel (joblib: ``n_jobs``, or a Dask cluster through
# ``joblib.parallel_config(backend="dask")``), shows a progress bar with ``verbose=True``,
# applies the same preprocessing (tones 6/7/8 on ``STI101``, 13 ms trigger delay, 1-40 Hz,
# -0.2 to 0.5 s, baseline, the 102 magnetometers) and caches the epochs in ``cache_dir``,
# returning the same ``epochs`` and ``ages``::
#
#     from sciml_toolbox.datasets import load_camcan
#
#     study = load_camcan("path/to/camcan/BIDS", max_subjects=50, n_jobs=4,
#                         cache_dir="camcan_epochs", verbose=True)
#     est = MVICAD2(n_components=5, noise=0.1, max_dilation=1.3, max_shift=0.025,
#                   n_concat=2, onset=study.onset, random_state=0).fit(study.epochs)
