"""Evaluation metrics of the multi-view ICA papers: Amari distance, warp errors and the
matching of estimated to true sources."""

from __future__ import annotations

from .._array_api import get_namespace, to_numpy
from .._validation import check_array, check_in_range

__all__ = ["amari_distance", "warp_errors", "match_sources"]


def amari_distance(W, A):
    """Amari distance between ``W @ A`` and the set of scaled permutation matrices.

    For ``M = |W A|`` (k x k) (Amari et al., 1996, in the normalised form used by
    Ablin et al., 2018 and Richard et al., 2020)

    ``d = (sum_i (sum_j M_ij^2 / max_j M_ij^2 - 1) + sum_j (sum_i M_ij^2 / max_i M_ij^2 - 1))
    / (2 k)``,

    which is 0 exactly when ``W A`` is a scaled permutation.

    Parameters
    ----------
    W : array, shape (k, p) or (m, k, p)
        Unmixing matrix (or one per subject).
    A : array, shape (p, k) or (m, p, k)
        Mixing matrix (or one per subject).

    Returns
    -------
    d : float
        The distance (the mean over subjects for stacked inputs).
    """
    W = check_array(W, "W", ndim=(2, 3))
    A = check_array(A, "A", ndim=(2, 3))
    if W.ndim != A.ndim or W.shape[-1] != A.shape[-2] or W.shape[-2] != A.shape[-1]:
        raise ValueError(
            f"W and A must have shapes (..., k, p) and (..., p, k), got {tuple(W.shape)} and "
            f"{tuple(A.shape)}"
        )
    xp = get_namespace(W, A)
    M = (W @ A) ** 2
    if not (bool(xp.all(xp.max(M, axis=-1) > 0)) and bool(xp.all(xp.max(M, axis=-2) > 0))):
        raise ValueError("W @ A has a zero row or column (W or A is rank-deficient): the Amari "
                         "distance is not defined")
    k = M.shape[-1]
    rows = xp.sum(xp.sum(M, axis=-1) / xp.max(M, axis=-1) - 1.0, axis=-1)
    cols = xp.sum(xp.sum(M, axis=-2) / xp.max(M, axis=-2) - 1.0, axis=-1)
    d = (rows + cols) / (2.0 * k)
    return float(xp.mean(d)) if d.ndim else float(d)


def match_sources(W, A):
    """Index of the true source that each estimated source recovers.

    For an unmixing matrix ``W`` estimated on data mixed by a known ``A``, row ``i`` of
    ``W @ A`` is close to a scaled unit vector pointing at the true source that estimated
    source ``i`` recovers: ``order[i] = argmax_j |(W A)_ij|``. Use it to align estimates
    with the ground truth before comparing them, e.g. ``true_sources[order]`` with
    ``est.transform(X)``, or ``warp_errors(..., order=order)``.

    Parameters
    ----------
    W : array, shape (k, p)
        Estimated unmixing matrix of one subject (e.g. ``MVICA.components_[i]``).
    A : array, shape (p, k)
        True mixing matrix of the same subject.

    Returns
    -------
    order : ndarray of int, shape (k,)
        ``order[i]``: the true source matched to estimated source ``i``. A permutation when
        the separation is good (:func:`amari_distance` small); otherwise two estimated sources
        may match the same true source (use ``scipy.optimize.linear_sum_assignment`` on
        ``-abs(W @ A)`` for a one-to-one matching).

    Examples
    --------
    >>> import numpy as np
    >>> from sciml_toolbox.multiview import match_sources
    >>> A = np.array([[1.0, 0.2], [0.1, 2.0]])
    >>> W = -np.linalg.inv(A)[::-1]  # sources estimated in the other order, sign flipped
    >>> match_sources(W, A)
    array([1, 0])
    """
    import numpy as np

    W = check_array(W, "W", ndim=2)
    A = check_array(A, "A", ndim=2)
    if W.shape[1] != A.shape[0] or W.shape[0] != A.shape[1]:
        raise ValueError(
            f"W and A must have shapes (k, p) and (p, k), got {tuple(W.shape)} and "
            f"{tuple(A.shape)}"
        )
    return np.argmax(np.abs(np.asarray(to_numpy(W @ A), dtype=float)), axis=1)


def warp_errors(dilations, shifts, true_dilations, true_shifts, *, max_dilation=1.15,
                max_shift=0.05, order=None):
    """Errors of estimated warps after centring, as in Heurtebise et al. (2024).

    Warps are identifiable up to a common warp per source, so both estimates and truth are
    centred over subjects first; the mean absolute differences are then divided by the widths
    of the search ranges, ``max_dilation - 1 / max_dilation`` and ``2 max_shift``.

    Parameters
    ----------
    dilations, shifts : array, shape (m, k)
        Estimates (e.g. ``MVICAD2.dilations_`` and ``shifts_``).
    true_dilations, true_shifts : array, shape (m, k)
        Ground truth.
    max_dilation : float, default=1.15
        Dilation bound (>= 1) of the estimator.
    max_shift : float, default=0.05
        Shift bound (>= 0) of the estimator.
    order : array of int, shape (k,), optional
        True source matched to each estimated source (see :func:`match_sources`).

    Returns
    -------
    dilation_error, shift_error : float
    """
    import numpy as np

    arrays = {}
    for name, a in (("dilations", dilations), ("shifts", shifts),
                    ("true_dilations", true_dilations), ("true_shifts", true_shifts)):
        arrays[name] = np.asarray(to_numpy(check_array(a, name, ndim=2)), dtype=float)
        if arrays[name].shape != arrays["dilations"].shape:
            raise ValueError(
                f"{name} must have the shape (m, k) of dilations, "
                f"{arrays['dilations'].shape}, got {arrays[name].shape}"
            )
    d, s, td, ts = arrays.values()
    max_dilation = check_in_range(max_dilation, "max_dilation", 1.0, None)
    max_shift = check_in_range(max_shift, "max_shift", 0.0, None)
    if order is not None:
        order = np.asarray(to_numpy(check_array(order, "order", ndim=1, dtype=None)))
        if order.dtype.kind not in "iu" or order.shape[0] != d.shape[1] or (
                order.size and (order.min() < 0 or order.max() >= d.shape[1])):
            raise ValueError(f"order must hold {d.shape[1]} source indices in "
                             f"[0, {d.shape[1]}), got {order!r}")
    if order is not None:
        td, ts = td[:, order], ts[:, order]

    def centre(a):
        return a - a.mean(axis=0)

    width_d = max_dilation - 1.0 / max_dilation if max_dilation > 1 else 1.0
    width_s = 2.0 * max_shift if max_shift > 0 else 1.0
    ed = np.mean(np.abs(centre(d) - centre(td))) / width_d
    es = np.mean(np.abs(centre(s) - centre(ts))) / width_s
    return float(ed), float(es)
