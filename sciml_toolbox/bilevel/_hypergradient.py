"""Hypergradient estimators: implicit differentiation, preconditioned, reparameterized, unrolled.

For h(x) = F(z*(x), x) with z*(x) = argmin_z G(z, x), the implicit function theorem (IFT) gives

    grad h(x) = d_x F - (d_x d_z G)^T (d_zz G)^{-1} d_z F,

evaluated at z*(x). In practice the inner problem is solved only approximately, at z_hat, and
the error of the IFT estimate is O(||z_hat - z*||). Ye, Peyre, Cremers & Ablin (2024),
"Enhancing hypergradients estimation: a study of preconditioning and reparameterization"
(AISTATS) study two remedies, both implemented here:

* preconditioning: one step z_tilde = z_hat - P^{-1} d_z G(z_hat, x) before the IFT. With the
  Newton preconditioner P = d_zz G the error becomes O(||z_hat - z*||^2); with the Jacobi
  preconditioner P = diag(d_zz G) it stays linear, usually with a smaller constant.
* reparameterization z = phi(u, x): the inner problem is read in u and the IFT applied there,
  then mapped back (dz/dx = d_u phi du/dx + d_x phi). Two maps of the paper are provided:
  ``reparam_exp``, phi(u) = sign(z_hat) exp(u), and ``reparam_diag``, the diagonal rescaling
  phi(u, x) = diag(d_zz G(z_hat, x))^{-1} u.

Unrolled (reverse-mode) differentiation through gradient descent is the classical baseline
(Domke 2012; Maclaurin et al. 2015).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

from sklearn.exceptions import ConvergenceWarning

from .._array_api import cholesky, get_namespace, solve
from .._numerics import NonPositiveCurvature
from .._numerics import conjugate_gradient as _cg
from .._validation import check_array, check_int, check_option, check_positive

__all__ = [
    "HYPERGRADIENT_METHODS",
    "hypergradient",
    "unrolled_hypergradient",
    "solve_inner",
    "InnerResult",
    "conjugate_gradient",
]

#: Names accepted by :func:`hypergradient`'s ``method``.
HYPERGRADIENT_METHODS = ("ift", "newton", "jacobi", "reparam_exp", "reparam_diag")


def _norm(v, xp):
    return float(xp.sqrt(xp.sum(v * v)))


def conjugate_gradient(matvec, b, *, x0=None, rtol=1e-12, atol=0.0, max_iter=None,
                       precond=None):
    """Solve ``A x = b`` for a symmetric positive definite operator by conjugate gradients.

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
        Positive diagonal ``d`` of a Jacobi preconditioner ``M = diag(d)`` (for example the
        diagonal of A): preconditioned CG, whose speed depends on the conditioning of
        ``M^{-1/2} A M^{-1/2}`` instead of ``A``.

    Returns
    -------
    x : array, shape (n,)
    n_iter : int
    residual : float
        Final ``||b - A x||``.

    Raises
    ------
    ValueError
        If a direction of non-positive curvature is met (the operator is not positive
        definite: the inner problem is not strongly convex).

    References
    ----------
    Hestenes & Stiefel (1952), "Methods of conjugate gradients for solving linear systems";
    Saad (2003), "Iterative methods for sparse linear systems", Alg. 9.1 (preconditioned CG).
    """
    if not callable(matvec):
        raise TypeError(f"matvec must be callable (v -> A @ v), got {type(matvec).__name__}")
    b = check_array(b, "b", ndim=1)
    n = b.shape[0]
    for name, a in (("x0", x0), ("precond", precond)):
        if a is not None:
            a = check_array(a, name, ndim=1)
            if a.shape != b.shape:
                raise ValueError(f"{name} must have the shape {tuple(b.shape)} of b, got "
                                 f"{tuple(a.shape)}")
            if name == "x0":
                x0 = a
            else:
                precond = a
    xp = get_namespace(b)
    if precond is not None and not bool(xp.all(precond > 0)):
        raise ValueError("precond must hold a positive diagonal")
    rtol = check_positive(rtol, "rtol", strict=False)
    atol = check_positive(atol, "atol", strict=False)
    max_iter = 10 * n if max_iter is None else check_int(max_iter, "max_iter", min_value=0)
    try:
        return _cg(matvec, b, x0=x0, rtol=rtol, atol=atol, max_iter=max_iter, precond=precond)
    except NonPositiveCurvature as exc:
        raise ValueError(
            "the inner problem is not strongly convex: its Hessian has a direction of "
            f"non-positive curvature (p^T H p = {exc.curvature:.3g})"
        ) from None


_REQUIRED = ("inner_grad", "inner_hvp", "inner_cross_vjp", "outer_grad_z", "outer_grad_x")


def _check_problem(problem):
    from ._problems import BilevelProblem

    if not isinstance(problem, BilevelProblem):
        raise TypeError(f"problem must be a BilevelProblem, got {type(problem).__name__}")
    missing = [m for m in _REQUIRED
               if getattr(type(problem), m) is getattr(BilevelProblem, m)]
    if missing:
        raise TypeError(f"problem: {type(problem).__name__} does not implement "
                        f"{', '.join(missing)} (see the BilevelProblem protocol)")


def _check_z_x(problem, z, x, z_name="z"):
    _check_problem(problem)
    z = check_array(z, z_name, ndim=1)
    x = check_array(x, "x", ndim=1)
    n_in, n_out = getattr(problem, "n_inner", None), getattr(problem, "n_outer", None)
    if n_in is not None and z.shape[0] != n_in:
        raise ValueError(f"{z_name} must have shape ({n_in},), got {tuple(z.shape)}")
    if n_out is not None and x.shape[0] != n_out:
        raise ValueError(f"x must have shape ({n_out},), got {tuple(x.shape)}")
    return z, x


def _spd_solve(problem, z, x, b, *, solver, tol, max_iter, shift=None, jacobi=True):
    """Solve (d_zz G(z, x) + diag(shift)) v = b."""
    xp = get_namespace(b)
    if solver == "direct":
        H = problem.inner_hessian(z, x)
        if shift is not None:
            # the reparameterized Hessian need not be definite away from z*: plain solve
            H = H + xp.eye(H.shape[0], dtype=H.dtype, device=H.device) * shift[None, :]
            return solve(H, b)
        try:
            L = cholesky(H)
        except Exception as exc:  # noqa: BLE001 - backend-specific LinAlgError types
            raise ValueError(
                "the inner problem is not strongly convex at z: its Hessian is not positive "
                "definite"
            ) from exc
        if not bool(xp.all(xp.isfinite(L))):
            raise ValueError(
                "the inner problem is not strongly convex at z: its Hessian is not positive "
                "definite"
            )
        return solve(H, b)

    def matvec(v):
        out = problem.inner_hvp(z, x, v)
        return out if shift is None else out + shift * v

    try:
        cheap = getattr(problem, "cheap_hessian_diag", False)
        d = problem.inner_hessian_diag(z, x) if jacobi and cheap else None
        if d is not None and shift is not None:
            d = d + shift
        if d is not None and not bool(xp.all(d > 0)):
            d = None
        v, _, _ = conjugate_gradient(matvec, b, rtol=tol, max_iter=max_iter, precond=d)
    except ValueError:
        if shift is None:
            raise
        # the reparameterized Hessian may be indefinite away from z*: CG on the normal
        # equations M^2 v = M b (M is symmetric)
        v, _, _ = conjugate_gradient(lambda u: matvec(matvec(u)), matvec(b), rtol=tol,
                                     max_iter=max_iter)
    return v


def hypergradient(problem, z, x, method="ift", *, solver="direct", tol=1e-12, max_iter=None):
    """Estimate the hypergradient grad h(x) from an approximate inner solution ``z``.

    Parameters
    ----------
    problem : BilevelProblem
        Derivatives of the inner G and outer F (see :class:`BilevelProblem`).
    z : array, shape (n_inner,)
        Approximate inner solution z_hat (any iterate of an inner solver).
    x : array, shape (n_outer,)
        Hyperparameters.
    method : {'ift', 'newton', 'jacobi', 'reparam_exp', 'reparam_diag'}, default='ift'
        - ``'ift'``: plain implicit differentiation at ``z``; error O(||z - z*||).
        - ``'newton'``: IFT after one Newton step z - H^{-1} d_z G; error O(||z - z*||^2),
          exact for a quadratic inner problem (Ye et al. 2024, super efficiency).
        - ``'jacobi'``: IFT after one step z - diag(H)^{-1} d_z G.
        - ``'reparam_exp'``: IFT in u for z = sign(z_hat) exp(u); equivalently the IFT with
          the Hessian H + diag(d_z G / z). Coordinates with ``abs(z_i) <= 1e-8 max(abs(z))``
          (which this map cannot represent) get no shift. The shifted matrix can be
          indefinite far from z*: 'direct' uses a plain solve, 'cg' falls back to the normal
          equations.
        - ``'reparam_diag'``: IFT in u for z = diag(H(z_hat, x))^{-1} u, with the x-dependence
          of the rescaling kept; needs ``problem.inner_hessian_diag_cross_vjp``.
    solver : {'direct', 'cg'}, default='direct'
        Linear systems by a dense Cholesky-checked solve (forms the Hessian) or by conjugate
        gradients on Hessian-vector products (matrix-free, Jacobi-preconditioned by
        ``problem.inner_hessian_diag`` when it is positive).
    tol : float, default=1e-12
        Relative residual of the conjugate-gradient solves.
    max_iter : int, optional
        Conjugate-gradient iterations (default 10 * n_inner).

    Returns
    -------
    grad : array, shape (n_outer,)
        The estimate, in the namespace and on the device of ``z``.

    Raises
    ------
    ValueError
        On an unknown method or solver, non-finite or wrongly shaped ``z`` / ``x``, a negative
        ``tol``, or an inner Hessian that is not positive definite.

    References
    ----------
    Ye, Peyre, Cremers & Ablin (2024), AISTATS; Pedregosa (2016), "Hyperparameter optimization
    with approximate gradient", ICML.
    """
    check_option(method, "method", HYPERGRADIENT_METHODS)
    check_option(solver, "solver", ("direct", "cg"))
    tol = check_positive(tol, "tol", strict=False)
    max_iter = check_int(max_iter, "max_iter", min_value=1, allow_none=True)
    z, x = _check_z_x(problem, z, x)
    xp = get_namespace(z, x)
    kw = dict(solver=solver, tol=tol, max_iter=max_iter)

    if method in ("newton", "jacobi"):
        g = problem.inner_grad(z, x)
        if method == "newton":
            step = _spd_solve(problem, z, x, g, **kw)
        else:
            d = problem.inner_hessian_diag(z, x)
            if not bool(xp.all(d > 0)):
                raise ValueError(
                    "the inner problem is not strongly convex at z: the Hessian diagonal has "
                    "non-positive entries"
                )
            step = g / d
        z = z - step
        method = "ift"

    gz = problem.outer_grad_z(z, x)
    gx = problem.outer_grad_x(z, x)
    if method == "ift":
        v = _spd_solve(problem, z, x, gz, **kw)
        return gx - problem.inner_cross_vjp(z, x, v)
    g = problem.inner_grad(z, x)
    if method == "reparam_exp":
        # coordinates at (numerically) zero cannot be written sign(z) exp(u): no shift there
        eps = 1e-8 if z.dtype == xp.float64 else 1e-4
        small = xp.abs(z) <= eps * xp.max(xp.abs(z))
        shift = xp.where(small, xp.zeros_like(z), g / xp.where(small, xp.ones_like(z), z))
        v = _spd_solve(problem, z, x, gz, shift=shift, **kw)
        return gx - problem.inner_cross_vjp(z, x, v)
    # reparam_diag: grad = IFT + (d_x diag H)^T diag(g / d) H^{-1} d_z F
    v = _spd_solve(problem, z, x, gz, **kw)
    d = problem.inner_hessian_diag(z, x)
    return gx - problem.inner_cross_vjp(z, x, v) + problem.inner_hessian_diag_cross_vjp(
        z, x, (g / d) * v
    )


def unrolled_hypergradient(problem, x, z0, *, n_iter, step):
    """Reverse-mode differentiation through ``n_iter`` steps of gradient descent.

    The inner iterates z_{t+1} = z_t - step * d_z G(z_t, x) are stored (memory O(n_iter *
    n_inner)) and the adjoint recursion v_t = v_{t+1} - step * H(z_t) v_{t+1} accumulates
    grad -= step * (d_x d_z G(z_t))^T v_{t+1}, starting from v_T = d_z F(z_T).

    Parameters
    ----------
    problem : BilevelProblem
    x : array, shape (n_outer,)
    z0 : array, shape (n_inner,)
        Starting point (independent of x).
    n_iter : int
        Number of gradient steps (>= 0).
    step : float
        Step size (> 0).

    Returns
    -------
    grad : array, shape (n_outer,)
        Exact gradient of x -> F(z_T(x), x).
    z_T : array, shape (n_inner,)
        The last iterate.

    References
    ----------
    Domke (2012), "Generic methods for optimization-based modeling", AISTATS.
    """
    n_iter = check_int(n_iter, "n_iter", min_value=0)
    step = check_positive(step, "step")
    z0, x = _check_z_x(problem, z0, x, "z0")
    zs = [z0]
    z = z0
    for _ in range(n_iter):
        z = z - step * problem.inner_grad(z, x)
        zs.append(z)
    v = problem.outer_grad_z(z, x)
    grad = problem.outer_grad_x(z, x)
    for t in range(n_iter - 1, -1, -1):
        grad = grad - step * problem.inner_cross_vjp(zs[t], x, v)
        v = v - step * problem.inner_hvp(zs[t], x, v)
    return grad, z


class InnerResult(NamedTuple):
    """Result of :func:`solve_inner`.

    Attributes
    ----------
    z : array, shape (n_inner,)
        Final iterate.
    n_iter : int
        Iterations run.
    grad_norm : float
        ||d_z G(z, x)|| at the final iterate.
    converged : bool
    path : list of arrays or None
        Every iterate (including the start) when ``return_path=True``.
    """

    z: object
    n_iter: int
    grad_norm: float
    converged: bool
    path: list | None


def solve_inner(problem, x, z0=None, *, method="gd", tol=1e-10, max_iter=1000, step=None,
                return_path=False):
    """Approximately minimise the inner objective G(., x).

    Parameters
    ----------
    problem : BilevelProblem
    x : array, shape (n_outer,)
    z0 : array, shape (n_inner,), optional
        Warm start (default zeros).
    method : {'gd', 'newton', 'cg'}, default='gd'
        Gradient descent with step ``step`` (default 1 / ``problem.inner_lipschitz(x)``);
        Newton's method with Armijo backtracking on ``problem.inner_value``; or, for a quadratic
        inner problem only, Jacobi-preconditioned conjugate gradients on
        H (z - z0) = -d_z G(z0, x).
    tol : float, default=1e-10
        Stop when ||d_z G(z, x)|| <= tol (>= 0).
    max_iter : int, default=1000
    step : float, optional
        Gradient-descent step size.
    return_path : bool, default=False
        Keep every iterate (gd and newton).

    Returns
    -------
    result : InnerResult

    Warns
    -----
    ConvergenceWarning
        When ``max_iter`` is reached before ``tol``, with the achieved gradient norm.
    """
    check_option(method, "method", ("gd", "newton", "cg"))
    tol = check_positive(tol, "tol", strict=False)
    max_iter = check_int(max_iter, "max_iter", min_value=1)
    _check_problem(problem)
    x = check_array(x, "x", ndim=1)
    xp = get_namespace(x)
    if z0 is None:
        if getattr(problem, "n_inner", None) is None:
            raise ValueError("z0 is required when the problem does not set n_inner")
        z = xp.zeros(problem.n_inner, dtype=x.dtype, device=x.device)
    else:
        z, x = _check_z_x(problem, z0, x, "z0")
    path = [z] if return_path else None
    g = problem.inner_grad(z, x)
    gn = _norm(g, xp)
    k = 0
    if method == "cg":
        if not getattr(problem, "inner_is_quadratic", False):
            raise ValueError("method='cg' needs a quadratic inner problem (inner_is_quadratic)")
        if gn > tol:
            d = None
            if getattr(problem, "cheap_hessian_diag", False):
                d = problem.inner_hessian_diag(z, x)
                d = d if bool(xp.all(d > 0)) else None
            dz, k, _ = conjugate_gradient(lambda v: problem.inner_hvp(z, x, v), -g, atol=tol,
                                          rtol=0.0, max_iter=max_iter, precond=d)
            z = z + dz
            g = problem.inner_grad(z, x)
            gn = _norm(g, xp)
            if return_path:
                path.append(z)
    elif method == "gd":
        step = 1.0 / problem.inner_lipschitz(x) if step is None else check_positive(step, "step")
        while gn > tol and k < max_iter:
            z = z - step * g
            g = problem.inner_grad(z, x)
            gn = _norm(g, xp)
            k += 1
            if return_path:
                path.append(z)
    else:
        f = float(problem.inner_value(z, x))
        while gn > tol and k < max_iter:
            d = _spd_solve(problem, z, x, g, solver="direct", tol=0.0, max_iter=None)
            t, dec = 1.0, float(xp.sum(g * d))
            if dec <= 1e-12 * (1.0 + abs(f)):
                # decrease below rounding: a full Newton step, no line search
                z = z - d
                f = float(problem.inner_value(z, x))
                g = problem.inner_grad(z, x)
                gn = _norm(g, xp)
                k += 1
                if return_path:
                    path.append(z)
                continue
            while True:
                z_new = z - t * d
                f_new = float(problem.inner_value(z_new, x))
                if f_new <= f - 1e-4 * t * dec or t < 1e-10:
                    break
                t *= 0.5
            z, f = z_new, f_new
            g = problem.inner_grad(z, x)
            gn = _norm(g, xp)
            k += 1
            if return_path:
                path.append(z)
    converged = gn <= tol
    if not converged:
        warnings.warn(
            f"inner solver '{method}' stopped after {k} iterations with ||grad|| = {gn:.3g} "
            f"> tol = {tol:.3g}",
            ConvergenceWarning,
        )
    return InnerResult(z, k, gn, converged, path)
