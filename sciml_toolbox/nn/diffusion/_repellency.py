"""Sparse repellency (SPELL) and a dense particle-guidance-style repulsion.

SPELL [1]_ protects a set ``S = union_k B(z_k, r)`` of balls around reference points. At every
sampling step the denoiser's estimate of the final image ``x0_hat`` (Tweedie's formula) is
corrected by

.. math::

    \\Delta(\\hat x_0) = \\sum_k \\operatorname{relu}\\Big(\\frac{r}{\\lVert \\hat x_0 - z_k\\rVert}
    - 1\\Big) (\\hat x_0 - z_k),

which moves ``x0_hat`` radially to the border of a ball it is in and is exactly zero outside all
balls (hence *sparse*: most trajectories are never touched). The corrected estimate is
``x0_hat + lambda * Delta`` with an overcompensation ``lambda`` (1.6 in [1]_).

References
----------
.. [1] M. Kirchhof, J. Thornton, L. Béthune, P. Ablin, E. Ndiaye, M. Cuturi. "Shielded Diffusion:
   Generating Novel and Diverse Images using Sparse Repellency". ICML 2025, arXiv:2410.06025.
.. [2] G. Corso, Y. Xu, V. de Bortoli, R. Barzilay, T. Jaakkola. "Particle Guidance: non-I.I.D.
   Diverse Sampling with Diffusion Models". ICLR 2024, arXiv:2310.13102.
"""

from __future__ import annotations

import math

import numpy as np

from ..._array_api import device, from_numpy, get_namespace, namespace_name, to_numpy
from ..._numerics import (
    bias_minus_2_cross,
    lloyd_kmeans,
    nearest_centre,
    segment_max,
    segment_sum,
)
from ..._optional import import_optional
from ..._validation import (
    check_array,
    check_int,
    check_option,
    check_positive,
    check_scalar,
)

__all__ = ["SparseRepellency", "DenseRepulsion", "sparse_repellency_delta"]

# number of elements of the (queries, references) distance block built at once (chunk_size=None)
_BLOCK_ELEMENTS = 1 << 21
# number of elements of the (pairs, dim) block of exact differences built at once
_MAX_BLOCK = 1 << 22
# the cells fall back to one plain scan when the groups would still scan more than this share
# of (query, reference) pairs: smaller products and gathers cost more per pair
_FALLBACK = 0.6


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _flatten(x, name):
    xp = get_namespace(x)
    if x.ndim < 2:
        raise ValueError(f"{name} must have a leading batch axis, got shape {tuple(x.shape)}")
    return xp.reshape(x, (x.shape[0], -1))


# ------------------------------------------------------------------------------------------
# the few operations outside the array API standard (one fast path each, generic fallback)
# ------------------------------------------------------------------------------------------
def _expansion_slack(xsq, zsq_max, d, r2, xp, dtype):
    """Per-row margin covering the rounding of ``|x|^2 + |z|^2 - 2 x.z`` (below ``d eps`` times
    ``|x|^2 + |z|^2``), so that thresholding the expansion never drops a true candidate."""
    eps = float(xp.finfo(dtype).eps)
    return 8.0 * d * eps * (xsq + zsq_max) + 8.0 * eps * r2


def _exact_pairs_delta(x, z, rows, cols, radius, n, xp):
    """Correction and counts from the exact differences of candidate pairs ``(rows, cols)``."""
    diff = xp.take(x, rows, axis=0) - xp.take(z, cols, axis=0)
    dist = xp.sqrt(xp.sum(diff * diff, axis=1))
    inside = (dist < radius) & (dist > 0)
    w = xp.where(inside, radius / xp.where(inside, dist, xp.ones_like(dist)) - 1.0, 0.0)
    delta = segment_sum(w[:, None] * diff, rows, n, xp)
    counts = segment_sum(xp.astype(inside, xp.int64), rows, n, xp)
    return delta, counts


