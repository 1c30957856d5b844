"""Lloyd k-means, exact nearest-centre search and the segment reductions they need.

The segment reductions and the fused ``bias - 2 x z^T`` product are outside the array API
standard: each has one fast path per backend (torch ``index_add_`` / ``addmm``, NumPy
``ufunc.at``) and a generic one-hot fallback for any other namespace.
"""

from __future__ import annotations

import numpy as np

from .._array_api import device, get_namespace, namespace_name

__all__ = ["bias_minus_2_cross", "segment_sum", "segment_max", "nearest_centre", "lloyd_kmeans"]

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


def nearest_centre(z, centres):
    """Index of the nearest centre (Euclidean) of each row of ``z``: exact brute-force search.

    Builds the distance block a bounded number of rows at a time, so memory stays
    O(2^21 + m) whatever the number of rows.

    Parameters
    ----------
    z : array, shape (m, d)
    centres : array, shape (k, d)

    Returns
    -------
    labels : integer array, shape (m,)
        Ties go to the lowest index.
    """
    xp = get_namespace(z)
    csq = xp.sum(centres * centres, axis=1)
    m = z.shape[0]
    chunk_rows = max(256, _BLOCK_ELEMENTS // centres.shape[0])
    return xp.concat([
        xp.argmin(bias_minus_2_cross(z[a:min(a + chunk_rows, m), ...], centres, csq, xp),
                  axis=1)
        for a in range(0, m, chunk_rows)
    ])


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
