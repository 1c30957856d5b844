"""
Delays and dilations against age in a simulated MEG group study
===============================================================

Auditory evoked responses get later and slower with age (Price et al., 2017). MVICAD2 estimates,
for every subject and every shared source, a delay and a dilation of the source's time course,
so these effects can be read directly from the fitted model (Heurtebise et al., 2024, Cam-CAN
analysis). No recording can be downloaded here:
:func:`~sciml_toolbox.datasets.simulate_meg_group_study` simulates the study on the Neuromag
magnetometer layout shipped with MNE (sphere head model, volume source space, forward
solution), with latencies and durations that grow with a simulated age. The last section shows
the same analysis on a local Cam-CAN copy.
"""

# %%
# Simulate the group study
# ------------------------
# Twelve subjects, 20 trials each, three sources (left and right auditory cortex, a
# fronto-central generator); the data are ``mne.Epochs`` objects.
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.datasets import simulate_meg_group_study
from sciml_toolbox.multiview import MVICAD2, plot_mixing_topomaps

study = simulate_meg_group_study(12, random_state=0)
print(study.epochs[0])

# %%
# Fit MVICAD2 on the epochs
# -------------------------
# The trials of each subject are averaged into ``n_concat=2`` halves that are concatenated; the
# dilations are centred on the stimulus (``onset``, the sample of t = 0).
est = MVICAD2(n_components=3, noise=0.1, max_dilation=1.3, max_shift=0.05, n_concat=2,
              onset=study.onset, tol=1e-4, random_state=0)
est.fit(study.epochs)
fig = plot_mixing_topomaps(est, subjects=[0, 1, 2])
fig.suptitle("mixing topographies of three subjects")

# %%
# Delays and dilations against age
# --------------------------------
# Delays are a fraction of the 701-sample epoch (1 kHz); a dilation below 1 stretches the
# subject's response (``S(rho (t - t0) + t0 - tau n)``), so ``1 / rho`` grows with age.
n_times = study.epochs[0].times.size
delay_ms = np.asarray(est.shifts_) * n_times
stretch = 1.0 / np.asarray(est.dilations_)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for j in range(3):
    axes[0].scatter(study.ages, delay_ms[:, j], s=15, label=f"component {j}")
    axes[1].scatter(study.ages, stretch[:, j], s=15)
axes[0].set(xlabel="age (years)", ylabel="estimated delay (ms)")
axes[1].set(xlabel="age (years)", ylabel="estimated stretch 1 / rho")
axes[0].legend(fontsize=8)
r = np.corrcoef(study.ages, delay_ms.mean(axis=1))[0, 1]
fig.suptitle(f"correlation of the mean delay with age: {r:.2f}")
fig.tight_layout()
plt.show()

# %%
# The same script on Cam-CAN
# --------------------------
# With a local BIDS copy of Cam-CAN (its data-use agreement forbids redistribution), only the
# loading line changes: :func:`~sciml_toolbox.datasets.load_camcan` returns the same structure
# (``epochs`` and ``ages``), with the 102 magnetometers of the passive auditory task::
#
#     from sciml_toolbox.datasets import load_camcan
#
#     study = load_camcan("/data/camcan/BIDS", max_subjects=50)
#     est = MVICAD2(n_components=5, noise=0.1, max_dilation=1.3, max_shift=0.025, n_concat=2,
#                   onset=study.onset, random_state=0).fit(study.epochs)
