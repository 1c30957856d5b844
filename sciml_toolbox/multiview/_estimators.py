"""Scikit-learn estimators: MVICA, MVICAD (delays) and MVICAD2 (delays and dilations).

The three models nest (Richard et al., 2020; Heurtebise et al., 2023, 2024): MVICAD2 estimates,
for every subject ``i`` and source ``j``, an unmixing matrix ``W_i`` together with a dilation
``rho_ij`` and a delay ``tau_ij``; MVICAD fixes the dilations to 1; MVICA also fixes the delays to
0. They share one implementation: the same loss, gradient and L-BFGS-B driver
(:mod:`._solver`), with the inactive warp parameters held fixed.
"""

from __future__ import annotations

import math
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from threadpoolctl import threadpool_limits

from .._array_api import float_dtype, from_numpy, get_namespace, inv, to_numpy
from .._base import HISTORY_KEYS, Estimator, Interval, StrOptions
from .._validation import (
    check_array,
    check_int,
    check_n_components,
    check_views,
)
from ._loss import joint_loss_grad
from ._mne import MNEICAMixin
from ._solver import align_sources, centre_warps, fit_warped_mvica, groupica, permica, reduce_views
from ._warp import warp

__all__ = ["MVICA", "MVICAD", "MVICAD2"]


def _is_mne(obj):
    return hasattr(obj, "info") and hasattr(obj, "get_data") and hasattr(obj, "times")


def _mne_to_array(obj, n_concat):
    """Evoked -> (n_channels, n_times); Epochs -> n_concat averages of consecutive epochs.

    Only the MEG and EEG channels not marked bad are used.
    """
    from ._mne import data_picks

    data = np.asarray(obj.get_data(picks=data_picks(obj.info)))
    if data.ndim == 2:
        if n_concat != 1:
            raise ValueError(
                f"n_concat={n_concat} needs Epochs (or lists of arrays), got an Evoked or Raw "
                "object: it holds a single time series"
            )
        return data
    if data.shape[0] < n_concat:
        raise ValueError(
            f"n_concat={n_concat} is larger than the number of epochs ({data.shape[0]}) of an "
            "Epochs object"
        )
    groups = np.array_split(np.arange(data.shape[0]), n_concat)
    return np.concatenate([data[g].mean(axis=0) for g in groups], axis=-1)


def _as_views(X, n_concat):
    """Validate ``X`` and return (list of 2-D arrays, MNE metadata or None)."""
    if isinstance(X, (list, tuple)) and len(X) and all(_is_mne(x) for x in X):
        meta = {"info": [x.info for x in X], "times": np.asarray(X[0].times)}
        X = [_mne_to_array(x, n_concat) for x in X]
        return check_views(X, "X", min_views=2), meta
    if isinstance(X, (list, tuple)) and any(_is_mne(x) for x in X):
        raise TypeError("X must not mix MNE objects and arrays")
    if isinstance(X, np.ndarray) and X.dtype == object:
        raise TypeError("X must be a numeric 3-D array or a list of 2-D arrays")
    return check_views(X, "X", min_views=2), None