def sparse_repellency_delta(x, reference, radius, *, chunk_size=None, reference_sqnorm=None):
    """The SPELL correction of a batch against a reference set, by exact chunked search.

    Computes ``Delta_i = sum_k relu(r / ||x_i - z_k|| - 1) (x_i - z_k)`` (Kirchhof et al.,
    2025). Candidates are found chunk by chunk by thresholding ``||z||^2 - 2 x.z`` against
    ``r^2 - ||x||^2`` (one fused matrix product per chunk, in the dtype of ``x``, with a margin
    covering its rounding); the correction is then evaluated from the exact differences of the
    candidate pairs only, so a point inside one ball lands on its border to machine precision
    and queries outside every ball cost nothing beyond the product. Pairs at distance 0 are
    ignored (the direction is undefined).

    Parameters
    ----------
    x : array, shape (n, d)
        Queries (x0 estimates), any array-API namespace.
    reference : array, shape (m, d)
        Ball centres, same namespace, device and dtype as ``x``.
    radius : float
        Ball radius ``r`` > 0.
    chunk_size : int or None, default=None
        Number of references compared at once (memory ``n * chunk_size``); ``None`` picks it
        so that the distance block holds about two million entries (8 MB in float32).
    reference_sqnorm : array, shape (m,), optional
        Precomputed ``||z_k||^2`` (cache it when the reference is reused).

    Raises
    ------
    ValueError
        If ``radius`` is not a finite number > 0, or ``x``, ``reference`` or
        ``reference_sqnorm`` hold NaN or infinite values, or their shapes do not match.
    TypeError
        If ``x`` and ``reference`` do not share one real floating dtype.

    Returns
    -------
    delta : array, shape (n, d)
        The correction (zero rows for queries outside all balls).
    n_pairs : array of int64, shape (n,)
        Number of balls each query is in.
    """
    radius = check_positive(radius, "radius")
    x = check_array(x, "x", ndim=2, min_samples=0, min_features=0)
    reference = check_array(reference, "reference", ndim=2, min_samples=0, min_features=0)
    get_namespace(x, reference)  # one namespace
    if reference.shape[1] != x.shape[1]:
        raise ValueError(f"reference has dimension {reference.shape[1]}, x has {x.shape[1]}: "
                         "both must have shape (., d)")
    if reference.dtype != x.dtype:
        raise TypeError(f"x ({x.dtype}) and reference ({reference.dtype}) must have the same "
                        "dtype")
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1, allow_none=True)
    if reference_sqnorm is not None:
        reference_sqnorm = check_array(reference_sqnorm, "reference_sqnorm", ndim=1,
                                       min_samples=0)
        if reference_sqnorm.shape[0] != reference.shape[0]:
            raise ValueError(f"reference_sqnorm must have shape ({reference.shape[0]},), got "
                             f"{tuple(reference_sqnorm.shape)}")
    return _delta_exact(x, reference, radius, chunk_size=chunk_size,
                        reference_sqnorm=reference_sqnorm)


