r"""The landing field on the (random) generalized Stiefel manifold and its safe step.

The generalized Stiefel manifold is :math:`\mathrm{St}_B(p, n) = \{X \in \mathbb{R}^{n\times p} :
X^\top B X = I_p\}` for a symmetric positive-definite :math:`B`. Landing methods [1]_ never
retract onto it: they follow the field

.. math:: \Lambda(X) = \Psi_B(X) + \omega \nabla \mathcal{N}(X),

where :math:`\mathcal{N}(X) = \tfrac14\|X^\top B X - I_p\|_F^2` penalises the distance to the
manifold, :math:`\nabla\mathcal{N}(X) = BX(X^\top B X - I_p)`, and :math:`\Psi_B` is a
"relative" gradient of the objective that is B-orthogonal to the normal direction. Every
quantity is built from the products ``BX`` (and ``B @ direction`` for the safe step), so ``B``
may be a dense matrix, an operator, or a random estimate :math:`B_\zeta` seen through a
minibatch, :math:`B_\zeta X = A_b^\top (A_b X) / r`.

All functions take and return arrays of any array-API namespace (NumPy, torch, CuPy,
array_api_strict) and keep the caller's namespace and device.

Derivation of the safe step
---------------------------
Write :math:`h = X^\top B X - I_p`, :math:`d = \|h\|_F`, and take the step
:math:`X^+ = X - \eta\Lambda`. Expanding the quadratic form exactly,

.. math::
    h^+ = (X^+)^\top B X^+ - I_p = h - \eta S + \eta^2 \Lambda^\top B \Lambda, \qquad
    S = X^\top B\Lambda + \Lambda^\top B X .

For the relative gradient :math:`X^\top B \Psi_B(X) = (BX)^\top \mathrm{skew}(GX^\top B)(BX)`
is skew-symmetric, so only the normal part contributes to :math:`S`:
:math:`S = \omega(Mh + hM)` with :math:`M = (BX)^\top BX`. By the triangle inequality
:math:`\|h^+\|_F \le \|h - \eta S\|_F + \eta^2\|\Lambda^\top B\Lambda\|_F`, and since
:math:`\Lambda^\top B \Lambda \succeq 0` its Frobenius norm is at most its trace
:math:`q = \mathrm{tr}(\Lambda^\top B\Lambda) \le \lambda_{\max}(B)\|\Lambda\|_F^2`. With
:math:`c_1 = \langle h, S\rangle`, :math:`c_2 = \|S\|_F^2`, the first term is exactly
:math:`\sqrt{d^2 - 2\eta c_1 + \eta^2 c_2}`. Two bounds of it give two safe steps:

(a) Split :math:`S` into its component along :math:`h` and the rest:
:math:`d^2 - 2\eta c_1 + \eta^2 c_2 = (d - \eta b)^2 + \eta^2 e^2` with :math:`b = c_1/d` and
:math:`e^2 = c_2 - c_1^2/d^2 \ge 0` (Cauchy-Schwarz), so
:math:`\|h - \eta S\|_F \le |d - \eta b| + \eta e = \max(u_1, u_2) - \eta^2 q` where
:math:`u_{1,2}(\eta) = \pm(d - \eta b) + \eta e + \eta^2 q`. Both are convex quadratics with
:math:`u_{1,2}(0) = \pm d \le \varepsilon`, so :math:`\|h^+\|_F \le \varepsilon` on
:math:`[0, \min(\eta_1, \eta_2)]` with the largest roots of :math:`u_i = \varepsilon`:

.. math:: \eta_1 = \frac{(b - e) + \sqrt{(b - e)^2 + 4q(\varepsilon - d)}}{2q}, \qquad
    \eta_2 = \frac{-(b + e) + \sqrt{(b + e)^2 + 4q(\varepsilon + d)}}{2q}.

This bound stays informative as :math:`d \to 0` (:math:`b` and :math:`e` are at most
:math:`\|S\|_F`), where it tends to the exact :math:`\sqrt{\varepsilon/q}` when :math:`S = 0`.

(b) The square root is concave, so it lies below its tangent at :math:`d^2`:
:math:`\|h - \eta S\|_F \le d - \eta c_1/d + \eta^2 c_2/(2d)`, hence
:math:`\|h^+\|_F \le d - \beta\eta + \alpha\eta^2` with :math:`\beta = c_1/d`,
:math:`\alpha = c_2/(2d) + q`, which is :math:`\le\varepsilon` up to

.. math:: \eta_3 = \frac{\beta + \sqrt{\beta^2 + 4\alpha(\varepsilon - d)}}{2\alpha}.

This is tight when :math:`S` is nearly parallel to :math:`h` (the relative-gradient case with
a well-conditioned :math:`M`) and is the analogue for :math:`B \ne I` of the safe step of
Ablin & Peyré [2]_ (there :math:`\beta = \lambda d(1-d)` bounds :math:`c_1/d` with
:math:`M \succeq (1-d)I` when :math:`B = I`) and of Lemma 2.4 of [1]_.

Both bounds hold, so :func:`safe_step_size` returns :math:`\eta^\star = \max(\min(\eta_1,
\eta_2), \eta_3)`. Every constant is computed from :math:`p\times p` matrices and the scalar
:math:`q`; no eigenvalue of :math:`B` is needed (the constant :math:`L_\mathcal{N}` of [1]_,
a smoothness constant of :math:`\mathcal{N}` over the safe region, is replaced by the exact
second-order term :math:`\Lambda^\top B\Lambda` of the quartic :math:`\mathcal{N}`). The bound
holds for any direction (Riemannian and PLAM variants included) through the general :math:`S`.
When the iterate is outside the region (:math:`d > \varepsilon`), the minimiser
:math:`\beta/(2\alpha)` of bound (b) is returned: it strictly decreases the bound when
:math:`\beta > 0`, which always holds for the relative gradient
(:math:`c_1 = 2\omega\,\mathrm{tr}(hMh) \ge 0`).

References
----------
.. [1] S. Vary, P. Ablin, B. Gao, P.-A. Absil, "Optimization without retraction on the random
   generalized Stiefel manifold", ICML 2024 (arXiv:2405.01702).
.. [2] P. Ablin, G. Peyré, "Fast and accurate optimization on the orthogonal manifold without
   retraction", AISTATS 2022.
"""