class MVICA(MNEICAMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, Estimator):
    """Multi-view ICA (Richard et al., 2020): shared sources seen through per-subject mixing.

    Model: ``X_i = A_i (S + N_i)`` for subjects ``i = 1..m``, with ``S`` (k x T) independent
    non-Gaussian shared sources, ``N_i`` Gaussian noise of variance ``noise`` and ``A_i`` the
    mixing of subject ``i``. Each subject is first reduced to ``n_components`` whitened principal
    components; the unmixing matrices then minimise the negative log-likelihood (Richard et al.,
    2020, eq. 5) with a logcosh source density.

    The solver is one L-BFGS-B run over all unmixing matrices (rather than the paper's
    alternating quasi-Newton steps, which optimise the same objective). The loss and its
    analytic gradient are evaluated in the data's array namespace, on its device; SciPy's
    L-BFGS-B drives the small parameter vector (``m k^2`` numbers) on the host.

    Parameters
    ----------
    n_components : int, optional
        Number of shared sources ``k`` (default: the smallest channel count). Must not exceed
        the numerical rank of any subject's data.
    noise : float, default=1.0
        Noise variance ``sigma^2`` of the model (in units of the whitened sources). Smaller
        values weight the agreement between subjects more.
    init : {'permica', 'groupica'} or array of shape (m, k, k), default='permica'
        Initial unmixing matrices in the reduced space: single-subject ICA of each subject
        matched to subject 0 ('permica'), group ICA ('groupica'), or given matrices.
    max_iter : int, default=3000
        Maximum number of L-BFGS-B iterations (0 returns the initialisation, e.g. GroupICA).
    tol : float, default=1e-7
        Tolerance on the largest projected-gradient entry of the (rescaled) parameters.
    random_state : int, numpy Generator or None
        Seed of the initial ICA.
    verbose : bool, default=False
        Show tqdm progress bars over the iterations of the initial ICA, over subjects in the
        initial warp search (MVICAD, MVICAD2) and over the iterations of the joint fit (with the
        current loss), then print the solver's summary.

    Attributes
    ----------
    components_ : array, shape (m, k, p) or list of (k, p_i) arrays
        Full unmixing from sensor space to sources, ``unmixings_[i] @ projections_[i]``.
    mixings_ : array, shape (m, p, k) or list of (p_i, k) arrays
        Pseudo-inverses of ``components_``.
    unmixings_ : array, shape (m, k, k)
        Unmixing matrices in the reduced space.
    projections_ : array, shape (m, k, p) or list of (k, p_i) arrays
        Whitening PCA projections.
    means_ : array, shape (m, p, 1) or list of (p_i, 1) arrays
        Channel means removed before the projection.
    dilations_ : array, shape (m, k)
        Estimated dilations (forward model; all 1 for MVICA and MVICAD).
    shifts_ : array, shape (m, k)
        Estimated delays as a fraction of an epoch (all 0 for MVICA).
    sources_ : array, shape (k, T)
        Shared sources: the mean over subjects of the unwarped subject sources.
    n_iter_ : int
        L-BFGS-B iterations run.
    loss_history_ : list of float
        Loss after every iteration.
    history_ : dict of lists
        One record per L-BFGS-B iteration with the common keys of the :ref:`estimator
        conventions <conventions>`: ``iteration``, ``loss`` (as ``loss_history_``),
        ``constraint_violation`` (always 0: the problem is unconstrained) and ``time``, which
        the L-BFGS-B driver does not record per iteration: NaN for every iteration but the
        last, which holds the seconds from the start of :meth:`fit` to the end of the solver.
    info_ : list of mne.Info or None
        Measurement info of each subject when fitted on MNE objects.
    times_ : ndarray of shape (n,) or None
        Epoch times when fitted on MNE objects.

    References
    ----------
    H. Richard, L. Gresele, A. Hyvarinen, B. Thirion, A. Gramfort, P. Ablin. Modeling Shared
    Responses in Neuroimaging Studies through MultiView ICA. NeurIPS 2020.
    """

    _warps = "none"

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "noise": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions({"permica", "groupica"}), "array-like"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # (m, p, T): subjects x channels x samples
        tags.input_tags.three_d_array = True
        return tags

    def __init__(self, n_components=None, *, noise=1.0, init="permica", max_iter=3000,
                 tol=1e-7, random_state=None, verbose=False):
        self.n_components = n_components
        self.noise = noise
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # parameters of the warped models (fixed for MVICA)
    def _warp_params(self):
        return {
            "max_dilation": float(getattr(self, "max_dilation", 1.0)),
            "max_shift": float(getattr(self, "max_shift", 0.0)),
            "n_concat": getattr(self, "n_concat", 1),
            "onset": getattr(self, "onset", 0),
            "grid_size": getattr(self, "grid_size", None),
            "penalty": getattr(self, "penalty", 1.0),
            "smoothing": getattr(self, "smoothing", 1),
        }

    def _check_data_params(self, views):
        """Resolve the parameters that depend on the data (the constraint table has checked
        types and ranges): ``n_components`` against the channels and samples, ``n_concat``
        and ``onset`` against the number of samples."""
        wp = self._warp_params()
        p_min = min(v.shape[0] for v in views)
        total = views[0].shape[-1]
        k = check_n_components(self.n_components, min(p_min, total), "n_components")
        n_concat = wp["n_concat"]
        if total % n_concat:
            raise ValueError(
                f"n_concat={n_concat} must divide the number of samples of X ({total})"
            )
        n = total // n_concat
        onset = check_int(wp["onset"], "onset", min_value=0, max_value=n - 1)
        return dict(k=k, noise=float(self.noise), max_iter=self.max_iter, tol=float(self.tol),
                    n_concat=n_concat, n=n, onset=onset, max_dilation=wp["max_dilation"],
                    max_shift=wp["max_shift"], grid_size=wp["grid_size"],
                    penalty=float(wp["penalty"]), init=self.init, smoothing=wp["smoothing"])

    def fit(self, X, y=None):
        """Fit the model.

        Parameters
        ----------
        X : array of shape (m, p, T), list of (p_i, T) arrays, or list of mne.Evoked / Epochs
            / io.Raw
            Data of ``m >= 2`` subjects with the same number of samples ``T`` (channel counts
            may differ in list form). ``T`` is ``n_concat`` concatenated epochs. Epochs objects
            are averaged into ``n_concat`` averages of consecutive epochs, then concatenated;
            Evoked and Raw objects are used as they are (``n_concat=1``). Of MNE objects, the
            good MEG and EEG channels are used.
        y : None
            Ignored.

        Returns
        -------
        self : estimator
        """
        # the hot loop multiplies k x k matrices: BLAS threads only add synchronisation cost
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X)

    def _fit(self, X):
        self._validate_params()
        t0 = time.perf_counter()
        views, meta = _as_views(X, self._warp_params()["n_concat"])
        prm = self._check_data_params(views)
        xp = get_namespace(*views)
        dtype = float_dtype(xp, None, *views)
        views = [xp.astype(v, dtype) if v.dtype != dtype else v for v in views]
        m = len(views)
        k = prm["k"]
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(2**31 - 1))
        P, Z, means = reduce_views(views, k)
        warps = self._warps
        if isinstance(prm["init"], str):
            maker = permica if prm["init"] == "permica" else groupica
            W0 = maker(Z, random_state=seed, max_iter=1000, tol=1e-4,
                       verbose=bool(self.verbose))
            W0, rho0, tau0 = align_sources(
                W0, Z, warps=warps, max_dilation=prm["max_dilation"],
                max_shift=prm["max_shift"], grid_size=prm["grid_size"],
                n_concat=prm["n_concat"], onset=prm["onset"], verbose=bool(self.verbose))
        else:
            W0 = to_numpy(prm["init"])
            if W0.shape != (m, k, k) or not np.all(np.isfinite(W0)):
                raise ValueError(
                    f"init must be 'permica', 'groupica' or a finite array of shape "
                    f"({m}, {k}, {k}), got shape {W0.shape}"
                )
            W0 = from_numpy(W0, Z)
            rho0, tau0 = np.ones((m, k)), np.zeros((m, k))
        rho0, tau0 = centre_warps(rho0, tau0)  # exact gauge (forward mean warp = identity)
        times = []
        if prm["max_iter"] == 0:
            W, rho, tau, n_iter, history = (W0, from_numpy(rho0, Z), from_numpy(tau0, Z), 0, [])
        else:
            W, rho, tau, n_iter, history = fit_warped_mvica(
                Z, W0, rho0, tau0, warps=warps, noise=prm["noise"], n_concat=prm["n_concat"],
                onset=prm["onset"], max_dilation=prm["max_dilation"],
                max_shift=prm["max_shift"], penalty=prm["penalty"], max_iter=prm["max_iter"],
                tol=prm["tol"], smoothing=prm["smoothing"], verbose=self.verbose, times=times)
        # forward-model warps, then the exact gauge: composing every subject's warp with the
        # inverse of the mean warp (c, d) of a source leaves the model unchanged up to the
        # wrap-around, and makes the mean dilation 1 and the mean shift 0 exactly
        dil = 1.0 / rho
        shi = -tau / rho
        if warps != "none":
            c = xp.mean(dil, axis=0)
            d = xp.mean(shi, axis=0)
            dil = dil / c
            shi = (shi - d) / c
        S = W @ Z
        if warps != "none":
            S = warp(S, 1.0 / dil, -shi / dil, n_concat=prm["n_concat"], onset=prm["onset"])
        same = len({v.shape[0] for v in views}) == 1
        comps = [W[i, ...] @ P[i] for i in range(m)]
        mix = [_pinv(c) for c in comps]
        pack = (lambda lst: xp.stack(lst, axis=0)) if same else (lambda lst: lst)
        self.unmixings_ = W
        self.projections_ = pack(P)
        self.components_ = pack(comps)
        self.mixings_ = pack(mix)
        self.means_ = pack(means)
        self.dilations_ = dil
        self.shifts_ = shi
        self.sources_ = xp.mean(S, axis=0)
        self.n_iter_ = n_iter
        self.loss_history_ = history
        n_rec = len(history)
        self.history_ = dict(zip(HISTORY_KEYS, (
            list(range(1, n_rec + 1)), list(history), [0.0] * n_rec,
            [t - t0 for t in times]), strict=True))
        self._rho_unwarp, self._tau_unwarp = rho, tau
        self.n_components_ = k
        self.n_concat_ = prm["n_concat"]
        self.onset_ = prm["onset"]
        self.info_ = None if meta is None else meta["info"]
        self.times_ = None if meta is None else meta["times"]
        return self

    @property
    def _n_features_out(self):
        """Number of shared sources (names of :meth:`get_feature_names_out`)."""
        return self.n_components_

    def score(self, X, y=None):
        r"""Mean log-likelihood per time sample of ``X`` under the fitted model.

        The log-likelihood of the reduced data ``z_i = projections_[i] @ (X_i - means_[i])``
        in the approximation of Richard et al. (2020, eq. 5), which evaluates the source
        density at the mean of the subjects' sources :math:`\bar y`:

        .. math::

            \frac{1}{T}\sum_t \Big[-\sum_j \log\cosh \bar y_j(t)
            - \frac{1}{2\sigma^2}\sum_i \|y_i(t) - \bar y(t)\|^2\Big]
            + \sum_i \log|\det W_i| - k\log\pi - \frac{(m-1)k}{2}\log(2\pi\sigma^2)
            - \frac{k}{2}\log m,

        with :math:`y_i = W_i z_i` brought to the shared time axis by the fitted warps (the
        logcosh density :math:`1/(\pi\cosh s)` is normalised; the warp penalty and the
        ``smoothing`` of the fit are left out). Higher is better: ``GridSearchCV`` can tune
        ``noise``, ``max_shift``, ... with it. scikit-learn's splitters index the first axis of
        ``X``, the subjects, and a fitted model scores only its own subjects: give
        ``GridSearchCV`` explicit folds, e.g. ``cv=[(np.arange(m), np.arange(m))]`` to score
        on the training data, or score held-out samples (other trials) yourself. The PCA
        reduction is fixed by the fit, so scores of models with different ``n_components``
        describe different reduced data.

        Parameters
        ----------
        X : array of shape (m, p, T), list of (p_i, T) arrays, or list of MNE objects
            Same subjects and channels as in :meth:`fit`; ``T`` a multiple of ``n_concat``.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        views = self._views_for_transform(X)
        xp = get_namespace(*views)
        total = views[0].shape[-1]
        if total % self.n_concat_:
            raise ValueError(
                f"the number of samples of X ({total}) must be a multiple of n_concat="
                f"{self.n_concat_}"
            )
        Z = xp.stack([_item(self.projections_, i)
                      @ (xp.astype(v, self.unmixings_.dtype) - _item(self.means_, i))
                      for i, v in enumerate(views)], axis=0)
        m, k = self.unmixings_.shape[0], self.n_components_
        wp = self._warp_params()
        loss = joint_loss_grad(self.unmixings_, self._rho_unwarp, self._tau_unwarp, Z,
                               noise=float(self.noise), n_concat=self.n_concat_,
                               onset=self.onset_, warps=self._warps, penalty=0.0,
                               max_dilation=wp["max_dilation"], max_shift=wp["max_shift"],
                               grad=False)
        noise = float(self.noise)
        return float(-loss - k * math.log(math.pi)
                     - 0.5 * (m - 1) * k * math.log(2.0 * math.pi * noise)
                     - 0.5 * k * math.log(m))

    def _views_for_transform(self, X):
        self._check_fitted("components_")
        views, _ = _as_views(X, self.n_concat_)
        m = self.unmixings_.shape[0]
        if len(views) != m:
            raise ValueError(f"X must hold {m} subjects (as in fit), got {len(views)}")
        for i, v in enumerate(views):
            p = _item(self.components_, i).shape[-1]
            if v.shape[0] != p:
                raise ValueError(f"X[{i}] must have {p} channels (as in fit), got {v.shape[0]}")
        return views

    def transform(self, X):
        """Per-subject sources ``components_[i] @ (X_i - means_[i])`` in the subject's time.

        Parameters
        ----------
        X : array of shape (m, p, T), list of (p_i, T) arrays, or list of MNE objects
            Same subjects and channels as in :meth:`fit` (any number of samples).

        Returns
        -------
        S : array, shape (m, k, T)
        """
        views = self._views_for_transform(X)
        xp = get_namespace(*views)
        return xp.stack(
            [_item(self.components_, i)
             @ (xp.astype(v, self.components_.dtype if not isinstance(self.components_, list)
                          else self.components_[i].dtype) - _item(self.means_, i))
             for i, v in enumerate(views)], axis=0)

    def inverse_transform(self, X):
        """Back to sensor space: ``X_i = mixings_[i] @ S_i + means_[i]``.

        Parameters
        ----------
        X : array, shape (m, k, T) or (k, T)
            Per-subject sources ``S_i`` (as returned by :meth:`transform`), or shared sources
            (as ``sources_``), which are then warped into each subject's time first.

        Returns
        -------
        X_sensors : array of shape (m, p, T), or list of (p_i, T) arrays when channel counts
            differ
        """
        self._check_fitted("components_")
        S = check_array(X, "X", ndim=(2, 3))
        xp = get_namespace(S)
        m = self.unmixings_.shape[0]
        if S.ndim == 2 and S.shape[0] != self.n_components_:
            raise ValueError(f"X must have shape ({m}, {self.n_components_}, T) or "
                             f"({self.n_components_}, T), got {tuple(S.shape)}")
        if S.ndim == 2:
            rep = xp.stack([S] * m, axis=0)
            S = warp(rep, self.dilations_, self.shifts_, n_concat=self.n_concat_,
                     onset=self.onset_) if self._warps != "none" else rep
        if S.shape[0] != m or S.shape[1] != self.n_components_:
            raise ValueError(
                f"X must have shape ({m}, {self.n_components_}, T) or "
                f"({self.n_components_}, T), got {tuple(S.shape)}"
            )
        out = [_item(self.mixings_, i) @ S[i, ...] + _item(self.means_, i) for i in range(m)]
        if isinstance(self.mixings_, list):
            return out
        return xp.stack(out, axis=0)


class MVICAD(MVICA):
    """Multi-view ICA with a delay per subject and source (Heurtebise et al., 2023).

    Model: ``X_i = A_i (T_i S + N_i)`` with ``(T_i S)_j(t) = S_j(t - tau_ij n)``, a circular delay
    within each epoch of ``n`` samples. Delays are initialised by a grid search against subject
    0 and then estimated jointly with the unmixing matrices as continuous parameters (linear
    interpolation), by the same solver as :class:`MVICAD2` with the dilations fixed to 1.

    Parameters
    ----------
    n_components : int, optional
        See :class:`MVICA`.
    noise : float, default=1.0
        See :class:`MVICA`.
    max_shift : float, default=0.05
        Largest delay searched, as a fraction of an epoch (>= 0). The optimiser's bounds are
        twice as wide so that centring never hits them.
    n_concat : int, default=1
        Number of concatenated epochs in ``X`` (same delays in every epoch).
    onset : int, default=0
        Sample index of the stimulus within an epoch (centre of dilations; kept for symmetry
        with :class:`MVICAD2`).
    init : {'permica', 'groupica'} or array, default='permica'
    grid_size : int or None, default=None
        Unused by MVICAD, whose initial delay search scores every integer delay at once (FFT
        cross-correlation with subject 0); see :class:`MVICAD2`.
    penalty : float, default=1.0
        Weight of the penalty keeping the mean delay of each source near 0 during the fit
        (the returned delays are then centred exactly).
    smoothing : int, default=1
        Length of a moving average (circular within each epoch) applied to the unwarped
        sources in the loss, like the authors' smoothing filter. 2-3 helps with many sources,
        at about twice the cost per iteration (measurements: the user guide,
        doc/guide/multiview.rst, and ``benchmarks/multiview.md``).
    max_iter, tol, random_state, verbose
        See :class:`MVICA`.

    Attributes
    ----------
    shifts_ : array, shape (m, k)
        The delays (fraction of an epoch; positive means later in that subject), centred so
        that their mean over subjects is 0. The other fitted attributes are those of
        :class:`MVICA`.

    References
    ----------
    A. Heurtebise, P. Ablin, A. Gramfort. Multiview Independent Component Analysis with Delays.
    IEEE MLSP 2023.
    """

    _warps = "shift"

    _parameter_constraints: dict = {
        **MVICA._parameter_constraints,
        "max_shift": [Interval(Real, 0, 0.25, closed="both")],
        "n_concat": [Interval(Integral, 1, None, closed="left")],
        "onset": [Interval(Integral, 0, None, closed="left")],
        "grid_size": [Interval(Integral, 1, None, closed="left"), None],
        "penalty": [Interval(Real, 0, None, closed="left")],
        "smoothing": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components=None, *, noise=1.0, max_shift=0.05, n_concat=1, onset=0,
                 init="permica", grid_size=None, penalty=1.0, smoothing=1, max_iter=3000, tol=1e-7,
                 random_state=None, verbose=False):
        self.n_components = n_components
        self.noise = noise
        self.max_shift = max_shift
        self.n_concat = n_concat
        self.onset = onset
        self.init = init
        self.grid_size = grid_size
        self.penalty = penalty
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose


class MVICAD2(MVICAD):
    """Multi-view ICA with a dilation and a delay per subject and source (MVICAD2).

    Model (Heurtebise et al., 2024): ``X_i = A_i (T_i S + N_i)`` with

    ``(T_i S)_j(t) = S_j(rho_ij (t - onset) + onset - tau_ij n)``

    applied epoch by epoch (linear interpolation, wrap-around within the epoch). Warps are
    identifiable only up to a warp common to all subjects: during the fit a penalty (weight
    ``penalty``) keeps the mean warp of each source near the identity, as in the authors' code;
    after the fit every subject's warp is composed with the inverse of the mean warp, so that
    ``dilations_.mean(axis=0) == 1`` and ``shifts_.mean(axis=0) == 0`` exactly.

    Fitting: per-subject whitening PCA; single-subject ICA of each subject; matching of the
    sources to subject 0 by a coarse-to-fine search over (dilation, delay) relative to subject 0
    (envelopes over a geometric dilation grid, then the signals around the best envelope peaks;
    every integer delay is scored at once by FFT cross-correlation, see
    :func:`~sciml_toolbox.multiview._solver.align_sources`), an exact change of gauge to a mean
    warp of identity; then one L-BFGS-B run over every ``W_i``, dilation and delay with box
    bounds. The loss gradient is analytic (the warp is linear interpolation: its derivative in
    ``rho`` and ``tau`` is the local slope of the source times ``t - onset`` and ``-n``); loss and
    gradient run in the data's namespace and on its device, while SciPy's L-BFGS-B drives the
    small parameter vector (``m k (k + 2)`` numbers) on the host.

    Parameters
    ----------
    n_components : int, optional
        See :class:`MVICA`.
    noise : float, default=1.0
        See :class:`MVICA`.
    max_dilation : float, default=1.15
        Dilations searched in ``[1 / max_dilation, max_dilation]`` (>= 1). The optimiser's
        bounds are ``[max_dilation ** -2, max_dilation ** 2]``.
    max_shift : float, default=0.05
        Delays searched in ``[-max_shift, max_shift]`` (fraction of an epoch, >= 0).
    n_concat : int, default=1
        Number of concatenated epochs in ``X``.
    onset : int, default=0
        Sample index (within an epoch) the dilations are centred on, e.g. the stimulus.
    init : {'permica', 'groupica'} or array, default='permica'
    grid_size : int or None, default=None
        Number of dilations of the coarse (envelope) stage of the initial warp search, over
        ``[max_dilation ** -2, max_dilation ** 2]`` (the warp of a subject relative to subject
        0, both warped). None picks the step that moves the far end of the epoch by half an
        envelope width (about 50 dilations for ``max_dilation=1.25`` on 1000-sample epochs);
        raise it if sources oscillate faster than ``n / 40`` samples per cycle.
    penalty : float, default=1.0
        Weight of the mean-warp penalty.
    smoothing : int, default=1
        Length of a moving average (circular within each epoch) applied to the unwarped
        sources in the loss, like the authors' smoothing filter. 2-3 helps with many sources,
        at about twice the cost per iteration (measurements: the user guide,
        doc/guide/multiview.rst, and ``benchmarks/multiview.md``).
    max_iter, tol, random_state, verbose
        See :class:`MVICA`.

    Attributes
    ----------
    dilations_ : array, shape (m, k)
        Dilations, normalised so that ``dilations_.mean(axis=0) == 1``.
    shifts_ : array, shape (m, k)
        Delays (fraction of an epoch), centred so that ``shifts_.mean(axis=0) == 0``. The
        other fitted attributes are those of :class:`MVICA`.

    References
    ----------
    A. Heurtebise, O. Chehab, P. Ablin, A. Gramfort, A. Hyvarinen. Identifiable Multi-View
    Independent Component Analysis with Delays and Dilations (MVICAD2), 2024. Code:
    github.com/AmbroiseHeurtebise/internship_m2 (``mvica_ds``).
    """

    _warps = "both"

    _parameter_constraints: dict = {
        **MVICAD._parameter_constraints,
        "max_dilation": [Interval(Real, 1, None, closed="left")],
    }

    def __init__(self, n_components=None, *, noise=1.0, max_dilation=1.15, max_shift=0.05,
                 n_concat=1, onset=0, init="permica", grid_size=None, penalty=1.0, smoothing=1,
                 max_iter=3000, tol=1e-7, random_state=None, verbose=False):
        self.n_components = n_components
        self.noise = noise
        self.max_dilation = max_dilation
        self.max_shift = max_shift
        self.n_concat = n_concat
        self.onset = onset
        self.init = init
        self.grid_size = grid_size
        self.penalty = penalty
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose


def _item(stacked, i):
    """``stacked[i]`` for a list or a stacked array (full index, as the array API requires)."""
    return stacked[i] if isinstance(stacked, list) else stacked[i, ...]


def _pinv(a):
    """Moore-Penrose pseudo-inverse of a full-row-rank (k, p) matrix: ``a^T (a a^T)^{-1}``."""
    xp = get_namespace(a)
    at = xp.matrix_transpose(a)
    return at @ inv(a @ at)
