"""Sample-quality and memorisation metrics, written from their definitions.

* Vendi score [1]_: ``exp(-sum_i lambda_i log lambda_i)`` with ``lambda_i`` the eigenvalues of
  ``K / n`` for a similarity kernel with unit diagonal: the effective number of distinct samples.
* k-NN precision and recall [2]_: the share of generated samples inside the real-data manifold
  (union of balls reaching each real point's k-th nearest real neighbour) and the share of real
  samples inside the generated manifold.
* Shield share: the share of samples within ``r`` of a protected point, the quantity SPELL [3]_
  drives to zero.

References
----------
.. [1] D. Friedman, A. B. Dieng. "The Vendi Score: A Diversity Evaluation Metric for Machine
   Learning". TMLR 2023, arXiv:2210.02410.
.. [2] T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila. "Improved Precision and Recall
   Metric for Assessing Generative Models". NeurIPS 2019, arXiv:1904.06991.
.. [3] M. Kirchhof et al. "Shielded Diffusion: Generating Novel and Diverse Images using Sparse
   Repellency". ICML 2025, arXiv:2410.06025.
"""

from __future__ import annotations

from ..._array_api import eigh, get_namespace
from ..._numerics import nearest_neighbour
from ..._validation import check_array, check_int, check_option, check_positive

__all__ = ["vendi_score", "knn_precision_recall", "shield_share", "nearest_distance"]


def _flat(x, name, min_samples=1):
    x = check_array(x, name, ndim=None, min_samples=min_samples)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n, ...) with a sample axis, got shape "
                         f"{tuple(x.shape)}")
    xp = get_namespace(x)
    return xp.reshape(x, (x.shape[0], -1))


def _sqdist(a, b):
    xp = get_namespace(a, b)
    d2 = (xp.sum(a * a, axis=1)[:, None] + xp.sum(b * b, axis=1)[None, :]
          - 2.0 * (a @ xp.matrix_transpose(b)))
    return xp.clip(d2, 0.0, None)


def _exact_dist_chunk(a, b):
    xp = get_namespace(a, b)
    diff = a[:, None, :] - b[None, :, :]
    return xp.sqrt(xp.sum(diff * diff, axis=-1))


