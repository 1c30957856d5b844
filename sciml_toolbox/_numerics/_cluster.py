"""Lloyd k-means, exact nearest-neighbour search and the segment reductions they need.

The segment reductions and the fused ``bias - 2 x z^T`` product are outside the array API
standard: each has one fast path per backend (torch ``index_add_`` / ``addmm``, NumPy
``ufunc.at``) and a generic one-hot fallback for any other namespace.
"""

from __future__ import annotations

import numpy as np

from .._array_api import device, get_namespace, namespace_name

__all__ = [
    "bias_minus_2_cross",
    "segment_sum",
    "segment_max",
    "nearest_neighbour",
    "nearest_centre",
    "lloyd_kmeans",
]

# number of elements of the (rows, centres) distance block built at once
_BLOCK_ELEMENTS = 1 << 21


def bias_minus_2_cross(x, z, bias, xp):
    """``bias[None, :] - 2 x z^T``: one fused matrix product (torch ``addmm``) where possible.

    With ``bias = ||z||^2`` this is the squared distance minus ``||x||^2``, which has the same
    argmin over the rows of ``z``.

    Parameters
    ----------
    x : array, shape (n, d)
    z : array, shape (m, d)
    bias : array, shape (m,)
    xp : namespace
        The namespace of the arrays.

    Returns
    -------
    out : array, shape (n, m)
    """
    if namespace_name(xp) == "torch":
        import torch

        return torch.addmm(bias[None, :], x, z.mT, beta=1.0, alpha=-2.0)
    return bias[None, :] - 2.0 * (x @ xp.matrix_transpose(z))


def segment_sum(values, index, n, xp):
    """``out[i] = sum_{k: index[k] = i} values[k]``.

    Parameters
    ----------
    values : array, shape (m, ...)
    index : integer array, shape (m,)
        Segment of each row, in ``[0, n)``.
    n : int
        Number of segments.
    xp : namespace

    Returns
    -------
    out : array, shape (n, ...)
        Zero for empty segments.
    """
    name = namespace_name(xp)
    shape = (n,) + tuple(values.shape[1:])
    if name == "torch":
        out = xp.zeros(shape, dtype=values.dtype, device=device(values))
        return out.index_add_(0, index, values)
    if name == "numpy":
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, np.asarray(index), values)
        return out
    onehot = xp.astype(index[None, :] == xp.arange(n, device=device(values))[:, None],
                       values.dtype)
    if values.ndim == 1:
        return xp.sum(onehot * values[None, :], axis=1)
    return onehot @ values


def segment_max(values, index, n, xp):
    """``out[i] = max_{k: index[k] = i} values[k]`` for non-negative values.

    Parameters
    ----------
    values : array, shape (m,)
        Non-negative values.
    index : integer array, shape (m,)
        Segment of each value, in ``[0, n)``.
    n : int
        Number of segments.
    xp : namespace

    Returns
    -------
    out : array, shape (n,)
        Zero for empty segments.
    """
    name = namespace_name(xp)
    if name == "torch":
        out = xp.zeros((n,), dtype=values.dtype, device=device(values))
        return out.scatter_reduce_(0, index, values, reduce="amax")
    if name == "numpy":
        out = np.zeros((n,), dtype=values.dtype)
        np.maximum.at(out, np.asarray(index), values)
        return out
    hit = index[None, :] == xp.arange(n, device=device(values))[:, None]
    return xp.max(xp.where(hit, values[None, :], xp.zeros_like(values[None, :])), axis=1)


def nearest_neighbour(x, reference, *, chunk_size=None, return_distance=True):
    """Nearest row of ``reference`` (Euclidean) for each row of ``x``: exact brute-force search.

    The candidates are ranked by the expansion ``||z||^2 - 2 x.z`` (one matrix product per
    block), built at most ``chunk_size`` references and about 2^21 elements at a time, so that
    memory stays bounded whatever the sizes; the returned distances are then recomputed from
    the exact differences to the winners.

    Parameters
    ----------
    x : array, shape (n, d)
    reference : array, shape (m, d)
        At least one row.
    chunk_size : int, optional
        References compared at once (default: all of them).
    return_distance : bool, default=True
        Also return the distances.

    Returns
    -------
    dist : array, shape (n,)
        Distance to the nearest reference (only with ``return_distance=True``).
    index : int64 array, shape (n,)
        Its row in ``reference``; ties go to the lowest index (up to the rounding of the
        expansion for near-ties).
    """
    xp = get_namespace(x, reference)
    n = x.shape[0]
    m = reference.shape[0]
    chunk = max(1, m if chunk_size is None else min(int(chunk_size), m))
    rows = max(256, _BLOCK_ELEMENTS // chunk)
    zsq = xp.sum(reference * reference, axis=1)
    found = []
    for a in range(0, n, rows):
        xa = x[a:min(a + rows, n), ...]
        best = best_idx = None
        for start in range(0, m, chunk):
            stop = min(start + chunk, m)
            score = bias_minus_2_cross(xa, reference[start:stop, ...], zsq[start:stop], xp)
            j = xp.astype(xp.argmin(score, axis=1), xp.int64) + start
            if best is None:
                best, best_idx = xp.min(score, axis=1), j
            else:
                v = xp.min(score, axis=1)
                better = v < best
                best = xp.where(better, v, best)
                best_idx = xp.where(better, j, best_idx)
        found.append(best_idx)
    index = xp.concat(found) if found else xp.zeros((0,), dtype=xp.int64, device=device(x))
    if not return_distance:
        return index
    diff = x - xp.take(reference, index, axis=0)
    return xp.sqrt(xp.sum(diff * diff, axis=1)), index


def nearest_centre(z, centres):
    """Index of the nearest centre of each row of ``z`` (:func:`nearest_neighbour`).

    Parameters
    ----------
    z : array, shape (m, d)
    centres : array, shape (k, d)

    Returns
    -------
    labels : int64 array, shape (m,)
    """
    return nearest_neighbour(z, centres, return_distance=False)


def lloyd_kmeans(z, k, *, n_iter=5):
    """A few Lloyd iterations from ``k`` evenly strided points of ``z``.

    Deterministic (no random start) and cheap: meant for partitioning points into cells, not
    for the best clustering. A centre that loses all its points keeps its position.

    Parameters
    ----------
    z : array, shape (m, d)
    k : int
        Number of centres, at most ``m``.
    n_iter : int, default=5
        Lloyd iterations (assignment, then mean of each cell).

    Returns
    -------
    centres : array, shape (k, d)
    labels : integer array, shape (m,)
        Nearest centre of each point, for the returned centres.
    """
    xp = get_namespace(z)
    m = z.shape[0]
    centres = z[:: max(1, m // k), ...][:k, ...]
    ones = xp.ones((m,), dtype=z.dtype, device=device(z))
    for _ in range(n_iter):
        lab = nearest_centre(z, centres)
        sizes = segment_sum(ones, lab, centres.shape[0], xp)
        safe = xp.where(sizes > 0, sizes, xp.ones_like(sizes))
        centres = xp.where(sizes[:, None] > 0,
                           segment_sum(z, lab, centres.shape[0], xp) / safe[:, None], centres)
    return centres, nearest_centre(z, centres)