from __future__ import annotations

import numbers

from .._array_api import get_namespace, namespace_name
from .._validation import check_array, check_option, check_positive
from ._stochastic import _xw

__all__ = [
    "penalty",
    "normal_direction",
    "relative_gradient",
    "riemannian_gradient",
    "plam_direction",
    "landing_direction",
    "safe_step_size",
    "landing_step",
    "landing_update",
]

_GRADIENTS = ("relative", "riemannian")


def _check_points(*pairs, square=(), optional=()):
    """Validate ``(name, array)`` pairs of shape (n, p) and ``(name, array)`` pairs of shape
    (p, p) in ``square``: finite real 2-D arrays of one namespace whose shapes match the first
    array's; ``None`` is allowed for the names in ``optional`` and for the ``square`` ones.
    Returns the checked arrays in order (``pairs`` then ``square``)."""
    out, ref = [], None
    for (name, a), sq in [(pr, False) for pr in pairs] + [(pr, True) for pr in square]:
        if a is None and (sq or name in optional):
            out.append(None)
            continue
        a = check_array(a, name, ndim=2)
        if ref is None:
            ref = (name, a)
        else:
            rname, r = ref
            if namespace_name(get_namespace(a)) != namespace_name(get_namespace(r)):
                raise TypeError(f"{name} must come from the same array library as {rname}")
            want = (r.shape[1], r.shape[1]) if sq else tuple(r.shape)
            if tuple(a.shape) != want:
                raise ValueError(f"{name} must have shape {want} to match {rname} of shape "
                                 f"{tuple(r.shape)}, got {tuple(a.shape)}")
        out.append(a)
    return out


def _check_curvature(curvature):
    if isinstance(curvature, numbers.Real) and not isinstance(curvature, bool):
        return check_positive(curvature, "curvature", strict=False)
    c = check_array(curvature, "curvature", ndim=0)
    if float(c) < 0:
        raise ValueError(f"curvature must be >= 0, got {float(c)}")
    return c


def _sym(M, xp):
    return 0.5 * (M + M.T)


def _eye(p, like, xp):
    return xp.eye(p, dtype=like.dtype, device=like.device)


def constraint_matrix(X, BX):
    """:math:`X^\\top B X - I_p` from ``X`` and ``BX``, shape (p, p)."""
    xp = get_namespace(X, BX)
    return X.T @ BX - _eye(X.shape[1], X, xp)


