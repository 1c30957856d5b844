"""Synthetic multi-view data with per-subject mixing, time delays and dilations.

The protocol is the one of the MVICAD2 paper's synthetic experiments (Heurtebise et al., 2024,
section V-A): each shared source is the sum of an asymmetric biphasic bump (an evoked-response
shape) and a train of windowed sinusoids; every subject sees each source through its own
dilation (uniform in ``[1 / max_dilation, max_dilation]``) and delay (uniform in
``[-max_shift, max_shift]`` of an epoch), subject 0 being the unwarped reference, with
Gaussian source noise and a Gaussian mixing matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._array_api import to_numpy
from .._validation import check_array, check_in_range, check_int, check_positive

__all__ = ["make_multiview_sources", "apply_warps"]


def apply_warps(S, dilations, shifts, *, n_concat=1, onset=0):
    """Forward time warp of the MVICAD2 model (NumPy reference implementation).

    ``(T S)_j(t) = S_j(rho_j (t - onset) + onset - tau_j n)`` evaluated by linear interpolation
    with the epoch treated as periodic, epoch by epoch.

    Parameters
    ----------
    S : ndarray, shape (m, k, n_concat * n)
        Signals of ``m`` subjects (or copies) and ``k`` sources.
    dilations, shifts : ndarray, shape (m, k)
        ``rho`` and ``tau`` (``tau`` as a fraction of the epoch length ``n``).
    n_concat : int, default=1
    onset : int, default=0

    Returns
    -------
    Y : ndarray, shape (m, k, n_concat * n)
    """
    S = np.asarray(to_numpy(check_array(S, "S", ndim=3)), dtype=float)
    m, k, total = S.shape
    dilations = np.asarray(to_numpy(check_array(dilations, "dilations", ndim=2)), dtype=float)
    shifts = np.asarray(to_numpy(check_array(shifts, "shifts", ndim=2)), dtype=float)
    for name, a in (("dilations", dilations), ("shifts", shifts)):
        if a.shape != (m, k):
            raise ValueError(f"{name} must have shape ({m}, {k}) (subjects and sources of S), "
                             f"got {a.shape}")
    if np.any(dilations <= 0):
        raise ValueError("dilations must be positive")
    n_concat = check_int(n_concat, "n_concat", min_value=1)
    if total % n_concat:
        raise ValueError(f"the last axis of S ({total} samples) must be a multiple of "
                         f"n_concat={n_concat}")
    n = total // n_concat
    onset = check_int(onset, "onset", min_value=0, max_value=n - 1)
    t = np.arange(n)
    grid = np.arange(n)
    out = np.empty_like(S)
    for i in range(m):
        for j in range(k):
            u = dilations[i, j] * (t - onset) + onset - shifts[i, j] * n
            for e in range(n_concat):
                seg = S[i, j, e * n:(e + 1) * n]
                out[i, j, e * n:(e + 1) * n] = np.interp(u, grid, seg, period=n)
    return out


def _bump(n, center, width, height):
    """Asymmetric biphasic bump: a slower second half and a halved negative lobe."""
    t = (np.arange(n) - center) / width
    t = np.where(t > 0, t / 2.0, t)
    s = -0.5 * t * np.exp(-t * t)
    return height * np.where(s < 0, s / 2.0, s)


def _windowed_sines(n, freqs, amps, roll):
    """Concatenated sines, each tapered to zero at both ends of its interval, then rolled."""
    n_bins = len(freqs)
    seg = n // n_bins
    x = np.linspace(0.0, 1.0, seg)
    taper = np.exp(-0.1 / (x + 1e-7) ** 2) * np.exp(-0.1 / (1.0 - x + 1e-7) ** 2)
    s = np.zeros(n)
    for b, (f, a) in enumerate(zip(freqs, amps, strict=True)):
        s[b * seg:(b + 1) * seg] = a * np.sin(f * x) * taper
    return np.roll(s, int(roll * n)) * np.hamming(n)


def make_multiview_sources(n_subjects=5, n_sources=3, n_times=600, *, n_concat=5,
                           n_channels=None, max_dilation=1.15, max_shift=0.05, noise=0.01,
                           onset=200, n_bins=10, freq_level=50.0, bump_weight=0.7,
                           random_state=None):
    """Simulate the MVICAD2 synthetic protocol: shared sources, warps, mixing and noise.

    Model (Heurtebise et al., 2024): ``X_i = A_i (T_i S + N_i)`` with
    ``(T_i S)_j(t) = S_j(rho_ij (t - onset) + onset - tau_ij n)`` applied epoch by epoch,
    ``N_i`` i.i.d. Gaussian with standard deviation ``noise`` and ``A_i`` Gaussian.

    Parameters
    ----------
    n_subjects : int, default=5
        Number of subjects (views) ``m``.
    n_sources : int, default=3
        Number of shared sources ``k``.
    n_times : int, default=600
        Samples per epoch ``n``.
    n_concat : int, default=5
        Number of concatenated epochs (each with new source waveforms, same warps).
    n_channels : int, optional
        Sensors per subject (default ``n_sources``: square mixing, as in the paper).
    max_dilation : float, default=1.15
        Dilations are uniform in ``[1 / max_dilation, max_dilation]`` (>= 1).
    max_shift : float, default=0.05
        Shifts are uniform in ``[-max_shift, max_shift]``, a fraction of the epoch (>= 0).
    noise : float, default=0.01
        Standard deviation of the source noise.
    onset : int, default=200
        Sample the dilations are centred on.
    n_bins : int, default=10
        Number of windowed sinusoids per epoch.
    freq_level : float, default=50.0
        Sine frequencies are uniform in ``[0, freq_level]`` (radians per interval).
    bump_weight : float, default=0.7
        Weight of the bump against the sinusoids.
    random_state : int, numpy Generator or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (m, n_channels, n_concat * n) observations; ``mixings`` (m, n_channels, k);
        ``sources`` (k, n_concat * n) shared sources; ``subject_sources``
        (m, k, n_concat * n) warped noisy sources; ``dilations`` and ``shifts`` (m, k), with
        subject 0 at (1, 0); ``n_concat``, ``onset``, ``max_dilation``, ``max_shift``.
    """
    m = check_int(n_subjects, "n_subjects", min_value=1)
    k = check_int(n_sources, "n_sources", min_value=1)
    n = check_int(n_times, "n_times", min_value=2)
    n_concat = check_int(n_concat, "n_concat", min_value=1)
    p = check_int(k if n_channels is None else n_channels, "n_channels", min_value=k)
    max_dilation = check_in_range(max_dilation, "max_dilation", 1.0, None)
    max_shift = check_in_range(max_shift, "max_shift", 0.0, 0.5)
    noise = check_positive(noise, "noise", strict=False)
    onset = check_int(onset, "onset", min_value=0, max_value=n - 1)
    n_bins = check_int(n_bins, "n_bins", min_value=1, max_value=n)
    freq_level = check_positive(freq_level, "freq_level", strict=False)
    bump_weight = check_in_range(bump_weight, "bump_weight", 0.0, 1.0)
    rng = np.random.default_rng(random_state)

    epochs = []
    for _ in range(n_concat):
        centers = rng.permutation(np.arange(k) * (0.8 * n - n / 3) / k + n / 3)
        widths = rng.integers(max(n // 25, 1), max(n // 10, 2), size=k)
        heights = rng.uniform(0.7, 1.4, size=k)
        bumps = np.stack([
            _bump(n, c, w, h) for c, w, h in zip(centers, widths, heights, strict=True)
        ])
        sines = np.stack([
            _windowed_sines(n, rng.uniform(0, freq_level, n_bins), 4 * rng.standard_normal(n_bins),
                            rng.uniform())
            for _ in range(k)
        ])
        scale = np.max(bumps) / max(np.max(sines), 1e-12)
        epochs.append(bump_weight * bumps + (1 - bump_weight) * scale * sines)
    S = np.concatenate(epochs, axis=1)  # (k, n_concat * n)

    dilations = np.ones((m, k))
    shifts = np.zeros((m, k))
    dilations[1:] = rng.uniform(1.0 / max_dilation, max_dilation, size=(m - 1, k))
    shifts[1:] = rng.uniform(-max_shift, max_shift, size=(m - 1, k))
    noisy = S[None] + noise * rng.standard_normal((m, k, n_concat * n))
    subject_sources = apply_warps(noisy, dilations, shifts, n_concat=n_concat, onset=onset)
    mixings = rng.standard_normal((m, p, k))
    X = mixings @ subject_sources
    return Bunch(X=X, mixings=mixings, sources=S, subject_sources=subject_sources,
                 dilations=dilations, shifts=shifts, n_concat=n_concat, onset=onset,
                 max_dilation=max_dilation, max_shift=max_shift)
