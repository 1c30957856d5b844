"""MNE-Python input and output for the multi-view ICA estimators (MNE is optional).

:class:`MNEICAMixin` gives a fitted :class:`MVICA`, :class:`MVICAD` or :class:`MVICAD2` the
methods of ``mne.preprocessing.ICA`` that make sense for a group of subjects: ``get_sources``,
``apply``, ``plot_components`` and ``plot_sources``, each taking one MNE object per subject.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._array_api import to_numpy
from .._optional import import_optional

__all__ = ["MNEICAMixin", "sources_to_mne", "plot_mixing_topomaps", "data_picks"]


def data_picks(info):
    """Indices of the MEG and EEG channels of ``info`` that are not marked bad."""
    mne = import_optional("mne", "meg", feature="data_picks")

    return mne.pick_types(info, meg=True, eeg=True, exclude="bads")


def _require_mne_fit(est):
    check_is_fitted(est, "components_")
    if getattr(est, "info_", None) is None:
        raise ValueError(
            f"{type(est).__name__} was fitted on arrays: fit it on a list of mne.Epochs, "
            "mne.Evoked or mne.io.Raw objects to get MNE outputs"
        )


def _ica_names(k):
    """Channel names of the sources, as ``mne.preprocessing.ICA`` names them."""
    return [f"ICA{j:03d}" for j in range(k)]


def _subject_matrices(est, i):
    """Unmixing ``C`` (k, p), mixing ``A`` (p, k) and channel means ``mu`` (p, 1) of subject i."""
    def item(x):
        return x[i] if isinstance(x, list) else x[i, ...]

    return (np.asarray(to_numpy(item(est.components_)), dtype=float),
            np.asarray(to_numpy(item(est.mixings_)), dtype=float),
            np.asarray(to_numpy(item(est.means_)), dtype=float))


def _check_subjects(est, insts, subjects):
    """Validate ``insts`` (one MNE object per subject) and the subject indices they belong to."""
    mne = import_optional("mne", "meg", feature="the MNE interface of the ICA estimators")

    m = len(est.info_)
    if not isinstance(insts, (list, tuple)):
        raise TypeError(f"insts must be a list of MNE Raw, Epochs or Evoked objects, got "
                        f"{type(insts).__name__}")
    kinds = (mne.io.BaseRaw, mne.BaseEpochs, mne.Evoked)
    for i, inst in enumerate(insts):
        if not isinstance(inst, kinds):
            raise TypeError(f"insts[{i}] must be an mne Raw, Epochs or Evoked object, got "
                            f"{type(inst).__name__}")
    if subjects is None:
        subjects = list(range(m))
    else:
        subjects = [int(s) for s in subjects]
        if any(s < 0 or s >= m for s in subjects):
            raise ValueError(f"subjects must be indices in [0, {m}), got {subjects}")
    if len(subjects) != len(insts):
        raise ValueError(f"insts must hold one object per subject ({len(subjects)}), got "
                         f"{len(insts)}")
    return subjects


def _fit_picks(est, i, inst, name):
    """Indices in ``inst`` of the channels subject ``i`` was fitted on (by name)."""
    info = est.info_[i]
    names = [info["ch_names"][j] for j in data_picks(info)]
    missing = [c for c in names if c not in inst.ch_names]
    if missing:
        raise ValueError(f"{name} lacks {len(missing)} channel(s) the estimator was fitted on "
                         f"for subject {i}, e.g. {missing[:3]}")
    if inst.info["sfreq"] != info["sfreq"]:
        raise ValueError(f"{name} is sampled at {inst.info['sfreq']} Hz, the estimator was "
                         f"fitted at {info['sfreq']} Hz")
    return np.array([inst.ch_names.index(c) for c in names])


def _component_list(est, values, name):
    if values is None:
        return []
    if isinstance(values, numbers.Integral):
        values = [values]
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must hold component indices (int), got {v!r}")
        if not 0 <= int(v) < est.n_components_:
            raise ValueError(f"{name} must hold indices in [0, {est.n_components_}), got {v}")
        out.append(int(v))
    return sorted(set(out))


def _get_data(inst, picks):
    """(p, T) for Raw and Evoked, (n_epochs, p, T) for Epochs (a copy)."""
    if hasattr(inst, "preload") and not inst.preload:
        inst = inst.copy().load_data()
    return np.array(inst.get_data(picks=picks))


def _sources_info(inst, k):
    mne = import_optional("mne", "meg", feature="the MNE interface of the ICA estimators")
    from mne.io.constants import FIFF

    info = mne.create_info(_ica_names(k), inst.info["sfreq"], ch_types="misc")
    for ch in info["chs"]:
        ch["unit"] = FIFF.FIFF_UNIT_NONE  # as ICA.get_sources: unit-less sources
    if inst.info["meas_date"] is not None:
        info.set_meas_date(inst.info["meas_date"])
    return info


class MNEICAMixin:
    """``mne.preprocessing.ICA``-like methods for a multi-view ICA fitted on MNE objects.

    Every method takes one MNE object per subject (``mne.io.Raw``, ``mne.Epochs`` or
    ``mne.Evoked``; subjects may mix kinds) holding at least the channels the subject was
    fitted on (found by name; other channels are left alone). Subject ``i`` has its own
    unmixing ``C_i = components_[i]`` (k, p), mixing ``A_i = mixings_[i]`` (p, k), the
    pseudo-inverse of ``C_i``, and channel means ``mu_i = means_[i]``; its sources are
    ``S_i = C_i (X_i - mu_i)``, epoch by epoch. ``A_i C_i`` is the orthogonal projection onto
    the ``k``-dimensional principal subspace of the subject kept by the fit.
    """

    def get_sources(self, insts, *, subjects=None):
        """Per-subject sources as MNE objects of the input's kind, with the input's times.

        Follows ``mne.preprocessing.ICA.get_sources``: ``k`` channels named ``ICA000``,
        ``ICA001``, ... of type ``'misc'`` (no unit); Epochs keep their events, ``event_id``
        and metadata (one source epoch per input epoch, not the ``n_concat`` averages used by
        ``fit``), Raw keeps ``first_samp``, the measurement date and the annotations, Evoked
        keeps ``nave``, ``comment`` and ``kind``.

        Parameters
        ----------
        insts : list of mne.io.Raw, mne.Epochs or mne.Evoked
            One object per subject in ``subjects``.
        subjects : list of int, optional
            The fitted subjects ``insts`` belong to (default: all, in order).

        Returns
        -------
        sources : list of mne.io.RawArray, mne.EpochsArray or mne.EvokedArray
            Data of shape ``(k, n_times)``, or ``(n_epochs, k, n_times)`` for Epochs.
        """
        mne = import_optional("mne", "meg", feature="get_sources")

        _require_mne_fit(self)
        subjects = _check_subjects(self, insts, subjects)
        k = self.n_components_
        out = []
        for pos, (i, inst) in enumerate(zip(subjects, insts, strict=True)):
            picks = _fit_picks(self, i, inst, f"insts[{pos}]")
            C, _, mu = _subject_matrices(self, i)
            X = _get_data(inst, picks)
            S = np.matmul(C, X - mu)
            info = _sources_info(inst, k)
            if isinstance(inst, mne.BaseEpochs):
                src = mne.EpochsArray(S, info, events=inst.events, tmin=inst.tmin,
                                      event_id=inst.event_id, metadata=inst.metadata,
                                      baseline=None, on_missing="ignore", verbose=False)
            elif isinstance(inst, mne.Evoked):
                src = mne.EvokedArray(S, info, tmin=inst.tmin, comment=inst.comment,
                                      nave=inst.nave, kind=inst.kind, baseline=None,
                                      verbose=False)
            else:
                src = mne.io.RawArray(S, info, first_samp=inst.first_samp, verbose=False)
                ann = inst.annotations.copy()
                if ann.orig_time is None:  # onsets then count from the recording's start
                    ann.onset = ann.onset - inst.first_time
                src.set_annotations(ann)
            out.append(src)
        return out

    def apply(self, insts, *, exclude=None, include=None, keep_residual=True, subjects=None):
        """Remove components from each subject's data; return cleaned copies.

        With ``K`` the kept components (all but ``exclude``, or only ``include``) and ``E``
        the others, subject ``i``'s channels become

        - ``keep_residual=True`` (default, as ``ICA.apply`` with ``n_pca_components=None``):
          ``X_i - A_i[:, E] C_i[E] (X_i - mu_i)``: exactly the back-projection of the removed
          components is subtracted, and ``exclude=[]`` returns the input unchanged;
        - ``keep_residual=False`` (as ``ICA.apply`` with ``n_pca_components=n_components``):
          ``mu_i + A_i[:, K] C_i[K] (X_i - mu_i)``: the part of the data outside the
          subject's ``k``-dimensional principal subspace is dropped too, so ``exclude=[]``
          returns ``mu_i + A_i C_i (X_i - mu_i)``, the input projected orthogonally onto that
          subspace.

        Unlike ``ICA.apply`` the inputs are never modified, and channels the subject was not
        fitted on (stimulus, bad or other channels) are copied unchanged. As with MNE, cleaned
        baseline-corrected data may have a non-zero baseline again: re-apply the baseline if
        needed.

        Parameters
        ----------
        insts : list of mne.io.Raw, mne.Epochs or mne.Evoked
            One object per subject in ``subjects``.
        exclude : list of int, optional
            Components to remove (indices into the shared sources, the same for every
            subject).
        include : list of int, optional
            Components to keep (all others are removed); not together with ``exclude``.
        keep_residual : bool, default=True
            Keep the part of the data the components do not span (see above).
        subjects : list of int, optional
            The fitted subjects ``insts`` belong to (default: all, in order).

        Returns
        -------
        cleaned : list of MNE objects
            Copies of ``insts`` (preloaded) with the cleaned data.
        """
        _require_mne_fit(self)
        subjects = _check_subjects(self, insts, subjects)
        exclude = _component_list(self, exclude, "exclude")
        include = _component_list(self, include, "include")
        if exclude and include:
            raise ValueError("give either exclude or include, not both")
        if not isinstance(keep_residual, (bool, np.bool_)):
            raise TypeError(f"keep_residual must be a bool, got {keep_residual!r}")
        k = self.n_components_
        removed = [j for j in range(k) if j not in include] if include else exclude
        kept = [j for j in range(k) if j not in removed]
        out = []
        for pos, (i, inst) in enumerate(zip(subjects, insts, strict=True)):
            picks = _fit_picks(self, i, inst, f"insts[{pos}]")
            C, A, mu = _subject_matrices(self, i)
            if keep_residual:
                proj = np.eye(A.shape[0]) - A[:, removed] @ C[removed]
            else:
                proj = A[:, kept] @ C[kept]
            off = mu - proj @ mu  # so that proj @ X + off == mu + proj @ (X - mu)

            def clean(x, proj=proj, off=off):
                return np.matmul(proj, x) + off

            new = inst.copy()
            if hasattr(new, "preload") and not new.preload:
                new.load_data()
            if hasattr(new, "apply_function"):
                new.apply_function(clean, picks=picks, channel_wise=False)
            else:  # pragma: no cover - Evoked without apply_function (old MNE)
                new.data[picks] = clean(new.data[picks])
            out.append(new)
        return out

    def plot_components(self, picks=None, *, subjects=None, ch_type=None, axes=None,
                        show=True):
        """Topographies of each subject's mixing vectors (``mixings_[i][:, j]``).

        One row per subject, one column per component, drawn with
        :func:`mne.viz.plot_topomap` on the subject's own sensor positions (so each row
        reflects that subject's head position). Like ``ICA.plot_components``, this shows the
        columns of the mixing matrix: the field pattern of each component.

        Parameters
        ----------
        picks : list of int, optional
            Components to show (default: all).
        subjects : list of int, optional
            Subjects to show (default: the first 8).
        ch_type : {'mag', 'grad', 'eeg'}, optional
            Sensor type to draw (default: the first of these the data hold). Gradiometer
            pairs are combined by MNE (root mean square).
        axes : array of matplotlib Axes, shape (len(subjects), len(picks)), optional
        show : bool, default=True

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return plot_mixing_topomaps(self, subjects, picks, ch_type=ch_type, axes=axes,
                                    show=show)

    def plot_sources(self, insts, *, picks=None, subjects=None, axes=None, show=True):
        """Time courses of the per-subject sources, one panel per component.

        Epochs are averaged (the evoked response of each source, as ``ICA.plot_sources``
        shows for Evoked data); Evoked and Raw data are drawn as they are. Each line is a
        subject; the x axis is the input's time in seconds.

        Parameters
        ----------
        insts : list of mne.io.Raw, mne.Epochs or mne.Evoked
            One object per subject in ``subjects``.
        picks : list of int, optional
            Components to show (default: all).
        subjects : list of int, optional
            The fitted subjects ``insts`` belong to (default: all, in order).
        axes : array of matplotlib Axes, shape (len(picks),), optional
        show : bool, default=True

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        mne = import_optional("mne", "meg", feature="plot_sources")

        _require_mne_fit(self)
        subjects = _check_subjects(self, insts, subjects)
        picks = _component_list(self, picks, "picks") or list(range(self.n_components_))
        sources = self.get_sources(insts, subjects=subjects)
        if axes is None:
            fig, axes = plt.subplots(len(picks), 1, sharex=True, squeeze=False,
                                     figsize=(6, 1.4 * len(picks) + 0.6))
            axes = axes[:, 0]
        else:
            axes = np.ravel(axes)
            if axes.size != len(picks):
                raise ValueError(f"axes must hold {len(picks)} Axes, got {axes.size}")
            fig = axes[0].figure
        for s, src in zip(subjects, sources, strict=True):
            data = src.get_data()
            if isinstance(src, mne.BaseEpochs):
                data = data.mean(axis=0)
            for ax, j in zip(axes, picks, strict=True):
                ax.plot(src.times, data[j], lw=0.8, label=f"subject {s}")
        for ax, j in zip(axes, picks, strict=True):
            ax.set_ylabel(_ica_names(self.n_components_)[j], fontsize=8)
        axes[-1].set_xlabel("time (s)")
        if show:
            plt.show()
        return fig


def sources_to_mne(est, X=None):
    """Shared (or trial-averaged per-subject) sources as ``mne.EpochsArray``.

    For per-trial sources in the input's own container, use ``est.get_sources(insts)``.

    Parameters
    ----------
    est : MVICA, MVICAD or MVICAD2
        Fitted on a list of MNE Epochs or Evoked objects.
    X : list of mne.Epochs or mne.Evoked, optional
        When given, the per-subject sources of these data (``est.transform(X)``: Epochs are
        averaged into ``n_concat`` averages as in ``fit``); otherwise the shared sources
        ``est.sources_``.

    Returns
    -------
    sources : mne.EpochsArray or list of mne.EpochsArray
        ``n_concat`` epochs of ``n_components`` 'misc' channels named ``ICA000``, ...; one
        object per subject when ``X`` is given.
    """
    mne = import_optional("mne", "meg", feature="sources_to_mne")

    _require_mne_fit(est)
    k = est.n_components_
    sfreq = est.info_[0]["sfreq"]
    info = mne.create_info(_ica_names(k), sfreq, ch_types="misc")
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


def _default_ch_type(info):
    types = set(info.get_channel_types(picks=data_picks(info)))
    for t in ("mag", "grad", "eeg"):
        if t in types:
            return t
    raise ValueError("the fitted channels hold no mag, grad or eeg sensors to draw")


def plot_mixing_topomaps(est, subjects=None, components=None, *, ch_type=None, axes=None,
                         show=False):
    """Topographies of each subject's mixing vectors with :func:`mne.viz.plot_topomap`.

    The function form of ``est.plot_components``.

    Parameters
    ----------
    est : MVICA, MVICAD or MVICAD2
        Fitted on MNE objects (their ``info`` gives the sensor layout).
    subjects : list of int, optional
        Subjects to show (default: all, at most 8).
    components : list of int, optional
        Components to show (default: all).
    ch_type : {'mag', 'grad', 'eeg'}, optional
        Sensor type to draw (default: the first of these the data hold).
    axes : array of matplotlib Axes, shape (len(subjects), len(components)), optional
    show : bool, default=False

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    mne = import_optional("mne", "meg", feature="plot_mixing_topomaps")

    _require_mne_fit(est)
    m = len(est.info_)
    subjects = list(range(min(m, 8))) if subjects is None else [int(s) for s in subjects]
    if any(s < 0 or s >= m for s in subjects):
        raise ValueError(f"subjects must be indices in [0, {m}), got {subjects}")
    components = (list(range(est.n_components_)) if components is None
                  else _component_list(est, components, "components"))
    if ch_type is not None and ch_type not in ("mag", "grad", "eeg"):
        raise ValueError(f"ch_type must be 'mag', 'grad' or 'eeg', got {ch_type!r}")
    if axes is None:
        fig, axes = plt.subplots(len(subjects), len(components), squeeze=False,
                                 figsize=(1.8 * len(components), 1.8 * len(subjects)))
    else:
        axes = np.atleast_2d(axes)
        if axes.shape != (len(subjects), len(components)):
            raise ValueError(f"axes must have shape ({len(subjects)}, {len(components)}), "
                             f"got {axes.shape}")
        fig = axes[0, 0].figure
    for r, i in enumerate(subjects):
        info = mne.pick_info(est.info_[i], data_picks(est.info_[i]))
        kind = _default_ch_type(info) if ch_type is None else ch_type
        sel = np.array([t == kind for t in info.get_channel_types()])
        if not sel.any():
            raise ValueError(f"ch_type={kind!r}: subject {i} has no such channel among "
                             "the fitted ones")
        info = mne.pick_info(info, np.flatnonzero(sel))
        _, A, _ = _subject_matrices(est, i)
        for c, j in enumerate(components):
            mne.viz.plot_topomap(A[sel, j], info, axes=axes[r, c], show=False)
            if r == 0:
                axes[r, c].set_title(_ica_names(est.n_components_)[j], fontsize=8)
        axes[r, 0].set_ylabel(f"subject {i}", fontsize=8)
    if show:
        plt.show()
    return fig