def penalty(X, BX, *, check_input=True):
    r"""The penalty :math:`\mathcal{N}(X) = \frac14 \|X^\top B X - I_p\|_F^2`.

    Parameters
    ----------
    X : array, shape (n, p)
        Current point.
    BX : array, shape (n, p)
        The product ``B @ X`` (or a stochastic estimate ``B_zeta @ X``).

    check_input : bool, default=True
        Validate the arrays (finite, 2-D, matching shapes); ``False`` skips the checks (and
        their pass over the data) inside solver loops.

    Returns
    -------
    value : array, shape ()
        0-d array in the namespace of ``X``.
    """
    if check_input:
        X, BX = _check_points(("X", X), ("BX", BX))
    xp = get_namespace(X, BX)
    h = constraint_matrix(X, BX)
    return 0.25 * xp.sum(h * h)


def normal_direction(X, BX, *, check_input=True):
    r"""Gradient of the penalty, :math:`\nabla\mathcal{N}(X) = BX\,(X^\top B X - I_p)`.

    Parameters
    ----------
    X, BX : array, shape (n, p)
        Point and the product ``B @ X``.
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    grad : array, shape (n, p)
    """
    if check_input:
        X, BX = _check_points(("X", X), ("BX", BX))
    return BX @ constraint_matrix(X, BX)


def relative_gradient(X, G, BX, *, check_input=True):
    r"""Relative ("preconditioned") gradient :math:`\Psi_B(X) = \mathrm{skew}(GX^\top B)\,BX`.

    Computed as :math:`\tfrac12\,(G\,(BX)^\top BX - BX\,G^\top BX)` with matrix products only
    (:math:`O(np^2)` on top of ``BX``); the factor 2 of [1]_ is absorbed in the step size.
    ``X^T B Psi`` is skew-symmetric, so this direction does not move the constraint to first
    order.

    Parameters
    ----------
    X : array, shape (n, p)
        Current point (only its shape enters).
    G : array, shape (n, p)
        Euclidean gradient of the objective at ``X``.
    BX : array, shape (n, p)
        ``B @ X`` or its stochastic estimate.
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    psi : array, shape (n, p)

    References
    ----------
    .. [1] Vary, Ablin, Gao, Absil, ICML 2024, Eq. (6).
    """
    if check_input:
        X, G, BX = _check_points(("X", X), ("G", G), ("BX", BX))
    return 0.5 * (G @ (BX.T @ BX) - BX @ (G.T @ BX))


def riemannian_gradient(X, G, BinvG, *, check_input=True):
    r"""Riemannian gradient on :math:`\mathrm{St}_B` for the metric :math:`\langle U, V\rangle_B
    = \mathrm{tr}(U^\top B V)`: :math:`B^{-1}G - X\,\mathrm{sym}(X^\top G)`.

    Parameters
    ----------
    X : array, shape (n, p)
        Point (B-orthonormal for this to be the exact Riemannian gradient).
    G : array, shape (n, p)
        Euclidean gradient.
    BinvG : array, shape (n, p)
        ``B^{-1} @ G`` (needs a solve with B: this variant cannot use a random B).
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    grad : array, shape (n, p)

    References
    ----------
    H. Sato, K. Aihara, "Cholesky QR-based retraction on the generalized Stiefel manifold",
    Comput. Optim. Appl. 72 (2019).
    """
    if check_input:
        X, G, BinvG = _check_points(("X", X), ("G", G), ("BinvG", BinvG))
    xp = get_namespace(X, G, BinvG)
    return BinvG - X @ _sym(X.T @ G, xp)


def plam_direction(X, G, BX, *, omega, check_input=True):
    r"""PLAM direction :math:`G - \tfrac12 BX(X^\top G + G^\top X) + \omega BX(X^\top BX - I)`.

    The parallelizable augmented-Lagrangian method of Gao, Liu, Chen & Yuan (SIAM J. Sci.
    Comput. 41, 2019), written for :math:`X^\top B X = I` as in Vary et al. (ICML 2024).

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
        Point, Euclidean gradient and ``B @ X``.
    omega : float
        Penalty weight (>= 0).
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    direction : array, shape (n, p)
    """
    if check_input:
        X, G, BX = _check_points(("X", X), ("G", G), ("BX", BX))
        omega = check_positive(omega, "omega", strict=False)
    xp = get_namespace(X, G, BX)
    h = constraint_matrix(X, BX)
    return G - BX @ _sym(X.T @ G, xp) + omega * (BX @ h)