def vendi_score(x, *, kernel="cosine", bandwidth=None):
    """Vendi score of a set of samples (Friedman & Dieng, 2023).

    Parameters
    ----------
    x : array, shape (n, ...)
        Samples or features (flattened per sample).
    kernel : {'cosine', 'rbf'}, default='cosine'
        ``'cosine'``: ``K_ij = <x_i, x_j> / (||x_i|| ||x_j||)``. ``'rbf'``:
        ``K_ij = exp(-||x_i - x_j||^2 / (2 h^2))``.
    bandwidth : float, optional
        ``h`` of the RBF kernel (default: the median pairwise distance).

    Returns
    -------
    score : float
        Between 1 (all samples alike) and n (all orthogonal / far apart).
    """
    x = _flat(x, "x")
    check_option(kernel, "kernel", ("cosine", "rbf"))
    bandwidth = check_positive(bandwidth, "bandwidth", allow_none=True)
    xp = get_namespace(x)
    n, d = x.shape
    if kernel == "cosine":
        norm = xp.sqrt(xp.sum(x * x, axis=1))
        if bool(xp.any(norm == 0)):
            raise ValueError("x must not contain all-zero rows with kernel='cosine'")
        xn = x / norm[:, None]
        # K / n and X^T X / n share their nonzero eigenvalues: use the smaller matrix
        gram = (xp.matrix_transpose(xn) @ xn) if d < n else (xn @ xp.matrix_transpose(xn))
        lam = eigh(gram / n)[0]
    else:
        d2 = _sqdist(x, x)
        if bandwidth is None:
            vals = xp.sort(xp.reshape(xp.sqrt(d2), (-1,)))
            offdiag = vals[n:]  # the n zeros of the diagonal come first
            bandwidth = float(offdiag[offdiag.shape[0] // 2]) if offdiag.shape[0] else 1.0
            bandwidth = bandwidth if bandwidth > 0 else 1.0
        lam = eigh(xp.exp(-d2 / (2.0 * bandwidth**2)) / n)[0]
    lam = lam[lam > 1e-12]
    return float(xp.exp(-xp.sum(lam * xp.log(lam))))


def nearest_distance(x, reference, *, chunk_size=4096):
    """Distance from each sample to its nearest reference point (chunked exact search).

    Parameters
    ----------
    x : array, shape (n, ...)
    reference : array, shape (m, ...)
        Same flattened dimension as ``x``.
    chunk_size : int, default=4096
        References compared at once.

    Returns
    -------
    dist : array, shape (n,)
    index : array of int64, shape (n,)
        Index of the nearest reference.
    """
    x = _flat(x, "x")
    reference = _flat(reference, "reference")
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    if x.shape[1] != reference.shape[1]:
        raise ValueError(f"reference has dimension {reference.shape[1]}, x has {x.shape[1]}")
    get_namespace(x, reference)  # one namespace
    return nearest_neighbour(x, reference, chunk_size=chunk_size)


def shield_share(samples, reference, radius, *, chunk_size=4096):
    """Share of samples within ``radius`` (strictly) of a protected point (Kirchhof et al., 2025).

    Parameters
    ----------
    samples : array, shape (n, ...)
    reference : array, shape (m, ...)
    radius : float
    chunk_size : int, default=4096

    Returns
    -------
    share : float in [0, 1]
    """
    radius = check_positive(radius, "radius")
    dist, _ = nearest_distance(samples, reference, chunk_size=chunk_size)
    xp = get_namespace(dist)
    return float(xp.mean(xp.astype(dist < radius, dist.dtype)))


def _kth_radius(a, k, chunk):
    xp = get_namespace(a)
    out = []
    for start in range(0, a.shape[0], chunk):
        d = _exact_dist_chunk(a[start:min(start + chunk, a.shape[0]), ...], a)
        out.append(xp.sort(d, axis=1)[:, k])  # column 0 is the point itself
    return xp.concat(out)


def _coverage(query, support, radii, chunk):
    xp = get_namespace(query)
    hits = []
    for start in range(0, query.shape[0], chunk):
        d = _exact_dist_chunk(query[start:min(start + chunk, query.shape[0]), ...], support)
        hits.append(xp.any(d <= radii[None, :], axis=1))
    hit = xp.concat(hits)
    return float(xp.mean(xp.astype(hit, xp.float64 if d.dtype == xp.float64 else d.dtype)))


def knn_precision_recall(real, fake, *, k=3, chunk_size=None):
    """Improved precision and recall of generated samples (Kynkäänniemi et al., 2019).

    Parameters
    ----------
    real : array, shape (n_real, ...)
        Reference (data) samples or their features.
    fake : array, shape (n_fake, ...)
        Generated samples or features, same flattened dimension.
    k : int, default=3
        Neighbourhood size (k-th nearest neighbour radius, as in (Kynkäänniemi et al., 2019)).
    chunk_size : int, optional
        Rows processed at once (memory ``chunk_size * n * d``); by default about 4M elements.

    Returns
    -------
    precision : float
        Share of ``fake`` inside the union of balls ``B(real_j, r_k(real_j))``.
    recall : float
        Share of ``real`` inside the union of balls ``B(fake_j, r_k(fake_j))``.
    """
    real = _flat(real, "real", min_samples=2)
    fake = _flat(fake, "fake", min_samples=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"fake has dimension {fake.shape[1]}, real has {real.shape[1]}")
    k = check_int(k, "k", min_value=1)
    if k >= min(real.shape[0], fake.shape[0]):
        raise ValueError(f"k must be smaller than the number of samples in real and fake, got "
                         f"k={k} with {real.shape[0]} and {fake.shape[0]}")
    if chunk_size is None:
        n_max = max(real.shape[0], fake.shape[0])
        chunk_size = max(1, (1 << 22) // (n_max * real.shape[1]))
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    r_real = _kth_radius(real, k, chunk_size)
    r_fake = _kth_radius(fake, k, chunk_size)
    precision = _coverage(fake, real, r_real, chunk_size)
    recall = _coverage(real, fake, r_fake, chunk_size)
    return precision, recall
