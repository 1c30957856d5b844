"""Bilevel problems: an inner objective G(z, x) and an outer objective F(z, x).

The hypergradient of h(x) = F(z*(x), x), z*(x) = argmin_z G(z, x), only needs a handful of
first and second derivatives of G and F. :class:`BilevelProblem` names them; the problems below
implement them in closed form with array-API code (NumPy, CuPy, torch, array_api_strict).

Conventions follow Ye, Peyre, Cremers & Ablin (2024), "Enhancing hypergradients estimation: a
study of preconditioning and reparameterization", AISTATS: per-feature regularisation weights
``lambda_i = reg_scale * exp(x_i)`` so that the hyperparameter ``x`` is unconstrained.
"""

from __future__ import annotations

from .._array_api import float_dtype, get_namespace, solve
from .._validation import (
    check_array,
    check_consistent_length,
    check_option,
    check_positive,
    check_psd,
)

__all__ = ["BilevelProblem", "RidgeProblem", "LogisticProblem", "QuadraticProblem"]


class BilevelProblem:
    """Protocol of a bilevel problem: derivatives of the inner G and the outer F.

    ``z`` is the inner variable, shape (n_inner,); ``x`` the hyperparameters, shape (n_outer,).
    Subclasses implement at least :meth:`inner_grad`, :meth:`inner_hvp`,
    :meth:`inner_cross_vjp`, :meth:`outer_grad_z` and :meth:`outer_grad_x`; the Hessian, its
    diagonal and the values have generic (slower) defaults or are optional.

    Attributes
    ----------
    n_inner : int
        Size of the inner variable ``z``.
    n_outer : int
        Size of the hyperparameter ``x``.
    inner_is_quadratic : bool
        Whether G is quadratic in ``z`` (then one Newton step solves the inner problem).
    cheap_hessian_diag : bool
        Whether :meth:`inner_hessian_diag` is cheap (then conjugate gradients use it as a
        Jacobi preconditioner).
    """

    n_inner: int
    n_outer: int
    inner_is_quadratic = False
    cheap_hessian_diag = False

    # ---- inner ------------------------------------------------------------------------------
    def inner_value(self, z, x):
        """G(z, x), a 0-D array."""
        raise NotImplementedError

    def inner_grad(self, z, x):
        """Gradient of G in z, shape (n_inner,)."""
        raise NotImplementedError

    def inner_hvp(self, z, x, v):
        """Hessian-vector product d_zz G(z, x) @ v, shape (n_inner,)."""
        raise NotImplementedError

    def inner_hessian(self, z, x):
        """Hessian d_zz G(z, x), shape (n_inner, n_inner) (default: one HVP per column)."""
        xp = get_namespace(z, x)
        eye = xp.eye(z.shape[0], dtype=z.dtype, device=getattr(z, "device", None))
        cols = [self.inner_hvp(z, x, eye[:, i]) for i in range(z.shape[0])]
        return xp.stack(cols, axis=1)

    def inner_hessian_diag(self, z, x):
        """Diagonal of the Hessian d_zz G(z, x), shape (n_inner,)."""
        xp = get_namespace(z, x)
        return xp.linalg.diagonal(self.inner_hessian(z, x))

    def inner_cross_vjp(self, z, x, v):
        """(d_x d_z G(z, x))^T v, shape (n_outer,), for ``v`` of shape (n_inner,)."""
        raise NotImplementedError

    def inner_hessian_diag_cross_vjp(self, z, x, v):
        """(d_x diag(d_zz G)(z, x))^T v, shape (n_outer,) (needed by ``reparam_diag``)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement inner_hessian_diag_cross_vjp"
        )

    def inner_solution(self, x):
        """Exact inner solution z*(x) where a closed form exists."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form inner solution")

    def inner_lipschitz(self, x):
        """An upper bound on the largest eigenvalue of d_zz G(., x) (gradient step 1/L)."""
        raise NotImplementedError

    # ---- outer ------------------------------------------------------------------------------
    def outer_value(self, z, x):
        """F(z, x), a 0-D array."""
        raise NotImplementedError

    def outer_grad_z(self, z, x):
        """Gradient of F in z, shape (n_inner,)."""
        raise NotImplementedError

    def outer_grad_x(self, z, x):
        """Partial gradient of F in x, shape (n_outer,)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
def _as_data(a, name, like=None, ndim=2):
    a = check_array(a, name, ndim=ndim)
    if like is not None:
        xp = get_namespace(like)
        if get_namespace(a) is not xp:
            from .._array_api import from_numpy, to_numpy

            a = from_numpy(to_numpy(a), like)
        a = xp.astype(a, like.dtype)
    return a


def _binary_labels(y, name):
    xp = get_namespace(y)
    is_pm = xp.all((y == 1.0) | (y == -1.0))
    is_01 = xp.all((y == 1.0) | (y == 0.0))
    if bool(is_pm):
        return y
    if bool(is_01):
        return 2.0 * y - 1.0
    raise ValueError(f"{name} must hold binary labels in {{-1, 1}} or {{0, 1}}")


def _sigmoid(t, xp):
    return 1.0 / (1.0 + xp.exp(-t))


class _PenalizedGLM(BilevelProblem):
    """Shared parts of ridge and logistic: penalty 1/2 sum reg_scale exp(x_i) z_i^2."""

    cheap_hessian_diag = True

    def _setup_penalty(self, n_features, per_feature, reg_scale, n_unpenalized=0):
        self.per_feature = bool(per_feature)
        self.n_features = n_features
        self.reg_scale = (
            1.0 / n_features if reg_scale is None else check_positive(reg_scale, "reg_scale")
        )
        self.n_outer = n_features if self.per_feature else 1
        self._n_unpen = n_unpenalized

    def _check_x(self, x):
        if x.shape != (self.n_outer,):
            raise ValueError(f"x must have shape ({self.n_outer},), got {tuple(x.shape)}")

    def penalty_weights(self, x):
        """Per-coordinate weights lambda, shape (n_inner,) (0 for the intercept).

        Parameters
        ----------
        x : array, shape (n_outer,)

        Returns
        -------
        lam : array, shape (n_inner,)
        """
        xp = get_namespace(x)
        lam = self.reg_scale * xp.exp(x)
        if not self.per_feature:
            lam = xp.broadcast_to(lam, (self.n_features,))
        if self._n_unpen:
            lam = xp.concat([lam, xp.zeros(self._n_unpen, dtype=lam.dtype, device=lam.device)])
        return lam

    def _reduce_x(self, w):
        # w has shape (n_inner,): d lambda / dx applied to w, summed for a scalar weight
        xp = get_namespace(w)
        w = w[: self.n_features]
        return w if self.per_feature else xp.reshape(xp.sum(w), (1,))

    def inner_cross_vjp(self, z, x, v):
        self._check_x(x)
        return self._reduce_x(self.penalty_weights(x) * z * v)

    def inner_hessian_diag_cross_vjp(self, z, x, v):
        self._check_x(x)
        return self._reduce_x(self.penalty_weights(x) * v)


class RidgeProblem(_PenalizedGLM):
    """Ridge regression with per-feature (or scalar) weights exp(x_i).

    Inner: G(z, x) = 1/(2n) ||A z - b||^2 + 1/2 sum_i c exp(x_i) z_i^2 (c = ``reg_scale``).
    Outer: the held-out loss F(z) = 1/(2 n_val) ||A_val z - b_val||^2 (``outer='quadratic'``),
    or the linear test function of Ye et al. (2024), F(z, x) = <u, z> + ||x||^2
    (``outer='linear'`` with ``outer_vector=u``).

    Parameters
    ----------
    X : array, shape (n_samples, n_features)
        Training design A.
    y : array, shape (n_samples,)
        Training targets b.
    X_val : array, shape (n_val, n_features), optional
        Validation design (required for ``outer='quadratic'``).
    y_val : array, shape (n_val,), optional
        Validation targets.
    per_feature : bool, default=True
        One weight per feature (``n_outer = n_features``) or a single scalar (``n_outer = 1``).
    reg_scale : float, optional
        The constant c (default ``1 / n_features``, the paper's choice).
    outer : {'quadratic', 'linear'}, default='quadratic'
    outer_vector : array, shape (n_features,), optional
        The vector u of the linear outer objective.

    Notes
    -----
    The Gram matrix A^T A / n (n_features x n_features) is formed once; every derivative then
    costs O(n_features^2). G is quadratic in z, so the Newton-preconditioned hypergradient is
    exact at any inner iterate.
    """

    inner_is_quadratic = True

    def __init__(self, X, y, X_val=None, y_val=None, *, per_feature=True, reg_scale=None,
                 outer="quadratic", outer_vector=None):
        A = _as_data(X, "X")
        xp = get_namespace(A)
        A = xp.astype(A, float_dtype(xp, A.device, A))
        b = _as_data(y, "y", like=A, ndim=1)
        check_consistent_length(A, b, names=("X", "y"))
        n, p = A.shape
        self.outer = check_option(outer, "outer", ("quadratic", "linear"))
        self._setup_penalty(p, per_feature, reg_scale)
        self.n_inner = p
        self.n_samples = n
        self.gram = (A.T @ A) / n
        self.Atb = (A.T @ b) / n
        self.bb = float(xp.sum(b * b)) / n
        if self.outer == "quadratic":
            if X_val is None or y_val is None:
                raise ValueError("X_val and y_val are required with outer='quadratic'")
            Av = _as_data(X_val, "X_val", like=A)
            bv = _as_data(y_val, "y_val", like=A, ndim=1)
            if Av.shape[1] != p:
                raise ValueError(
                    f"X_val must have {p} features like X, got shape {tuple(Av.shape)}"
                )
            check_consistent_length(Av, bv, names=("X_val", "y_val"))
            self.X_val, self.y_val = Av, bv
        else:
            if outer_vector is None:
                raise ValueError("outer_vector is required with outer='linear'")
            u = _as_data(outer_vector, "outer_vector", like=A, ndim=1)
            if u.shape[0] != p:
                raise ValueError(f"outer_vector must have shape ({p},), got {tuple(u.shape)}")
            self.outer_vector = u
        self._xp = xp

    def inner_value(self, z, x):
        xp = self._xp
        quad = xp.sum(z * (self.gram @ z)) - 2.0 * xp.sum(z * self.Atb) + self.bb
        return 0.5 * quad + 0.5 * xp.sum(self.penalty_weights(x) * z * z)

    def inner_grad(self, z, x):
        self._check_x(x)
        return self.gram @ z - self.Atb + self.penalty_weights(x) * z

    def inner_hvp(self, z, x, v):
        return self.gram @ v + self.penalty_weights(x) * v

    def inner_hessian(self, z, x):
        return self.gram + _diag(self.penalty_weights(x))

    def inner_hessian_diag(self, z, x):
        return self._xp.linalg.diagonal(self.gram) + self.penalty_weights(x)

    def inner_solution(self, x):
        """Closed form z*(x) = (A^T A / n + diag(lambda))^{-1} A^T b / n, shape (n_features,)."""
        self._check_x(x)
        return solve(self.inner_hessian(None, x), self.Atb)

    def inner_lipschitz(self, x):
        xp = self._xp
        return float(xp.max(xp.linalg.eigvalsh(self.gram))) + float(
            xp.max(self.penalty_weights(x))
        )

    def outer_value(self, z, x):
        xp = self._xp
        if self.outer == "quadratic":
            r = self.X_val @ z - self.y_val
            return 0.5 * xp.mean(r * r)
        return xp.sum(self.outer_vector * z) + xp.sum(x * x)

    def outer_grad_z(self, z, x):
        if self.outer == "quadratic":
            r = self.X_val @ z - self.y_val
            return (self.X_val.T @ r) / r.shape[0]
        return self.outer_vector

    def outer_grad_x(self, z, x):
        if self.outer == "quadratic":
            return self._xp.zeros_like(x)
        return 2.0 * x


def _diag(v):
    xp = get_namespace(v)
    n = v.shape[0]
    return xp.eye(n, dtype=v.dtype, device=v.device) * v[None, :]


class LogisticProblem(_PenalizedGLM):
    """Binary logistic regression with per-feature (or scalar) weights exp(x_i).

    Inner: G(z, x) = 1/n sum_j log(1 + exp(-y_j <a_j, z>)) + 1/2 sum_i c exp(x_i) z_i^2.
    Outer: the held-out logistic loss F(z) = 1/n_val sum_j log(1 + exp(-y_val_j <a_val_j, z>)).
    This is the logistic setting of Ye et al. (2024).

    Parameters
    ----------
    X : array, shape (n_samples, n_features)
    y : array, shape (n_samples,)
        Labels in {-1, 1} or {0, 1}.
    X_val : array, shape (n_val, n_features)
    y_val : array, shape (n_val,)
    per_feature : bool, default=True
        One weight per feature or one scalar weight.
    reg_scale : float, optional
        The constant c (default ``1 / n_features``).
    fit_intercept : bool, default=False
        Append an unpenalised intercept as the last coordinate of z (n_inner = n_features + 1).
    """

    def __init__(self, X, y, X_val, y_val, *, per_feature=True, reg_scale=None,
                 fit_intercept=False):
        A = _as_data(X, "X")
        xp = get_namespace(A)
        A = xp.astype(A, float_dtype(xp, A.device, A))
        yy = _binary_labels(_as_data(y, "y", like=A, ndim=1), "y")
        check_consistent_length(A, yy, names=("X", "y"))
        Av = _as_data(X_val, "X_val", like=A)
        yv = _binary_labels(_as_data(y_val, "y_val", like=A, ndim=1), "y_val")
        n, p = A.shape
        if Av.shape[1] != p:
            raise ValueError(f"X_val must have {p} features like X, got shape {tuple(Av.shape)}")
        check_consistent_length(Av, yv, names=("X_val", "y_val"))
        self.fit_intercept = bool(fit_intercept)
        self._setup_penalty(p, per_feature, reg_scale, n_unpenalized=int(self.fit_intercept))
        if self.fit_intercept:
            ones = xp.ones((n, 1), dtype=A.dtype, device=A.device)
            A = xp.concat([A, ones], axis=1)
            Av = xp.concat([Av, xp.ones((Av.shape[0], 1), dtype=A.dtype, device=A.device)],
                           axis=1)
        self.A, self.y, self.A_val, self.y_val = A, yy, Av, yv
        self.A_sq = A * A
        self.n_inner = A.shape[1]
        self.n_samples = n
        self._xp = xp

    def _margin_weights(self, z):
        xp = self._xp
        t = self.A @ z
        return t, _sigmoid(-self.y * t, xp)

    def inner_value(self, z, x):
        xp = self._xp
        t = self.A @ z
        return xp.mean(xp.logaddexp(xp.zeros_like(t), -self.y * t)) + 0.5 * xp.sum(
            self.penalty_weights(x) * z * z
        )

    def inner_grad(self, z, x):
        self._check_x(x)
        _, s = self._margin_weights(z)
        return (self.A.T @ (-self.y * s)) / self.n_samples + self.penalty_weights(x) * z

    def _curv(self, z):
        xp = self._xp
        t = self.A @ z
        return _sigmoid(t, xp) * _sigmoid(-t, xp)

    def inner_hvp(self, z, x, v):
        w = self._curv(z)
        return (self.A.T @ (w * (self.A @ v))) / self.n_samples + self.penalty_weights(x) * v

    def inner_hessian(self, z, x):
        w = self._curv(z)
        return (self.A.T @ (self.A * w[:, None])) / self.n_samples + _diag(self.penalty_weights(x))

    def inner_hessian_diag(self, z, x):
        return (self.A_sq.T @ self._curv(z)) / self.n_samples + self.penalty_weights(x)

    def inner_lipschitz(self, x):
        xp = self._xp
        gram = (self.A.T @ self.A) / self.n_samples
        return 0.25 * float(xp.max(xp.linalg.eigvalsh(gram))) + float(
            xp.max(self.penalty_weights(x))
        )

    def outer_value(self, z, x):
        xp = self._xp
        t = self.A_val @ z
        return xp.mean(xp.logaddexp(xp.zeros_like(t), -self.y_val * t))

    def outer_grad_z(self, z, x):
        xp = self._xp
        t = self.A_val @ z
        s = _sigmoid(-self.y_val * t, xp)
        return (self.A_val.T @ (-self.y_val * s)) / t.shape[0]

    def outer_grad_x(self, z, x):
        return self._xp.zeros_like(x)


class QuadraticProblem(BilevelProblem):
    """A general quadratic bilevel problem with a closed-form hypergradient.

    Inner: G(z, x) = 1/2 z^T Q z - z^T (B x + c), so z*(x) = Q^{-1} (B x + c).
    Outer: F(z, x) = 1/2 ||C z - d||^2 + mu/2 ||x||^2.

    Parameters
    ----------
    Q : array, shape (n_inner, n_inner)
        Symmetric positive definite (the inner problem must be strongly convex).
    B : array, shape (n_inner, n_outer)
    c : array, shape (n_inner,), optional
        Default zeros.
    C : array, shape (m, n_inner), optional
        Default the identity.
    d : array, shape (m,), optional
        Default zeros.
    mu : float, default=0.0
        Weight of the outer penalty on x (>= 0).
    """

    inner_is_quadratic = True
    cheap_hessian_diag = True

    def __init__(self, Q, B, c=None, C=None, d=None, *, mu=0.0):
        Q = check_psd(_as_data(Q, "Q"), "Q", strict=True)
        xp = get_namespace(Q)
        Q = xp.astype(Q, float_dtype(xp, Q.device, Q))
        p = Q.shape[0]
        B = _as_data(B, "B", like=Q)
        if B.shape[0] != p:
            raise ValueError(f"B must have {p} rows like Q, got shape {tuple(B.shape)}")
        zeros = xp.zeros(p, dtype=Q.dtype, device=Q.device)
        c = zeros if c is None else _as_data(c, "c", like=Q, ndim=1)
        if c.shape != (p,):
            raise ValueError(f"c must have shape ({p},), got {tuple(c.shape)}")
        C = xp.eye(p, dtype=Q.dtype, device=Q.device) if C is None else _as_data(C, "C", like=Q)
        if C.shape[1] != p:
            raise ValueError(f"C must have {p} columns, got shape {tuple(C.shape)}")
        d = xp.zeros(C.shape[0], dtype=Q.dtype, device=Q.device) if d is None else _as_data(
            d, "d", like=Q, ndim=1)
        if d.shape != (C.shape[0],):
            raise ValueError(f"d must have shape ({C.shape[0]},), got {tuple(d.shape)}")
        self.mu = check_positive(mu, "mu", strict=False)
        self.Q, self.B, self.c, self.C, self.d = Q, B, c, C, d
        self.n_inner, self.n_outer = p, B.shape[1]
        self._xp = xp

    def inner_value(self, z, x):
        xp = self._xp
        return 0.5 * xp.sum(z * (self.Q @ z)) - xp.sum(z * (self.B @ x + self.c))

    def inner_grad(self, z, x):
        return self.Q @ z - self.B @ x - self.c

    def inner_hvp(self, z, x, v):
        return self.Q @ v

    def inner_hessian(self, z, x):
        return self.Q

    def inner_hessian_diag(self, z, x):
        return self._xp.linalg.diagonal(self.Q)

    def inner_cross_vjp(self, z, x, v):
        return -(self.B.T @ v)

    def inner_hessian_diag_cross_vjp(self, z, x, v):
        return self._xp.zeros(self.n_outer, dtype=v.dtype, device=v.device)

    def inner_solution(self, x):
        """z*(x) = Q^{-1} (B x + c), shape (n_inner,)."""
        return solve(self.Q, self.B @ x + self.c)

    def inner_lipschitz(self, x):
        return float(self._xp.max(self._xp.linalg.eigvalsh(self.Q)))

    def outer_value(self, z, x):
        xp = self._xp
        r = self.C @ z - self.d
        return 0.5 * xp.sum(r * r) + 0.5 * self.mu * xp.sum(x * x)

    def outer_grad_z(self, z, x):
        return self.C.T @ (self.C @ z - self.d)

    def outer_grad_x(self, z, x):
        return self.mu * x