def _relative_direction(X, G, BX, omega, xp):
    r"""The landing field with the relative gradient of one estimate, in its cheapest form.

    With :math:`M = (BX)^\top BX`, :math:`K = G^\top BX` and :math:`h = X^\top BX - I_p`,
    :math:`\Psi_B(X) + \omega\nabla\mathcal{N}(X) = \tfrac12(GM - BX\,K) +
    \omega BX\,h = G\,(M/2) + BX\,(\omega h - K/2)`: two (n, p) x (p, p) products. The
    relative part is B-skew (:math:`(BX)^\top\Psi_B = (K^\top M - MK)/2`), so the symmetric
    part the safe step needs is :math:`S = (BX)^\top\Lambda + \Lambda^\top BX = \omega(Mh +
    (Mh)^\top)`, exactly (for any ``BX``), from one p x p product instead of an (n, p) one.

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
        Point, Euclidean gradient and ``B @ X``.
    omega : float
        Weight of the normal direction.
    xp : module
        Namespace of the arrays.

    Returns
    -------
    direction : array, shape (n, p)
    S : array, shape (p, p)
        :math:`X^\top B\Lambda + \Lambda^\top BX`.
    h : array, shape (p, p)
        :math:`X^\top BX - I_p`.
    """
    M = BX.T @ BX
    K = G.T @ BX
    h = X.T @ BX - _eye(X.shape[1], X, xp)
    D = G @ (0.5 * M) + BX @ (omega * h - 0.5 * K)
    Mh = M @ h
    return D, omega * (Mh + Mh.T), h


def _two_estimate_direction(X, G, BX, BX2, G2, omega, precondition, xp):
    r"""The landing field from two independent estimates (see :func:`landing_direction`),
    optionally preconditioned.

    Without ``precondition``: :math:`\tfrac14[G M_{12} - BX\,K_1 + G_2 M_{12}^\top - BX_2 K_2]
    + \tfrac\omega2[BX\,h_2 + BX_2 h_1]` with :math:`M_{12} = BX^\top BX_2`,
    :math:`K_1 = G^\top BX_2`, :math:`K_2 = G_2^\top BX`, :math:`h_i = X^\top BX_i - I`, as one
    (n, 4p) x (4p, p) product. With ``precondition`` (a function ``F -> P @ F`` for
    :math:`P \approx B^{-1}` symmetric positive definite): the same field after the change of
    variables :math:`X = P^{1/2}V`, mapped back, i.e. every product of two factors takes P
    in between and the result is multiplied by P (``BX2 = BX``, ``G2 = G`` give the
    one-estimate preconditioned field).

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
        Point, gradient and ``B_zeta @ X`` of the first estimate.
    BX2, G2 : array, shape (n, p), or None
        The second estimate (``None``: the first one).
    omega : float
        Weight of the normal direction.
    precondition : callable or None
        ``F -> P @ F`` for ``F`` of shape (n, 4p).
    xp : module
        Namespace of the arrays.

    Returns
    -------
    direction : array, shape (n, p)
    """
    p = X.shape[1]
    if BX2 is None:
        BX2 = BX
    if G2 is None:
        G2 = G
    eye = _eye(p, X, xp)
    h1 = X.T @ BX - eye
    h2 = X.T @ BX2 - eye
    F = xp.concat([G, G2, BX, BX2], axis=1)
    if precondition is None:
        M12 = BX.T @ BX2
        K1 = G.T @ BX2
        K2 = G2.T @ BX
    else:
        PF = precondition(F)
        Q = F.T @ PF
        M12 = Q[2 * p : 3 * p, 3 * p :]
        K1 = Q[:p, 3 * p :]
        K2 = Q[p : 2 * p, 2 * p : 3 * p]
        F = PF
    C = xp.concat(
        [0.25 * M12, 0.25 * M12.T, 0.5 * omega * h2 - 0.25 * K1, 0.5 * omega * h1 - 0.25 * K2],
        axis=0,
    )
    return F @ C


def _direction(X, G, BX, omega, gradient, BinvG, BX2, G2, precondition, xp):
    """The landing field of every variant (inputs already checked): returns ``(direction, S,
    h)``, with ``S`` and ``h`` the p x p matrices of :func:`safe_step_size` when the form of
    the field gives them for free (relative gradient, one estimate), else ``None``."""
    if BX2 is not None or precondition is not None:
        return _two_estimate_direction(X, G, BX, BX2, G2, omega, precondition, xp), None, None
    if gradient == "relative":
        return _relative_direction(X, G, BX, omega, xp)
    psi = riemannian_gradient(X, G, BinvG, check_input=False)
    return psi + omega * normal_direction(X, BX, check_input=False), None, None


