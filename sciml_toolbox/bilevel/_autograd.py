"""A bilevel problem whose derivatives come from torch autograd.

torch is imported lazily, inside the methods: importing :mod:`sciml_toolbox.bilevel` never
imports torch.
"""

from __future__ import annotations

from .._validation import check_int
from ._problems import BilevelProblem

__all__ = ["AutogradProblem"]


def _torch():
    import torch

    return torch


class AutogradProblem(BilevelProblem):
    """Bilevel problem defined by two differentiable torch functions.

    Every derivative needed by :func:`hypergradient` (gradients, Hessian-vector products,
    the mixed derivative d_x d_z G, the Hessian diagonal and its derivative in x) is obtained by
    torch autograd, so users only write G and F.

    Parameters
    ----------
    inner : callable
        ``inner(z, x) -> 0-D tensor``: G, twice differentiable in z and differentiable in x.
    outer : callable
        ``outer(z, x) -> 0-D tensor``: F.
    n_inner, n_outer : int, optional
        Sizes of z and x, used to check shapes (unchecked when omitted).

    Notes
    -----
    ``z`` and ``x`` must be 1-D torch tensors (CPU or CUDA). The dense Hessian and its diagonal
    are computed with one Hessian-vector product per coordinate: use ``solver='cg'`` and avoid
    ``'jacobi'`` / ``'reparam_*'`` for large ``n_inner``.

    Examples
    --------
    >>> import torch
    >>> from sciml_toolbox.bilevel import AutogradProblem, hypergradient
    >>> A = torch.eye(3, dtype=torch.float64)
    >>> G = lambda z, x: 0.5 * torch.sum((A @ z - 1.0) ** 2) + 0.5 * torch.exp(x[0]) * z @ z
    >>> F = lambda z, x: 0.5 * torch.sum(z ** 2)
    >>> prob = AutogradProblem(G, F)
    >>> x = torch.zeros(1, dtype=torch.float64)
    >>> z = torch.full((3,), 0.5, dtype=torch.float64)   # exact: 1 / (1 + e^0)
    >>> round(float(hypergradient(prob, z, x)[0]), 6)  # d/dx 3/2 (1 + e^x)^-2 at 0
    -0.375
    """

    def __init__(self, inner, outer, *, n_inner=None, n_outer=None):
        if not callable(inner):
            raise TypeError(f"inner must be callable, got {type(inner).__name__}")
        if not callable(outer):
            raise TypeError(f"outer must be callable, got {type(outer).__name__}")
        self.inner = inner
        self.outer = outer
        self.n_inner = check_int(n_inner, "n_inner", min_value=1, allow_none=True)
        self.n_outer = check_int(n_outer, "n_outer", min_value=1, allow_none=True)

    @staticmethod
    def _leaves(z, x, *, need_x=False):
        zz = z.detach().requires_grad_(True)
        xx = x.detach().requires_grad_(need_x)
        return zz, xx

    @staticmethod
    def _grad(out, wrt, **kw):
        torch = _torch()
        (g,) = torch.autograd.grad(out, wrt, allow_unused=True, **kw)
        return torch.zeros_like(wrt) if g is None else g

    def inner_value(self, z, x):
        torch = _torch()
        with torch.no_grad():
            return self.inner(z, x)

    def outer_value(self, z, x):
        torch = _torch()
        with torch.no_grad():
            return self.outer(z, x)

    def inner_grad(self, z, x):
        torch = _torch()
        with torch.enable_grad():
            zz, xx = self._leaves(z, x)
            return self._grad(self.inner(zz, xx), zz).detach()

    def inner_hvp(self, z, x, v):
        torch = _torch()
        with torch.enable_grad():
            zz, xx = self._leaves(z, x)
            g = self._grad(self.inner(zz, xx), zz, create_graph=True)
            return self._grad(torch.sum(g * v.detach()), zz).detach()

    def inner_hessian(self, z, x):
        torch = _torch()
        xx = x.detach()
        return torch.autograd.functional.hessian(lambda zz: self.inner(zz, xx), z.detach())

    def inner_cross_vjp(self, z, x, v):
        torch = _torch()
        with torch.enable_grad():
            zz, xx = self._leaves(z, x, need_x=True)
            g = self._grad(self.inner(zz, xx), zz, create_graph=True)
            return self._grad(torch.sum(g * v.detach()), xx).detach()

    def inner_hessian_diag_cross_vjp(self, z, x, v):
        torch = _torch()
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            H = torch.autograd.functional.hessian(
                lambda zz: self.inner(zz, xx), z.detach(), create_graph=True
            )
            d = torch.diagonal(H)
            return self._grad(torch.sum(d * v.detach()), xx).detach()

    def outer_grad_z(self, z, x):
        torch = _torch()
        with torch.enable_grad():
            zz, xx = self._leaves(z, x)
            return self._grad(self.outer(zz, xx), zz).detach()

    def outer_grad_x(self, z, x):
        torch = _torch()
        with torch.enable_grad():
            zz, xx = self._leaves(z, x, need_x=True)
            return self._grad(self.outer(zz, xx), xx).detach()
