"""Conjugate gradients and power iteration on matrix-free operators (array API)."""

from __future__ import annotations

from .._array_api import device, get_namespace, make_generator

__all__ = ["NonPositiveCurvature", "conjugate_gradient", "power_iteration"]


class NonPositiveCurvature(ValueError):
    """Conjugate gradients met a direction ``p`` with ``p^T A p <= 0`` (stored as
    ``curvature``): the operator is not positive definite."""

    def __init__(self, curvature):
        self.curvature = curvature
        super().__init__(f"non-positive curvature: p^T A p = {curvature:.3g}")


def _norm(v, xp):
    return float(xp.sqrt(xp.sum(v * v)))


def conjugate_gradient(matvec, b, *, x0=None, rtol=1e-12, atol=0.0, max_iter=None,
                       precond=None):
    """Solve ``A x = b`` for a symmetric positive definite operator by conjugate gradients.

    No input checks (the public callers validate): ``b``, ``x0`` and ``precond`` share a
    namespace and the shape (n,).

    Parameters
    ----------
    matvec : callable
        ``v -> A @ v`` for arrays of shape (n,).
    b : array, shape (n,)
    x0 : array, shape (n,), optional
        Starting point (default zeros).
    rtol, atol : float
        Stop when ``||b - A x|| <= max(rtol * ||b||, atol)``.
    max_iter : int, optional
        Default ``10 * n``.
    precond : array, shape (n,), optional
        Positive diagonal ``d`` of a Jacobi preconditioner ``M = diag(d)``.

    Returns
    -------
    x : array, shape (n,)
    n_iter : int
    residual : float
        Final ``||b - A x||``.

    Raises
    ------
    NonPositiveCurvature
        A ``ValueError``, if a direction of non-positive curvature is met (``A`` is not
        positive definite).

    References
    ----------
    Hestenes & Stiefel (1952), "Methods of conjugate gradients for solving linear systems";
    Saad (2003), "Iterative methods for sparse linear systems", Alg. 9.1 (preconditioned CG).
    """
    xp = get_namespace(b)
    max_iter = 10 * b.shape[0] if max_iter is None else max_iter
    if x0 is None:
        x = xp.zeros_like(b)
        r = b
    else:
        x = x0
        r = b - matvec(x0)
    res = _norm(r, xp)
    stop = max(rtol * _norm(b, xp), atol)
    if res <= stop:
        return x, 0, res
    zr = r if precond is None else r / precond
    rz = float(xp.sum(r * zr))
    p = zr
    k = 0
    while k < max_iter:
        k += 1
        Ap = matvec(p)
        pAp = float(xp.sum(p * Ap))
        if not pAp > 0.0:
            raise NonPositiveCurvature(pAp)
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        res = _norm(r, xp)
        if res <= stop:
            break
        zr = r if precond is None else r / precond
        rz_new = float(xp.sum(r * zr))
        p = zr + (rz_new / rz) * p
        rz = rz_new
    return x, k, res


def power_iteration(op, n, like, *, n_iter=30, seed=0):
    """Largest absolute eigenvalue of a symmetric operator by power iteration (an estimate).

    Starts from a normalised Gaussian vector and returns ``||op(v)||`` after ``n_iter``
    products, which increases to the largest absolute eigenvalue at the rate
    ``(|lambda_2| / |lambda_1|)^n_iter``: an estimate from below, meant for step sizes (scale
    it by a safety factor), not for the spectrum itself.

    Parameters
    ----------
    op : callable
        ``V -> A @ V`` for arrays of shape (n, 1).
    n : int
        Dimension of the operator.
    like : array
        Array whose namespace, device and dtype the start vector takes.
    n_iter : int, default=30
        Number of products with ``op``.
    seed : int, default=0
        Seed of the start vector.

    Returns
    -------
    lam : float
        The estimate; 0.0 if ``op`` returns a zero vector.
    """
    xp = get_namespace(like)
    v = make_generator(seed, xp, device(like)).normal((n, 1), dtype=like.dtype)
    v = v / xp.linalg.vector_norm(v)
    lam = 0.0
    for _ in range(n_iter):
        w = op(v)
        lam = float(xp.linalg.vector_norm(w))
        if lam == 0.0:
            return 0.0
        v = w / lam
    return lam