def landing_direction(
    X, G, BX, *, omega=1.0, gradient="relative", BinvG=None, BX2=None, G2=None,
    check_input=True,
):
    r"""The landing field :math:`\Lambda(X) = \Psi(X) + \omega\, BX(X^\top BX - I_p)`.

    Parameters
    ----------
    X : array, shape (n, p)
        Current point.
    G : array, shape (n, p)
        Euclidean gradient of the objective at ``X`` (or a stochastic estimate).
    BX : array, shape (n, p)
        ``B @ X`` or a stochastic estimate ``B_zeta @ X``.
    omega : float, default=1.0
        Weight of the normal (penalty) direction.
    gradient : {'relative', 'riemannian'}, default='relative'
        ``'relative'`` uses :func:`relative_gradient` (matrix products only, works with a random
        B); ``'riemannian'`` uses :func:`riemannian_gradient` and needs ``BinvG``.
    BinvG : array, shape (n, p), optional
        ``B^{-1} @ G``; required for ``gradient='riemannian'``.
    BX2 : array, shape (n, p), optional
        A second estimate :math:`B_{\zeta'} X` from an independent minibatch (relative gradient
        only). Every product of two B's is then formed from the two estimates,
        symmetrised: :math:`\nabla\mathcal{N} \approx \tfrac12(B_\zeta X h_{\zeta'} +
        B_{\zeta'} X h_\zeta)`, which is unbiased for :math:`BX(X^\top BX - I)`, whereas one
        estimate used twice is biased by the covariance of :math:`B_\zeta X` (an
        :math:`O(1/r)` error that shows as a plateau of the constraint violation). The
        relative gradient is formed as
        :math:`\tfrac12[\mathrm{skew}(G X^\top B_\zeta)B_{\zeta'}X +
        \mathrm{skew}(G_2 X^\top B_{\zeta'})B_\zeta X]`: each skew factor is independent of
        the estimate it multiplies, so :math:`X^\top B\,\mathbb{E}[\Psi]` is skew-symmetric
        and the tangent part does not drift off the manifold on average.
    G2 : array, shape (n, p), optional
        With ``BX2``: the gradient estimated on the same minibatch as ``BX2`` (``G`` then
        belongs to the minibatch of ``BX``). When ``G`` is computed from the data that also
        gives ``BX`` (CCA, ICA), passing the two halves' gradients separately is what makes
        the tangent part unbiased: a gradient correlated with both estimates is not. Default:
        ``G`` for both (right when ``G`` is independent of the B estimates, e.g. a fixed A).
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    direction : array, shape (n, p)
        The step is ``X - learning_rate * direction``.
    """
    if check_input:
        X, G, BX, BinvG, BX2, G2 = _check_points(("X", X), ("G", G), ("BX", BX),
                                                 ("BinvG", BinvG), ("BX2", BX2), ("G2", G2),
                                                 optional=("BinvG", "BX2", "G2"))
        omega = check_positive(omega, "omega", strict=False)
        gradient = check_option(gradient, "gradient", _GRADIENTS)
    _check_variant(gradient, BinvG, BX2, G2)
    xp = get_namespace(X, G, BX)
    return _direction(X, G, BX, omega, gradient, BinvG, BX2, G2, None, xp)[0]


