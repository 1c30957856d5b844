"""MNE-Python input and output for the multi-view ICA estimators (MNE is optional)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._array_api import to_numpy

__all__ = ["sources_to_mne", "plot_mixing_topomaps", "data_picks"]


def data_picks(info):
    """Indices of the MEG and EEG channels of ``info`` that are not marked bad."""
    import mne

    return mne.pick_types(info, meg=True, eeg=True, exclude="bads")


def _require_mne_fit(est):
    check_is_fitted(est, "components_")
    if getattr(est, "info_", None) is None:
        raise ValueError(
            f"{type(est).__name__} was fitted on arrays: fit it on a list of mne.Epochs or "
            "mne.Evoked objects to get MNE outputs"
        )


def sources_to_mne(est, X=None):
    """Sources of a fitted estimator as MNE objects, with the original epoch times.

    Parameters
    ----------
    est : MVICA, MVICAD or MVICAD2
        Fitted on a list of MNE Epochs or Evoked objects.
    X : list of mne.Epochs or mne.Evoked, optional
        When given, the per-subject sources of these data (``est.transform(X)``); otherwise the
        shared sources ``est.sources_``.

    Returns
    -------
    sources : mne.EpochsArray or list of mne.EpochsArray
        ``n_concat`` epochs of ``n_components`` 'misc' channels named ``ICA000``, ...; one
        object per subject when ``X`` is given.
    """
    import mne

    _require_mne_fit(est)
    k = est.n_components_
    names = [f"ICA{j:03d}" for j in range(k)]
    sfreq = est.info_[0]["sfreq"]
    info = mne.create_info(names, sfreq, ch_types="misc")
    tmin = float(est.times_[0])

    def to_epochs(S):
        S = np.asarray(to_numpy(S))
        n = S.shape[-1] // est.n_concat_
        data = np.stack([S[:, e * n:(e + 1) * n] for e in range(est.n_concat_)])
        return mne.EpochsArray(data, info, tmin=tmin, verbose=False)

    if X is None:
        return to_epochs(est.sources_)
    S = to_numpy(est.transform(X))
    return [to_epochs(S[i]) for i in range(S.shape[0])]


def plot_mixing_topomaps(est, subjects=None, components=None, *, axes=None, show=False):
    """Topographies of each subject's mixing vectors with :func:`mne.viz.plot_topomap`.

    Parameters
    ----------
    est : MVICA, MVICAD or MVICAD2
        Fitted on MNE objects (their ``info`` gives the sensor layout).
    subjects : list of int, optional
        Subjects to show (default: all, at most 8).
    components : list of int, optional
        Components to show (default: all).
    axes : array of matplotlib Axes, shape (len(subjects), len(components)), optional
    show : bool, default=False

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import mne

    _require_mne_fit(est)
    m = len(est.info_)
    subjects = list(range(min(m, 8))) if subjects is None else list(subjects)
    components = list(range(est.n_components_)) if components is None else list(components)
    if axes is None:
        fig, axes = plt.subplots(len(subjects), len(components), squeeze=False,
                                 figsize=(1.8 * len(components), 1.8 * len(subjects)))
    else:
        axes = np.atleast_2d(axes)
        fig = axes[0, 0].figure
    for r, i in enumerate(subjects):
        info = mne.pick_info(est.info_[i], data_picks(est.info_[i]))
        A = np.asarray(to_numpy(est.mixings_[i]))
        for c, j in enumerate(components):
            mne.viz.plot_topomap(A[:, j], info, axes=axes[r, c], show=False)
            if r == 0:
                axes[r, c].set_title(f"component {j}", fontsize=8)
        axes[r, 0].set_ylabel(f"subject {i}", fontsize=8)
    if show:
        plt.show()
    return fig
