"""Independent MEG-like group data for the multi-view ICA benchmarks.

Written from the model of the multi-view ICA reference note only (not from the package's
generator, :func:`sciml_toolbox.datasets.make_multiview_sources`), so that the benchmark does not
evaluate the solver on data shaped like its own assumptions.

Model (Heurtebise et al., MVICAD2; Richard et al., MVICA)::

    X_i = A_i (T_i S + N_i),   (T_i S)_j(t) = S_j(rho_ij (t - onset) + onset - tau_ij)

with time ``t`` counted in samples inside each epoch. Differences from the package's generator:

* sources are sums of 2-4 oscillatory bursts per epoch, Gabor (Gaussian envelope) or
  sech-envelope wave packets with random frequency, phase and width, placed after the onset;
  before the onset a source is zero; each epoch draws new bursts (trials differ) while the
  per-subject warp is the same in every epoch;
* EVERY subject is warped (no reference subject): ``rho_ij`` is drawn log-uniformly in
  ``[1 / max_dilation, max_dilation]`` and ``tau_ij`` uniformly in
  ``[-max_shift * n_times, max_shift * n_times]`` samples (the reference note's convention:
  dilations in ``[1/max_dilation, max_dilation]``, shifts a fraction of the epoch);
* the warped sources are obtained by evaluating the burst functions at the warped times
  (exact, no interpolation, no wrap-around);
* mixing matrices are ``U diag(s) V^T`` with Haar-random orthogonal ``U, V`` and singular values
  uniform in ``[1, cond]`` (condition number at most ``cond``), sensors = components.

Errors of estimated warps (:func:`warp_errors`): sources are matched with the permutation
maximising the summed absolute cross-correlation between the true and estimated mean sources
(Hungarian algorithm); warps are identifiable only up to one common warp per source (replacing
``S_j(u)`` by ``S_j(a u - b)`` maps ``rho -> rho / a``, ``tau -> (tau - b) / a`` for every
subject), so for each source the common warp ``(a_j, b_j)`` that best aligns the estimates to
the truth is removed first (``log a_j`` = mean over subjects of ``log rho_true - log rho_est``,
``b_j`` = mean of ``tau_true - a_j tau_est``), then the mean absolute errors of the dilations and
of the delays (in fractions of the epoch) are reported.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _bursts(rng, n_bursts, onset, n_times):
    """Parameters of ``n_bursts`` wave packets living in ``[onset, n_times)`` (source time)."""
    span = n_times - onset
    centre = onset + rng.uniform(0.15, 0.75, n_bursts) * span
    width = rng.uniform(0.02, 0.06, n_bursts) * span
    freq = rng.uniform(1.5, 5.0, n_bursts) / (4 * width)          # 1.5-5 cycles per 4 widths
    phase = rng.uniform(0, 2 * np.pi, n_bursts)
    amp = rng.uniform(0.6, 1.4, n_bursts) * rng.choice([-1, 1], n_bursts)
    kind = rng.integers(0, 2, n_bursts)                            # 0 Gabor, 1 sech envelope
    return centre, width, freq, phase, amp, kind


def _evaluate(params, u, onset):
    """Value of the burst sum at source times ``u`` (any shape); zero before ``onset``."""
    centre, width, freq, phase, amp, kind = params
    out = np.zeros_like(u, dtype=float)
    for c, w, f, ph, a, kd in zip(centre, width, freq, phase, amp, kind, strict=True):
        z = (u - c) / w
        env = np.exp(-0.5 * z**2) if kd == 0 else 1.0 / np.cosh(1.5 * z)
        out += a * env * np.cos(2 * np.pi * f * (u - c) + ph)
    return np.where(u >= onset, out, 0.0)


def make_independent_meg(n_subjects=5, n_components=3, *, n_times=600, n_concat=5, onset=200,
                         max_dilation=1.15, max_shift=0.05, noise=0.01, cond=4.0,
                         random_state=0):
    """Draw an independent warped multi-view data set.

    Parameters
    ----------
    n_subjects, n_components : int
        ``m`` subjects and ``k`` shared sources (sensors = ``k``).
    n_times, n_concat : int
        Samples per epoch and number of concatenated epochs (total ``n_concat * n_times``).
    onset : int
        Sample, inside each epoch, around which dilations act; sources are zero before it.
    max_dilation : float
        Dilations are log-uniform in ``[1 / max_dilation, max_dilation]``.
    max_shift : float
        Delays are uniform in ``[-max_shift, max_shift] * n_times`` samples.
    noise : float
        Variance of the Gaussian noise ``N_i`` added to the unit-variance warped sources.
    cond : float
        Upper bound on the condition number of each mixing matrix.
    random_state : int

    Returns
    -------
    X : ndarray, shape (n_subjects, n_components, n_concat * n_times)
    A : ndarray, shape (n_subjects, n_components, n_components)
        True mixing matrices.
    S : ndarray, shape (n_components, n_concat * n_times)
        Unwarped shared sources.
    dilations : ndarray, shape (n_subjects, n_components)
    delays : ndarray, shape (n_subjects, n_components)
        True delays as fractions of the epoch (``tau / n_times``).
    """
    rng = np.random.default_rng(random_state)
    m, k = n_subjects, n_components
    t = np.arange(n_times, dtype=float)
    params = [[_bursts(rng, rng.integers(2, 5), onset, n_times) for _ in range(n_concat)]
              for _ in range(k)]
    scale = np.array([np.std(np.concatenate([_evaluate(pe, t, onset) for pe in params[j]]))
                      for j in range(k)])
    S = np.stack([np.concatenate([_evaluate(pe, t, onset) for pe in params[j]]) / scale[j]
                  for j in range(k)])
    log_rho = rng.uniform(-np.log(max_dilation), np.log(max_dilation), (m, k))
    rho = np.exp(log_rho)
    shift = rng.uniform(-max_shift, max_shift, (m, k))
    X = np.empty((m, k, n_concat * n_times))
    A = np.empty((m, k, k))
    for i in range(m):
        warped = np.stack([
            np.concatenate([
                _evaluate(pe, rho[i, j] * (t - onset) + onset - shift[i, j] * n_times, onset)
                for pe in params[j]]) / scale[j]
            for j in range(k)])
        U = np.linalg.qr(rng.standard_normal((k, k)))[0]
        V = np.linalg.qr(rng.standard_normal((k, k)))[0]
        A[i] = U @ np.diag(rng.uniform(1.0, cond, k)) @ V.T
        X[i] = A[i] @ (warped + np.sqrt(noise) * rng.standard_normal(warped.shape))
    return X, A, S, rho, shift


def match_to_truth(W, A):
    """Permutation matching estimated to true sources from the global gains ``W_i A_i``.

    Parameters
    ----------
    W : ndarray, shape (m, k, k)
        Unmixing matrices in sensor space (``components_`` composed with any whitening).
    A : ndarray, shape (m, k, k)

    Returns
    -------
    perm : ndarray of int, shape (k,)
        ``perm[j]`` is the true source matched to estimated source ``j``; the same assignment
        that the Amari distance's best scaled permutation uses on the subject-averaged,
        row-normalised ``|W_i A_i|``.
    """
    G = np.abs(np.einsum("mij,mjk->mik", W, A))
    G = G / G.max(axis=2, keepdims=True)
    rows, cols = linear_sum_assignment(-G.mean(axis=0))
    perm = np.empty(len(rows), dtype=int)
    perm[rows] = cols
    return perm


def warp_errors(rho_est, tau_est, rho_true, tau_true, perm):
    """Mean absolute dilation and delay errors after removing one common warp per source.

    Parameters
    ----------
    rho_est, tau_est : ndarray, shape (m, k)
        Estimated dilations and delays (delays as fractions of the epoch), estimated-source order,
        in the model's convention ``S_j(rho (t - onset) + onset - tau n_times)``.
    rho_true, tau_true : ndarray, shape (m, k)
    perm : ndarray of int, shape (k,)
        From :func:`match_to_truth`.

    Returns
    -------
    dilation_error, delay_error : float
    """
    rt, tt = rho_true[:, perm], tau_true[:, perm]
    log_a = np.mean(np.log(rt) - np.log(rho_est), axis=0)
    a = np.exp(log_a)
    b = np.mean(tt - a * tau_est, axis=0)
    return (float(np.mean(np.abs(a * rho_est - rt))),
            float(np.mean(np.abs(a * tau_est + b - tt))))