def safe_step_size(
    X, BX, direction, curvature, *, epsilon=0.5, symmetric_part=None, constraint=None,
    check_input=True,
):
    r"""Largest step keeping :math:`\|X^\top BX - I\|_F \le \varepsilon` after the step.

    Implements :math:`\eta^\star = \max(\min(\eta_1, \eta_2), \eta_3)` derived in the
    module docstring: for every :math:`0 \le \eta \le \eta^\star`,
    :math:`X^+ = X - \eta\,\mathrm{direction}` satisfies
    :math:`\|(X^+)^\top B X^+ - I\|_F \le \varepsilon` whenever
    :math:`\|X^\top B X - I\|_F \le \varepsilon` (for the B whose products are passed; with a
    random :math:`B_\zeta` the guarantee is for :math:`B_\zeta`).

    Parameters
    ----------
    X : array, shape (n, p)
        Current point.
    BX : array, shape (n, p)
        ``B @ X``.
    direction : array, shape (n, p)
        Any update direction :math:`\Lambda` (landing, Riemannian, PLAM).
    curvature : float or array, shape ()
        An upper bound :math:`q \ge \|\Lambda^\top B \Lambda\|_F`, for example the exact
        ``sum(direction * (B @ direction))`` or ``lambda_max(B) * ||direction||_F^2``.
    epsilon : float, default=0.5
        Radius of the safe region.
    symmetric_part : array, shape (p, p), optional
        :math:`S = X^\top B\Lambda + \Lambda^\top BX` if already known (computed otherwise,
        :math:`O(np^2)`).
    constraint : array, shape (p, p), optional
        :math:`h = X^\top BX - I` if already known.
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    eta : array, shape ()
        The safe step (0-d array of the namespace of ``X``). Outside the region it is the step
        that minimises bound (b) on the next violation.
    """
    if check_input:
        X, BX, direction, symmetric_part, constraint = _check_points(
            ("X", X), ("BX", BX), ("direction", direction),
            square=(("symmetric_part", symmetric_part), ("constraint", constraint)))
        curvature = _check_curvature(curvature)
        epsilon = check_positive(epsilon, "epsilon")
    xp = get_namespace(X, BX, direction)
    h = constraint_matrix(X, BX) if constraint is None else constraint
    if symmetric_part is None:
        C = BX.T @ direction
        symmetric_part = C + C.T
    S = symmetric_part
    tiny = float(xp.finfo(X.dtype).smallest_normal) ** 0.5
    d = xp.sqrt(xp.sum(h * h))
    d_safe = xp.clip(d, min=tiny)
    c1 = xp.sum(h * S)
    c2 = xp.sum(S * S)
    q = xp.clip(xp.asarray(curvature, dtype=X.dtype, device=X.device), min=tiny)
    # bound (a): |d - eta b| + eta e + eta^2 q
    b = c1 / d_safe
    e = xp.sqrt(xp.clip(c2 - b * b, min=0.0))
    eta1 = ((b - e) + xp.sqrt(xp.clip((b - e) ** 2 + 4.0 * q * (epsilon - d), min=0.0))) / (2 * q)
    eta2 = (-(b + e) + xp.sqrt((b + e) ** 2 + 4.0 * q * (epsilon + d))) / (2 * q)
    eta_a = xp.clip(xp.minimum(eta1, eta2), min=0.0)
    # bound (b): tangent of the square root at d^2
    alpha = c2 / (2.0 * d_safe) + q
    disc = b * b + 4.0 * alpha * (epsilon - d)
    eta_b = (b + xp.sqrt(xp.clip(disc, min=0.0))) / (2.0 * alpha)
    inside = xp.maximum(eta_a, eta_b)
    outside = xp.clip(b, min=0.0) / (2.0 * alpha)
    return xp.where(d <= epsilon, inside, outside)


def landing_step(
    X,
    G,
    BX,
    *,
    learning_rate,
    omega=1.0,
    B=None,
    epsilon=0.5,
    gradient="relative",
    BinvG=None,
    curvature=None,
    BX2=None,
    G2=None,
    check_input=True,
):
    r"""One landing update :math:`X^+ = X - \min(\eta, \eta^\star)\,\Lambda(X)`.

    Every landing solver of the package takes this step (:func:`generalized_eigh`,
    :class:`LandingCCA`, :class:`LandingICA` and the torch optimizer
    :class:`~sciml_toolbox.nn.optim.LandingGeneralizedStiefel` share its implementation;
    :func:`landing_update` returns the direction and the step without applying them).

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
        Point, Euclidean gradient and ``B @ X`` (or ``B_zeta @ X``).
    learning_rate : float
        Step :math:`\eta`.
    omega : float, default=1.0
        Weight of the normal direction.
    B : callable or array, shape (n, n), optional
        Used only to compute the exact curvature ``tr(Lambda^T B Lambda)`` for the safe step
        when ``curvature`` is not given (with ``BX2``: the whole batch's B).
    epsilon : float or None, default=0.5
        Safe-region radius; ``None`` disables the safe step.
    gradient : {'relative', 'riemannian'}, default='relative'
    BinvG : array, shape (n, p), optional
        ``B^{-1} G`` for the Riemannian variant.
    curvature : float, array of shape (), or callable, optional
        Upper bound on :math:`\|\Lambda^\top B\Lambda\|_F` (see :func:`safe_step_size`), or a
        function ``direction -> bound`` (e.g. ``lambda D: lambda_max * sum(D * D)``).
    BX2, G2 : array, shape (n, p), optional
        A second, independent estimate ``B_zeta' @ X`` and the gradient on the same minibatch
        (see :func:`landing_direction`); the safe step then uses ``(BX + BX2) / 2``.
    check_input : bool, default=True
        Validate the inputs (see :func:`penalty`).

    Returns
    -------
    X_new : array, shape (n, p)
    step : float or array, shape ()
        The step actually taken.
    """
    direction, eta = landing_update(
        X, G, BX, learning_rate=learning_rate, omega=omega, B=B, epsilon=epsilon,
        gradient=gradient, BinvG=BinvG, curvature=curvature, BX2=BX2, G2=G2,
        check_input=check_input,
    )
    return X - eta * direction, eta