def _delta_exact(x, reference, radius, *, chunk_size=None, reference_sqnorm=None):
    """:func:`sparse_repellency_delta` without the input checks (inputs already validated)."""
    xp = get_namespace(x, reference)
    n, d = x.shape
    m = reference.shape[0]
    if m == 0 or n == 0:
        return xp.zeros_like(x), xp.zeros((n,), dtype=xp.int64, device=device(x))
    if reference_sqnorm is None:
        reference_sqnorm = xp.sum(reference * reference, axis=1)
    if chunk_size is None:
        chunk_size = max(256, _BLOCK_ELEMENTS // max(1, n))
    r2 = float(radius) ** 2
    xsq = xp.sum(x * x, axis=1)
    zsq_max = xp.max(reference_sqnorm)
    # candidate test  ||z||^2 - 2 x.z < r^2 - ||x||^2 + slack, one threshold per query
    thr = (r2 - xsq + _expansion_slack(xsq, zsq_max, d, r2, xp, x.dtype))[:, None]
    piece = max(1, _MAX_BLOCK // max(1, d))
    delta = counts = None
    for start in range(0, m, chunk_size):
        stop = min(start + chunk_size, m)
        z = reference[start:stop, ...]
        cand = bias_minus_2_cross(x, z, reference_sqnorm[start:stop], xp) < thr
        rows, cols = xp.nonzero(cand)
        for a in range(0, rows.shape[0], piece):
            b = min(a + piece, rows.shape[0])
            dd, cc = _exact_pairs_delta(x, z, rows[a:b], cols[a:b], radius, n, xp)
            delta = dd if delta is None else delta + dd
            counts = cc if counts is None else counts + cc
    if delta is None:
        return xp.zeros_like(x), xp.zeros((n,), dtype=xp.int64, device=device(x))
    return delta, counts


class _CellPartition:
    """References grouped into k-means cells: an exact bound that skips most of the search.

    A query ``x`` can be within ``r`` of a reference of cell ``b`` only if
    ``||x - c_b|| < R_b + r`` (triangle inequality), with ``c_b`` the cell's centre and ``R_b``
    the largest distance of its members to it. Each call compares the queries with the centres
    (one small product), splits the queries that can reach any cell into a few groups by the
    coarse group of their nearest centre, and runs the exact search
    (:func:`sparse_repellency_delta`) of each group against the members of the cells its
    queries can reach. A step where every estimate is far from the reference costs the small
    product only. Nothing is approximated: the bound only decides what is skipped.

    The cells come from a few Lloyd iterations on a strided subsample (at most 32 points per
    cell), in the reference's own namespace and on its device; the references are stored
    sorted by cell. The query groups are a k-means of the centres into ``n_groups``. When the
    cells would leave more than 60% of the work (references without cluster structure), the
    call falls back to one search of the reachable queries against all references.
    """

    def __init__(self, reference, reference_sqnorm, n_cells, *, n_groups=8, chunk_rows=65536):
        xp = get_namespace(reference)
        m, d = reference.shape
        k = max(1, min(int(n_cells), m))
        sub = reference[:: max(1, m // (32 * k)), ...]
        centres, _ = lloyd_kmeans(sub, k)
        lab = nearest_centre(reference, centres)
        order = xp.argsort(lab, stable=True)
        # the caller's order too: a plain scan of it is faster than of the cell-sorted copy
        self.unsorted, self.unsorted_sqnorm = reference, reference_sqnorm
        self.reference = xp.take(reference, order, axis=0)
        self.sqnorm = xp.take(reference_sqnorm, order, axis=0)
        self.cell = xp.take(lab, order, axis=0)
        # exact member-to-centre distances (not the expansion), inflated by their rounding
        dist = xp.concat([
            xp.sqrt(xp.sum((self.reference[a:min(a + chunk_rows, m), ...]
                            - xp.take(centres, self.cell[a:min(a + chunk_rows, m)], axis=0))
                           ** 2, axis=1))
            for a in range(0, m, chunk_rows)
        ])
        eps = float(xp.finfo(reference.dtype).eps)
        k = centres.shape[0]
        self.cell_radius = segment_max(dist, self.cell, k, xp) * (1.0 + 4.0 * d * eps)
        self.centres = centres
        self.centre_sqnorm = xp.sum(centres * centres, axis=1)
        self.centre_sqnorm_max = xp.max(self.centre_sqnorm)
        ones = xp.ones((m,), dtype=reference.dtype, device=device(reference))
        self.cell_size = segment_sum(ones, self.cell, k, xp)
        self.n_groups = max(1, min(int(n_groups), k))
        _, self.group = lloyd_kmeans(centres, self.n_groups)

    def search(self, x, radius, chunk_size=None):
        """``(delta, counts)`` of :func:`sparse_repellency_delta` against the whole reference."""
        xp = get_namespace(x)
        n, d = x.shape
        m = self.reference.shape[0]
        r = float(radius)
        dev = device(x)
        delta = xp.zeros_like(x)
        counts = xp.zeros((n,), dtype=xp.int64, device=dev)
        xsq = xp.sum(x * x, axis=1)
        reach = self.cell_radius + r
        slack = _expansion_slack(xsq, self.centre_sqnorm_max, d, r * r, xp, x.dtype)
        score = bias_minus_2_cross(x, self.centres, self.centre_sqnorm, xp)  # + |x|^2: dist^2
        near = score < (reach * reach)[None, :] - xsq[:, None] + slack[:, None]
        active = xp.any(near, axis=1)
        # group of each query (that of its nearest centre); queries that reach no cell: none
        n_groups = self.n_groups
        group = xp.where(active, xp.take(self.group, xp.argmin(score, axis=1), axis=0),
                         n_groups)
        member = xp.astype(group[None, :] == xp.arange(n_groups, device=dev)[:, None], x.dtype)
        reach_g = (member @ xp.astype(near, x.dtype)) > 0  # (groups, cells)
        work = xp.astype(reach_g, x.dtype) @ self.cell_size  # references each group scans
        host = to_numpy(xp.concat([xp.sum(member, axis=1), work]))  # the one host transfer
        sizes = [int(round(float(v))) for v in host[:n_groups]]
        work = [int(round(float(v))) for v in host[n_groups:]]
        if sum(sizes) == 0:
            return delta, counts
        if sum(a * b for a, b in zip(sizes, work, strict=True)) > _FALLBACK * sum(sizes) * m:
            # the cells barely prune (e.g. references without cluster structure): one search
            rows = xp.nonzero(active)[0]
            z, zsq = self.unsorted, self.unsorted_sqnorm
            if rows.shape[0] == n:
                return _delta_exact(x, z, radius, chunk_size=chunk_size,
                                               reference_sqnorm=zsq)
            dg, cg = _delta_exact(xp.take(x, rows, axis=0), z, radius,
                                             chunk_size=chunk_size, reference_sqnorm=zsq)
            return segment_sum(dg, rows, n, xp), segment_sum(cg, rows, n, xp)
        order = xp.argsort(group, stable=True)
        xs = xp.take(x, order, axis=0)
        start = 0
        for g in range(n_groups):
            stop = start + sizes[g]
            if sizes[g] == 0 or work[g] == 0:
                start = stop
                continue
            if work[g] > 0.75 * m:  # gathering would cost more than it saves
                z, zsq = self.reference, self.sqnorm
            else:
                idx = xp.nonzero(xp.take(reach_g[g, ...], self.cell, axis=0))[0]
                z, zsq = xp.take(self.reference, idx, axis=0), xp.take(self.sqnorm, idx, axis=0)
            dg, cg = _delta_exact(xs[start:stop, ...], z, radius,
                                             chunk_size=chunk_size, reference_sqnorm=zsq)
            delta[start:stop, ...] = dg
            counts[start:stop] = cg
            start = stop
        # back to the caller's order (``order`` is a permutation)
        return segment_sum(delta, order, n, xp), segment_sum(counts, order, n, xp)


class _ActivityMixin:
    """Records how often and how strongly a correction acts (one entry per call)."""

    def reset_stats(self):
        """Forget the recorded activity."""
        self.stats_ = {
            "t": [],
            "active_fraction": [],
            "mean_norm": [],
            "max_norm": [],
            "relative_norm": [],
        }
        return self

    def _record(self, x, scaled_delta, t):
        if getattr(t, "ndim", None) == 0 and hasattr(t, "item"):  # a 0-d tensor or array
            t = t.item()
        t = check_scalar(t, "t", allow_none=True)  # checked before anything is recorded
        if not self.record_stats:
            return
        if not hasattr(self, "stats_"):
            self.reset_stats()
        xp = get_namespace(x)
        norm = xp.sqrt(xp.sum(scaled_delta * scaled_delta, axis=1))
        xnorm = xp.sqrt(xp.sum(x * x, axis=1))
        active = norm > 0
        n_act = int(xp.sum(xp.astype(active, xp.int64)))
        self.stats_["t"].append(float("nan") if t is None else float(t))
        self.stats_["active_fraction"].append(n_act / max(1, x.shape[0]))
        if n_act:
            mean = float(xp.sum(norm)) / n_act
            rel = float(xp.sum(xp.where(active, norm / (xnorm + 1e-12), 0.0))) / n_act
            mx = float(xp.max(norm))
        else:
            mean = rel = mx = 0.0
        self.stats_["mean_norm"].append(mean)
        self.stats_["max_norm"].append(mx)
        self.stats_["relative_norm"].append(rel)

    def activity(self):
        """Recorded activity as NumPy arrays.

        Returns
        -------
        stats : dict of str to ndarray, each of shape (n_calls,)
            ``t`` (the time passed to the call, NaN if none), ``active_fraction`` (share of the
            batch corrected), ``mean_norm`` and ``max_norm`` (norm of the applied correction
            ``lambda * Delta`` over corrected samples), ``relative_norm`` (that norm divided by
            ``||x0_hat||``, mean over corrected samples).
        """
        stats = getattr(self, "stats_", None)
        if stats is None:
            self.reset_stats()
            stats = self.stats_
        return {k: np.asarray(v, dtype=float) for k, v in stats.items()}


class SparseRepellency(_ActivityMixin):
    """SPELL: repel x0 estimates from balls around protected references (Kirchhof et al., 2025).

    Calling the object on a batch of x0 estimates returns ``x0_hat + overcompensation * Delta``
    where ``Delta`` (see :meth:`correction`) moves every estimate to the border of each ball
    ``B(z_k, radius)`` it lies in and is zero outside all balls. Plug it into
    :func:`ddpm_sample` / :func:`ddim_sample` (``repellency=``) or a diffusers scheduler
    (:class:`SpellScheduler`).

    Parameters
    ----------
    reference : array of shape (n_ref, \\*sample_shape) or (n_ref, d), or None
        Protected points, in the space where the sampler's x0 estimates live (pixels or
        latents). Any array-API namespace; it is moved once to the namespace, device and dtype
        of the first batch it meets. ``None`` only with ``dynamic=True``.
    radius : float
        Radius ``r`` of the protected balls (L2, same units as the samples).
    overcompensation : float, default=1.6
        Factor ``lambda`` of the correction; 1 lands exactly on the border, Kirchhof et al.
        (2025) use 1.6.
    dynamic : bool, default=False
        Also repel every sample from the other members of its batch (and, with ``remember``,
        from the outputs of earlier batches): diversity within a batch (Kirchhof et al., 2025).
    index : {'exact', 'faiss'}, default='exact'
        ``'exact'``: chunked matrix-product search in the caller's namespace (torch on CPU or
        GPU, NumPy, ...). ``'faiss'``: a faiss index on the CPU for large reference sets
        (optional dependency ``faiss-cpu``); the correction is then computed from the exact
        differences of the pairs it returns.
    chunk_size : int or None, default=None
        References compared at once by the exact search (``None``: about two million
        distances per block, see :func:`sparse_repellency_delta`).
    n_cells : int, 'auto' or None, default='auto'
        The exact search first groups the references into ``n_cells`` k-means cells (once,
        cached) and, at every call, skips the cells that no query can reach by the triangle
        inequality (``||x - c|| >= R + r``); the result is the same as without cells.
        ``'auto'``: ``min(1024, n_ref // 16)`` cells when there are at least 4096 references,
        none below; ``None``: no cells.
    faiss_factory : str, default='Flat'
        ``faiss.index_factory`` description, e.g. ``'Flat'`` (exact), ``'IVF1024,Flat'`` or
        ``'HNSW32'`` (approximate: balls may be missed).
    faiss_nprobe : int, default=16
        Inverted lists visited by an IVF index.
    n_passes : int, default=1
        Re-evaluate the correction at the corrected point up to ``n_passes`` times (stopping
        when no estimate is in a ball). One pass is the method of the paper; more passes
        resolve overlapping balls and jumps from one ball into another (an extension).
    remember : bool, default=False
        In dynamic mode, add each batch's final samples to the reference (the samplers call
        :meth:`end_batch`).
    record_stats : bool, default=True
        Record the activity of every call (see :meth:`activity`).

    Attributes
    ----------
    stats_ : dict of lists
        Activity per call (see :meth:`activity`).
    n_reference_ : int
        Current number of static references (including remembered samples).

    Notes
    -----
    For DDPM ancestral sampling the last step returns the corrected x0 estimate, so a sample
    that is in one ball at that step ends outside it: the share of samples in the shield
    drops to (nearly) zero. Probability-flow / DDIM samplers get a weaker guarantee because
    ``x0_hat`` is a conditional mean (Kirchhof et al., 2025). Where balls overlap the sum of
    the corrections need not leave every ball (``n_passes`` helps). A query exactly equal to a
    reference gets no correction (no direction is defined).

    Examples
    --------
    >>> import torch
    >>> from sciml_toolbox.nn.diffusion import SparseRepellency
    >>> spell = SparseRepellency(torch.zeros(1, 2), radius=1.0, overcompensation=1.0)
    >>> spell(torch.tensor([[0.5, 0.0], [3.0, 0.0]]))
    tensor([[1., 0.],
            [3., 0.]])
    """

    def __init__(
        self,
        reference,
        radius,
        overcompensation=1.6,
        *,
        dynamic=False,
        index="exact",
        chunk_size=None,
        n_cells="auto",
        faiss_factory="Flat",
        faiss_nprobe=16,
        n_passes=1,
        remember=False,
        record_stats=True,
    ):
        self.radius = check_positive(radius, "radius")
        self.overcompensation = check_positive(overcompensation, "overcompensation")
        if not isinstance(dynamic, bool):
            raise TypeError(f"dynamic must be a bool, got {dynamic!r}")
        self.dynamic = dynamic
        self.index = check_option(index, "index", ("exact", "faiss"))
        self.chunk_size = (None if chunk_size is None
                           else check_int(chunk_size, "chunk_size", min_value=1))
        if not (n_cells is None or (isinstance(n_cells, str) and n_cells == "auto")):
            n_cells = check_int(n_cells, "n_cells", min_value=1)
        self.n_cells = n_cells
        if not isinstance(faiss_factory, str):
            raise TypeError(f"faiss_factory must be a str, got {faiss_factory!r}")
        self.faiss_factory = faiss_factory
        self.faiss_nprobe = check_int(faiss_nprobe, "faiss_nprobe", min_value=1)
        self.n_passes = check_int(n_passes, "n_passes", min_value=1)
        self.remember = _check_bool(remember, "remember")
        self.record_stats = _check_bool(record_stats, "record_stats")
        if reference is None:
            if not dynamic:
                raise ValueError("reference must be given (an array of protected points) unless "
                                 "dynamic=True")
            self.reference = None
            self._dim = None
        else:
            reference = check_array(reference, "reference", ndim=None, min_samples=1)
            if reference.ndim < 2:
                raise ValueError("reference must have shape (n_ref, ...) with at least 2 "
                                 f"dimensions, got shape {tuple(reference.shape)}")
            self.reference = _flatten(reference, "reference")
            self._dim = self.reference.shape[1]
        self._cache = None  # (key, reference in the working namespace, squared norms, cells)
        self._faiss = None
        self._faiss_ref = None
        self.reset_stats()

    # --------------------------------------------------------------------------------------
    @property
    def n_reference_(self):
        return 0 if self.reference is None else int(self.reference.shape[0])

    def _check_query(self, x0_hat):
        x0_hat = check_array(x0_hat, "x0_hat", ndim=None)
        if x0_hat.ndim < 2:
            raise ValueError("x0_hat must have a leading batch axis, shape (batch, ...), got "
                             f"shape {tuple(x0_hat.shape)}")
        flat = _flatten(x0_hat, "x0_hat")
        if self._dim is not None and flat.shape[1] != self._dim:
            raise ValueError(
                f"x0_hat has {flat.shape[1]} features per sample (shape "
                f"{tuple(x0_hat.shape)}) but the reference has dimension {self._dim}"
            )
        return x0_hat, flat

    def _working_reference(self, like):
        xp = get_namespace(like)
        key = (namespace_name(xp), str(device(like)), str(like.dtype), self.n_reference_)
        if self._cache is None or self._cache[0] != key:
            ref = self.reference
            if namespace_name(get_namespace(ref)) == namespace_name(xp):
                ref = xp.asarray(ref, device=device(like))
                ref = xp.astype(ref, like.dtype) if ref.dtype != like.dtype else ref
            else:
                ref = from_numpy(to_numpy(ref), like)
            sqnorm = xp.sum(ref * ref, axis=1)
            m = ref.shape[0]
            n_cells = self.n_cells
            if n_cells == "auto":
                n_cells = min(1024, m // 16) if m >= 4096 else None
            cells = None if n_cells is None else _CellPartition(ref, sqnorm, n_cells)
            self._cache = (key, ref, sqnorm, cells)
        return self._cache[1], self._cache[2], self._cache[3]

    def _faiss_index(self):
        if self._faiss is None:
            faiss = import_optional("faiss", "faiss", feature="index='faiss'",
                                    package="faiss-cpu")
            ref = np.ascontiguousarray(to_numpy(self.reference), dtype=np.float32)
            index = faiss.index_factory(ref.shape[1], self.faiss_factory)
            if not index.is_trained:
                index.train(ref)
            index.add(ref)
            if hasattr(index, "nprobe"):
                index.nprobe = self.faiss_nprobe
            self._faiss = index
            self._faiss_ref = ref
        return self._faiss

    def _static_delta(self, flat):
        """Correction and per-sample ball counts against the static reference."""
        xp = get_namespace(flat)
        if self.reference is None or self.n_reference_ == 0:
            return xp.zeros_like(flat), None
        if self.index == "exact":
            ref, ref_sq, cells = self._working_reference(flat)
            if cells is not None:
                return cells.search(flat, self.radius, chunk_size=self.chunk_size)
            return _delta_exact(flat, ref, self.radius, chunk_size=self.chunk_size,
                                           reference_sqnorm=ref_sq)
        index = self._faiss_index()
        xq = to_numpy(flat)
        lims, _, ids = index.range_search(
            np.ascontiguousarray(xq, dtype=np.float32), float(self.radius**2) * (1 + 1e-4)
        )
        rows = np.repeat(np.arange(xq.shape[0]), np.diff(lims).astype(np.int64))
        ref = to_numpy(self.reference)
        diff = xq[rows] - ref[ids].astype(xq.dtype, copy=False)
        dist = np.sqrt(np.sum(diff * diff, axis=1))
        inside = (dist < self.radius) & (dist > 0)
        w = np.where(inside, self.radius / np.where(inside, dist, 1.0) - 1.0, 0.0)
        delta = np.zeros_like(xq)
        np.add.at(delta, rows, (w[:, None] * diff).astype(xq.dtype, copy=False))
        counts = np.bincount(rows[inside], minlength=xq.shape[0])
        return from_numpy(delta, flat), from_numpy(counts, flat)

    def correction(self, x0_hat):
        """The sparse correction ``Delta`` (without the overcompensation factor).

        Parameters
        ----------
        x0_hat : array, shape (batch, \\*sample_shape)
            Estimates of the final samples; their flattened size must match the reference.

        Returns
        -------
        delta : array, shape (batch, \\*sample_shape)
            ``sum_k relu(r / ||x0_hat - z_k|| - 1) (x0_hat - z_k)``: zero for estimates outside
            all balls; ``x0_hat + delta`` is on the border of the ball when only one contains
            it. In dynamic mode the other batch members count as references.
        """
        x0_hat, flat = self._check_query(x0_hat)
        xp = get_namespace(flat)
        delta, _ = self._static_delta(flat)
        if self.dynamic and flat.shape[0] > 1:
            dyn, _ = _delta_exact(flat, flat, self.radius, chunk_size=self.chunk_size)
            delta = delta + dyn
        return xp.reshape(delta, x0_hat.shape)

    def __call__(self, x0_hat, t=None):
        """Corrected estimates ``x0_hat + overcompensation * Delta``.

        Parameters
        ----------
        x0_hat : array, shape (batch, \\*sample_shape)
            Estimates of the final samples.
        t : float, optional
            Diffusion time of the call (recorded in :attr:`stats_`).

        Returns
        -------
        x0_corrected : array, shape (batch, \\*sample_shape)
            ``x0_hat + overcompensation * Delta`` (repeated ``n_passes`` times). Same
            namespace, device and dtype; rows outside every ball are returned unchanged
            (bitwise).
        """
        out = x0_hat
        for i in range(self.n_passes):
            delta = self.correction(out)
            xp = get_namespace(delta)
            if i > 0 and not bool(xp.any(delta != 0)):
                break
            out = out + self.overcompensation * delta
        if self.record_stats:
            b = x0_hat.shape[0]
            self._record(xp.reshape(x0_hat, (b, -1)), xp.reshape(out - x0_hat, (b, -1)), t)
        return out

    def add_reference(self, points):
        """Append points to the protected set (e.g. samples already generated).

        Parameters
        ----------
        points : array, shape (n, \\*sample_shape) or (n, d)
            New ball centres.

        Returns
        -------
        self : SparseRepellency
        """
        points = check_array(points, "points", ndim=None, min_samples=1)
        flat = _flatten(points, "points")
        if self._dim is not None and flat.shape[1] != self._dim:
            raise ValueError(f"points have dimension {flat.shape[1]}, the reference has "
                             f"dimension {self._dim}")
        if self.reference is None:
            self.reference = flat
            self._dim = flat.shape[1]
        else:
            xp = get_namespace(self.reference)
            if namespace_name(get_namespace(flat)) != namespace_name(xp):
                flat = from_numpy(to_numpy(flat), self.reference)
            else:
                flat = xp.asarray(flat, device=device(self.reference))
                flat = xp.astype(flat, self.reference.dtype)
            self.reference = xp.concat([self.reference, flat], axis=0)
        self._cache = None
        if self._faiss is not None:
            new = np.ascontiguousarray(to_numpy(flat), dtype=np.float32)
            self._faiss.add(new)
            self._faiss_ref = np.concatenate([self._faiss_ref, new])
        return self

    def end_batch(self, samples):
        """Called by the samplers with each batch's final samples (remembered if asked)."""
        if self.dynamic and self.remember:
            self.add_reference(samples)
        return self

    def __repr__(self):
        return (f"SparseRepellency(n_reference={self.n_reference_}, radius={self.radius:g}, "
                f"overcompensation={self.overcompensation:g}, dynamic={self.dynamic}, "
                f"index={self.index!r})")


class DenseRepulsion(_ActivityMixin):
    """Dense pairwise RBF repulsion within a batch, a particle-guidance-style baseline.

    After particle guidance (Corso et al., 2024).

    The correction of sample ``i`` is minus the gradient of the potential
    ``Phi = sum_{i<j} exp(-||x_i - x_j||^2 / h^2)``:
    ``Delta_i = sum_j (2 / h^2) exp(-||x_i - x_j||^2 / h^2) (x_i - x_j)``, applied to the x0
    estimates as ``x0_hat + strength * Delta``. Unlike SPELL it touches every sample at every
    step and costs ``O(batch^2 d)``.

    Parameters
    ----------
    strength : float, default=1.0
        Step size of the repulsion.
    bandwidth : float or None, default=None
        Kernel width ``h``; ``None`` uses the median heuristic ``h^2 = median(d_ij^2) /
        log(batch)`` of SVGD (Liu & Wang, 2016), as in (Corso et al., 2024).
    record_stats : bool, default=True
        Record the activity of every call (see :meth:`activity`).
    """

    def __init__(self, strength=1.0, bandwidth=None, *, record_stats=True):
        self.strength = check_positive(strength, "strength", strict=False)
        self.bandwidth = check_positive(bandwidth, "bandwidth", allow_none=True)
        self.record_stats = _check_bool(record_stats, "record_stats")
        self.reset_stats()

    def correction(self, x0_hat):
        """Minus the gradient of the RBF potential, shape (batch, \\*sample_shape)."""
        x0_hat = check_array(x0_hat, "x0_hat", ndim=None)
        flat = _flatten(x0_hat, "x0_hat")
        xp = get_namespace(flat)
        n = flat.shape[0]
        if n < 2:
            return xp.zeros_like(x0_hat)
        sq = xp.sum(flat * flat, axis=1)
        d2 = xp.clip(sq[:, None] + sq[None, :] - 2.0 * (flat @ xp.matrix_transpose(flat)), 0.0,
                     None)
        if self.bandwidth is None:
            d2_host = to_numpy(d2)
            med = float(np.median(d2_host[np.triu_indices(n, 1)]))
            h2 = max(med / math.log(n), 1e-12)
        else:
            h2 = self.bandwidth**2
        k = xp.exp(-d2 / h2)
        # sum_j k_ij (x_i - x_j) = x_i * sum_j k_ij - (K x)_i
        delta = (2.0 / h2) * (flat * xp.sum(k, axis=1)[:, None] - k @ flat)
        return xp.reshape(delta, x0_hat.shape)

    def __call__(self, x0_hat, t=None):
        """Repelled estimates ``x0_hat + strength * Delta``, same shape as ``x0_hat``."""
        delta = self.correction(x0_hat)
        xp = get_namespace(delta)
        scaled = self.strength * delta
        if self.record_stats:
            self._record(xp.reshape(x0_hat, (x0_hat.shape[0], -1)),
                         xp.reshape(scaled, (x0_hat.shape[0], -1)), t)
        return x0_hat + scaled

    def __repr__(self):
        return f"DenseRepulsion(strength={self.strength:g}, bandwidth={self.bandwidth})"