def landing_update(
    X,
    G,
    BX,
    *,
    learning_rate,
    omega=1.0,
    B=None,
    epsilon=0.5,
    gradient="relative",
    BinvG=None,
    curvature=None,
    BX2=None,
    G2=None,
    check_input=True,
):
    r"""The direction and the step of :func:`landing_step`, not applied.

    For callers that apply :math:`X \leftarrow X - \mathrm{step}\cdot\mathrm{direction}`
    themselves (in place, or after a check, as the torch optimizer
    :class:`~sciml_toolbox.nn.optim.LandingGeneralizedStiefel` does).

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
    learning_rate, omega, B, epsilon, gradient, BinvG, curvature, BX2, G2, check_input
        As in :func:`landing_step`.

    Returns
    -------
    direction : array, shape (n, p)
        The landing field :math:`\Lambda(X)` (:func:`landing_direction`).
    step : float or array, shape ()
        :math:`\min(\eta, \eta^\star)`, or ``learning_rate`` when ``epsilon`` is None.
    """
    if check_input:
        X, G, BX, BinvG, BX2, G2 = _check_points(("X", X), ("G", G), ("BX", BX),
                                                 ("BinvG", BinvG), ("BX2", BX2), ("G2", G2),
                                                 optional=("BinvG", "BX2", "G2"))
        omega = check_positive(omega, "omega", strict=False)
        gradient = check_option(gradient, "gradient", _GRADIENTS)
        learning_rate = check_positive(learning_rate, "learning_rate")
        epsilon = check_positive(epsilon, "epsilon", allow_none=True)
        if curvature is not None and not callable(curvature):
            curvature = _check_curvature(curvature)
        if B is not None and not callable(B):
            n = X.shape[0]
            (B,) = _check_points(("B", B))
            if tuple(B.shape) != (n, n):
                raise ValueError(f"B must have shape ({n}, {n}) to act on X, got "
                                 f"{tuple(B.shape)}")
    _check_variant(gradient, BinvG, BX2, G2)
    if epsilon is not None and curvature is None and B is None:
        raise ValueError("landing_step needs B or curvature when epsilon is set")
    direction, eta, _ = _landing_update(
        X, G, BX, learning_rate=learning_rate, omega=omega, epsilon=epsilon, gradient=gradient,
        BinvG=BinvG, BX2=BX2, G2=G2, B=B, curvature=curvature,
    )
    return direction, eta


def _check_variant(gradient, BinvG, BX2, G2):
    """Raise if the landing variant's optional arrays do not fit ``gradient``."""
    if gradient not in _GRADIENTS:
        raise ValueError(f"gradient must be one of {_GRADIENTS}, got {gradient!r}")
    if G2 is not None and BX2 is None:
        raise ValueError("G2 (the second minibatch's gradient) needs BX2")
    if BX2 is not None and gradient != "relative":
        raise ValueError("BX2 (two independent estimates) needs gradient='relative'")
    if gradient == "riemannian" and BinvG is None:
        raise ValueError("BinvG is required for gradient='riemannian' (B^{-1} @ G)")


def _landing_update(
    X, G, BX, *, learning_rate, omega, epsilon, gradient="relative", BinvG=None, BX2=None,
    G2=None, precondition=None, B=None, curvature=None,
):
    r"""The landing step shared by every solver: direction, safe step, no update.

    Inputs are not validated (callers check them once). Computes the field of
    :func:`landing_direction` (or its preconditioned form) and caps ``learning_rate`` by
    :func:`safe_step_size` at the curvature given by ``curvature`` or, failing that, by
    ``tr(D^T B D)``; the caller applies ``X - eta * direction`` (the torch optimizer applies
    it in place after its finiteness check).

    Parameters
    ----------
    X, G, BX : array, shape (n, p)
        Point, Euclidean gradient and ``B @ X`` (first estimate with ``BX2``).
    learning_rate : float
        Step :math:`\eta` (the cap).
    omega : float
        Weight of the normal direction.
    epsilon : float or None
        Safe-region radius; ``None``: the step is ``learning_rate``.
    gradient : {'relative', 'riemannian'}, default='relative'
    BinvG : array, shape (n, p), optional
        ``B^{-1} @ G`` for ``gradient='riemannian'``.
    BX2, G2 : array, shape (n, p), optional
        Second independent estimate (see :func:`landing_direction`); the safe step uses
        ``(BX + BX2) / 2``.
    precondition : callable, optional
        ``F -> P @ F`` for a symmetric positive-definite :math:`P \approx B^{-1}` and ``F`` of
        shape (n, 4p): the field after the change of variables :math:`X = P^{1/2}V`, mapped
        back (``LandingCCA(preconditioner=...)``); its tangent part is still B-skew, so the
        safe step applies unchanged.
    B : callable or array, shape (n, n), optional
        Gives ``BD = B @ direction`` and the curvature ``tr(D^T BD)`` when ``curvature`` is
        None.
    curvature : float, array of shape (), or callable, optional
        A bound on :math:`\|D^\top B D\|_F`, or a function ``direction -> bound``.

    Returns
    -------
    direction : array, shape (n, p)
    eta : float or array, shape ()
        The step to take: ``min(learning_rate, safe step)``.
    BD : array, shape (n, p), or None
        ``B @ direction`` when it was formed (``B`` used for the curvature), else None: lets
        a solver update ``BX`` without a second product with B.
    """
    xp = get_namespace(X, G, BX)
    D, S, h = _direction(X, G, BX, omega, gradient, BinvG, BX2, G2, precondition, xp)
    if epsilon is None:
        return D, learning_rate, None
    BD = None
    if curvature is None:
        BD = B(D) if callable(B) else B @ D
        q = xp.sum(D * BD)
    else:
        q = curvature(D) if callable(curvature) else curvature
    BXs = BX if BX2 is None else 0.5 * (BX + BX2)
    eta = safe_step_size(X, BXs, D, q, epsilon=epsilon, symmetric_part=S, constraint=h,
                         check_input=False)
    return D, xp.clip(eta, max=learning_rate), BD


def landing_block_step(
    W, G, Xb, reg, BW, *, learning_rate, omega, epsilon, BW2=None, G2=None, precondition=None,
    curvature_rows=None,
):
    r"""One landing step for a covariance constraint :math:`W^\top (X_b^\top X_b / r + \rho I)
    W = I` (the step of :class:`LandingCCA` and :class:`LandingICA`).

    The step of :func:`landing_step` with the curvature :math:`\mathrm{tr}(D^\top B_\zeta D)
    = \|X_b D\|_F^2 / r + \rho\|D\|_F^2` of the minibatch covariance.

    Parameters
    ----------
    W : array, shape (d, p)
        Current weights.
    G : array, shape (d, p)
        Euclidean gradient (the first half's with ``BW2``).
    Xb : array, shape (r, d)
        Centred minibatch rows (the rows behind ``BW`` and ``BW2``).
    reg : float
        Ridge :math:`\rho` of the constraint.
    BW : array, shape (d, p)
        :math:`B_\zeta W` (the first half's with ``BW2``).
    learning_rate, omega : float
        Step cap and weight of the normal direction.
    epsilon : float or None
        Safe-region radius; ``None`` disables the safe step.
    BW2, G2 : array, shape (d, p), optional
        The second half's estimates (see :func:`landing_direction`).
    precondition : callable, optional
        ``F -> P @ F`` (see :func:`_landing_update`): the preconditioned field.
    curvature_rows : int, optional
        Estimate the curvature on the first this many rows of ``Xb`` only (a cheaper random
        estimate of the same quantity).

    Returns
    -------
    W_new : array, shape (d, p)
    dn : array, shape ()
        :math:`\|D\|_F^2`, the squared norm of the direction.
    """
    xp = get_namespace(W, G, BW)
    if curvature_rows is not None and curvature_rows < Xb.shape[0]:
        Xb = Xb[:curvature_rows, ...]

    def curvature(D):
        XD = _xw(Xb, D)
        return xp.sum(XD * XD) / Xb.shape[0] + reg * xp.sum(D * D)

    D, eta, _ = _landing_update(
        W, G, BW, learning_rate=learning_rate, omega=omega, epsilon=epsilon, BX2=BW2, G2=G2,
        precondition=precondition, curvature=curvature,
    )
    return W - eta * D, xp.sum(D * D)
