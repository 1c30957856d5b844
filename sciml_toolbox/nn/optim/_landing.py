r"""torch optimizer for parameters constrained to the generalized Stiefel manifold.

The update is the landing step of :mod:`sciml_toolbox.stiefel`; this module only manages
parameter groups, state and the per-step B. The array core is called directly with torch
tensors (they go through the array-API namespace), so CPU and CUDA parameters are handled by
the same code as the NumPy solvers.
"""

from __future__ import annotations

import torch

from ...stiefel import landing_update

__all__ = ["LandingGeneralizedStiefel"]


def _lookup(obj, p, index, name):
    """Resolve a per-step B / BX argument for parameter ``p`` (``index`` in the flat list)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(p)
    if isinstance(obj, (list, tuple)):
        if index >= len(obj):
            raise ValueError(f"{name} has {len(obj)} entries, fewer than the parameters")
        return obj[index]
    return obj


class LandingGeneralizedStiefel(torch.optim.Optimizer):
    r"""Landing SGD on :math:`\{X \in \mathbb{R}^{n\times p} : X^\top B X = I_p\}`.

    Each step moves every parameter along
    :math:`\Lambda(X) = \mathrm{skew}(G X^\top B) BX + \omega BX(X^\top BX - I_p)`
    (:func:`sciml_toolbox.stiefel.landing_direction`), with :math:`G` the gradient (or its
    momentum buffer), and caps the step with the safe step of
    :func:`sciml_toolbox.stiefel.safe_step_size` so that
    :math:`\|X^\top BX - I\|_F \le \varepsilon` is kept. B can change at every step: a
    minibatch covariance :math:`B_\zeta` (Vary et al., ICML 2024) is passed to :meth:`step`
    either as a matrix / callable (``B``) or directly as the product ``BX``.

    Parameters
    ----------
    params : iterable
        Parameters (2-D tensors of shape (n, p), ``p <= n``) or parameter-group dicts.
    lr : float
        Step size :math:`\eta`.
    omega : float, default=1.0
        Weight of the normal (penalty) direction.
    epsilon : float or None, default=0.5
        Safe-region radius; ``None`` disables the safe step. The safe step needs ``B @ D``: it
        is skipped for a parameter given only ``BX`` unless the group sets ``lambda_max`` (an
        upper bound on the largest eigenvalue of B), which gives the bound
        :math:`\|\Lambda^\top B\Lambda\|_F \le \lambda_{\max}\|\Lambda\|_F^2`.
    momentum : float, default=0.0
        Heavy-ball momentum on the Euclidean gradient.
    weight_decay : float, default=0.0
        Adds ``weight_decay * X`` to the gradient.
    lambda_max : float or None, default=None
        See ``epsilon``.
    foreach : bool or None, default=None
        Apply the final in-place updates with ``torch._foreach_add_`` (the directions involve
        per-parameter matrix products either way).
    fused : bool or None, default=None
        Not available (``True`` raises ``ValueError``); kept for the torch.optim signature.

    Notes
    -----
    :meth:`step` takes ``B`` or ``BX`` (keyword): a tensor (used for every parameter), a
    callable ``V -> B @ V``, a dict keyed by parameter, or a list in the order of the
    parameters over all groups. A group may also hold a fixed ``"B"`` (tensor or callable).
    The relative gradient never inverts B, so a rank-deficient minibatch covariance is fine.
    Works with any torch device; DTensor (FSDP2) parameters are not handled specially.
    Parameters must be real (float) tensors: the constraint is the real generalized Stiefel
    manifold, and complex parameters raise ``TypeError``.

    **Non-finite input raises.** :meth:`step` computes every update first and applies them
    only when they are all finite; otherwise it raises ``ValueError`` naming the culprit (the
    parameter, its gradient, ``B``, ``BX``, ...) and leaves every parameter and momentum
    buffer as it was. The torch optimizers (``torch.optim.SGD``, ``Adam``) do not check and
    write NaN into the parameters; this optimizer refuses instead, since a NaN direction also
    destroys the constraint. The cost is one ``torch.isfinite(update).all()`` per parameter,
    read once per step (one synchronisation on a GPU); the inputs are searched only on
    failure. Under mixed precision, ``torch.amp.GradScaler.step`` skips the step when the
    scaled gradients overflow, so such steps never reach this check.

    **Two independent minibatch estimates** (``BX2``, ``grad2``). With a random
    :math:`B_\zeta = A_b^\top A_b / r`, the landing field multiplies estimates of B with each
    other (:math:`B_\zeta X(X^\top B_\zeta X - I)`, and the relative gradient
    :math:`\mathrm{skew}(GX^\top B_\zeta)B_\zeta X`); one minibatch used for every factor is
    biased by its covariance, an :math:`O(1/r)` error that makes the iterate settle off the
    manifold at a violation that no learning-rate decay removes. Split each batch in two
    halves and pass ``BX`` (and the gradient in ``p.grad``) from the first half, ``BX2`` (and
    ``grad2``) from the second: the direction is then formed as in
    :func:`sciml_toolbox.stiefel.landing_direction` with ``BX2=`` / ``G2=``, whose normal part
    is unbiased and whose tangent part has no constraint drift on average. Pass ``grad2``
    whenever the loss is computed on the same rows as ``B_zeta`` (CCA, ICA, whitening
    losses): a gradient correlated with both estimates is not unbiased. Leave it out only
    when the gradient does not depend on the rows of ``B_zeta`` (``p.grad`` is then used for
    both halves). The cost is that of one batch (products per half). The safe step then uses
    :math:`(BX + BX_2)/2` (the whole batch) and the curvature from ``B`` (give the whole
    batch's product, e.g. ``B=lambda V: A_b.T @ (A_b @ V) / r``) or ``lambda_max``. Momentum
    keeps one buffer, of the two halves' mean gradient; each half's direction uses the
    previous buffer plus its own gradient. With ``BX2=BX`` and ``grad2=p.grad`` the step is
    the one-estimate step (up to rounding).

    >>> import torch
    >>> from sciml_toolbox.nn.optim import LandingGeneralizedStiefel
    >>> g = torch.Generator().manual_seed(0)
    >>> data = torch.randn(4000, 5, generator=g, dtype=torch.float64)
    >>> X = torch.nn.Parameter(0.3 * torch.randn(5, 2, generator=g, dtype=torch.float64))
    >>> opt = LandingGeneralizedStiefel([X], lr=0.2, lambda_max=2.0)
    >>> def loss_fn(A):  # any loss whose rows are the ones that estimate B
    ...     return -torch.log(torch.cosh(A @ X)).mean(0).sum()
    >>> for A in data.split(100):
    ...     A1, A2 = A[:50], A[50:]
    ...     opt.zero_grad()
    ...     loss_fn(A1).backward()                       # p.grad: first half
    ...     grad2 = torch.autograd.grad(loss_fn(A2), [X])  # second half, in parameter order
    ...     with torch.no_grad():
    ...         BX, BX2 = A1.T @ (A1 @ X) / 50, A2.T @ (A2 @ X) / 50
    ...     _ = opt.step(BX=BX, BX2=BX2, grad2=grad2)
    >>> C = data.T @ data / 4000
    >>> bool(torch.linalg.matrix_norm(X.detach().T @ C @ X.detach() - torch.eye(2,
    ...      dtype=torch.float64)) < 0.3)
    True

    Examples
    --------
    >>> import torch
    >>> from sciml_toolbox.nn.optim import LandingGeneralizedStiefel
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> A = torch.randn(6, 6, dtype=torch.float64); A = A + A.T
    >>> B = torch.eye(6, dtype=torch.float64) * 2.0
    >>> X = torch.nn.Parameter(torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64))[0] / 2**0.5)
    >>> opt = LandingGeneralizedStiefel([X], lr=0.05)
    >>> for _ in range(500):
    ...     opt.zero_grad()
    ...     loss = -0.5 * torch.trace(X.T @ A @ X)
    ...     loss.backward()
    ...     opt.step(B=B)
    >>> bool(torch.allclose(X.detach().T @ B @ X.detach(), torch.eye(2, dtype=torch.float64),
    ...                     atol=1e-6))
    True
    """

    def __init__(
        self,
        params,
        lr,
        *,
        omega=1.0,
        epsilon=0.5,
        momentum=0.0,
        weight_decay=0.0,
        lambda_max=None,
        foreach=None,
        fused=None,
    ):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not omega >= 0:
            raise ValueError(f"omega must be >= 0, got {omega!r}")
        if epsilon is not None and not epsilon > 0:
            raise ValueError(f"epsilon must be > 0 or None, got {epsilon!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if lambda_max is not None and not lambda_max > 0:
            raise ValueError(f"lambda_max must be > 0 or None, got {lambda_max!r}")
        if fused:
            raise ValueError("fused=True is not available for LandingGeneralizedStiefel")
        defaults = dict(
            lr=lr,
            omega=omega,
            epsilon=epsilon,
            momentum=momentum,
            weight_decay=weight_decay,
            lambda_max=lambda_max,
            foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        """Add a parameter group, checking that its parameters are real 2-D (n, p) tensors."""
        params = param_group.get("params") if isinstance(param_group, dict) else None
        if isinstance(params, torch.Tensor):
            params = [params]
        elif params is not None and not isinstance(params, (list, tuple, set)):
            params = list(params)  # a generator: consumed once here, handed on as a list
        if params is not None:
            param_group = {**param_group, "params": params}
            for p in params:
                if not isinstance(p, torch.Tensor):
                    continue  # torch.optim.Optimizer raises its own TypeError
                if not p.is_floating_point():
                    # the constraint X^T B X = I is the real generalized Stiefel manifold
                    raise TypeError(
                        "params must be real floating-point tensors (the generalized Stiefel "
                        f"constraint X^T B X = I is real), got dtype {p.dtype}"
                    )
                if p.ndim != 2 or p.shape[1] > p.shape[0]:
                    raise ValueError(
                        "params must be 2-D tensors of shape (n, p) with p <= n, got shape "
                        f"{tuple(p.shape)}"
                    )
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure=None, *, B=None, BX=None, BX2=None, grad2=None):
        """Take one landing step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.
        B : tensor (n, n), callable, dict or list, optional
            The constraint matrix (or a minibatch estimate) for this step. When ``BX`` is
            given, ``B`` only serves the safe step (curvature ``tr(D^T B D)``).
        BX : tensor (n, p), dict or list, optional
            Precomputed ``B @ X`` for this step (the stochastic mode: ``A_b.T @ (A_b @ X) / r``).
            With ``BX2``: the estimate from the first half of the batch.
        BX2 : tensor (n, p), dict or list, optional
            A second, independent estimate ``B_zeta' @ X`` (the second half of the batch), same
            forms as ``BX`` (a dict may leave parameters out: they take a one-estimate step).
            Needs ``BX`` for the same parameter. See the class notes.
        grad2 : tensor (n, p), dict, list or tuple, optional
            The gradient of the loss on the second half (``p.grad`` being the first half's),
            e.g. the tuple returned by ``torch.autograd.grad(loss2, params)`` in the order of
            the parameters over all groups (``None`` entries allowed). Needs ``BX2``; without
            it, ``p.grad`` is used for both halves.

        Returns
        -------
        loss : tensor or None

        Raises
        ------
        ValueError
            A shape that does not fit the parameter, or a non-finite update (a NaN or inf in
            the parameter, its gradient, ``grad2``, ``B``, ``BX`` or ``BX2``); no parameter
            or state is then changed.
        TypeError
            ``B``, ``BX``, ``BX2`` or ``grad2`` not a tensor of the parameter's dtype.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        index = -1
        # every update (and momentum buffer) is computed first and applied only once all of
        # them are finite, so that a bad input raises without touching any parameter or state
        updates, new_buffers, inputs = [], [], []
        for group in self.param_groups:
            updates_p, updates_d = [], []
            updates.append((group, updates_p, updates_d))
            for p in group["params"]:
                index += 1
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(
                        "LandingGeneralizedStiefel does not support sparse gradients"
                    )
                Bp = _lookup(B, p, index, "B")
                if Bp is None:
                    Bp = group.get("B")
                BXp = _lookup(BX, p, index, "BX")
                if Bp is None and BXp is None:
                    raise ValueError(
                        "step() needs B or BX for every parameter (or a group with a 'B' entry)"
                    )
                if Bp is not None and not callable(Bp):
                    _check_B(Bp, p)
                apply_B = (lambda V, M=Bp: M(V)) if callable(Bp) else (
                    None if Bp is None else (lambda V, M=Bp: M @ V)
                )
                bx_given = BXp is not None
                if not bx_given:
                    BXp = apply_B(p)
                _check_like(BXp, p, "BX" if bx_given else "B(X) (the product of B with X)")
                BX2p = _lookup(BX2, p, index, "BX2")
                G2 = _lookup(grad2, p, index, "grad2")
                if BX2p is not None:
                    if not bx_given:
                        raise ValueError(
                            "BX2 (the second half's estimate) needs BX (the first half's) for "
                            "the same parameter"
                        )
                    _check_like(BX2p, p, "BX2")
                if G2 is not None:
                    if BX2p is None:
                        raise ValueError(
                            "grad2 (the second half's gradient) needs BX2 for the same "
                            "parameter"
                        )
                    _check_like(G2, p, "grad2")
                G = p.grad
                if group["weight_decay"]:
                    G = G + group["weight_decay"] * p
                    if G2 is not None:
                        G2 = G2 + group["weight_decay"] * p
                if group["momentum"]:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    # the new buffer is stored after the finiteness check (out of place)
                    if G2 is None:
                        if buf is None:
                            buf = G.detach().clone()
                        else:
                            buf = buf * group["momentum"] + G
                        G = buf
                    else:
                        # one buffer (of the halves' mean); each half adds its own gradient to
                        # the previous buffer, which is independent of this batch
                        if buf is None:
                            G, G2 = G.detach().clone(), G2.detach().clone()
                            buf = 0.5 * (G + G2)
                        else:
                            past = buf * group["momentum"]
                            buf = past + 0.5 * (G + G2)
                            G, G2 = past + G, past + G2
                    new_buffers.append((state, buf))
                # the shared landing step; without B or lambda_max there is no curvature
                # for the safe step, which is then skipped
                lam = group["lambda_max"]
                no_curv = apply_B is None and lam is None
                D, eta = landing_update(
                    p, G, BXp, learning_rate=group["lr"], omega=group["omega"],
                    epsilon=None if no_curv else group["epsilon"], BX2=BX2p, G2=G2, B=apply_B,
                    curvature=None if apply_B is not None or lam is None else (
                        lambda D, lam=lam: lam * (D * D).sum()),
                    check_input=False,
                )
                updates_p.append(p)
                updates_d.append(-eta * D)
                inputs.append((index, p, G2, Bp, BXp, BX2p, bx_given))
        # one finiteness check of the updates per step (flags computed first, then read; on a
        # GPU this is one synchronisation); the inputs are searched only when it fails
        flags = [torch.isfinite(d).all() for _, _, ds in updates for d in ds]
        if not all(bool(f) for f in flags):
            ds = [d for _, _, ds in updates for d in ds]
            for d, args in zip(ds, inputs, strict=True):
                if not bool(torch.isfinite(d).all()):
                    _blame_nonfinite(*args)
        for state, buf in new_buffers:
            state["momentum_buffer"] = buf
        for group, updates_p, updates_d in updates:
            if not updates_p:
                continue
            if group["foreach"]:
                torch._foreach_add_(updates_p, updates_d)
            else:
                for p, d in zip(updates_p, updates_d, strict=True):
                    p.add_(d)
        return loss


def _check_like(t, p, name):
    """Raise if ``t`` (the argument ``name``) is not a tensor of the shape and dtype of the
    parameter ``p``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
    if t.dtype != p.dtype:
        raise TypeError(f"{name} must have the dtype of the parameter ({p.dtype}), got "
                        f"{t.dtype}")
    if tuple(t.shape) != tuple(p.shape):
        raise ValueError(f"{name} must have the shape of the parameter {tuple(p.shape)}, got "
                         f"{tuple(t.shape)}")


def _check_B(B, p):
    """Raise if the matrix ``B`` (a tensor, not a callable) does not fit the parameter ``p``."""
    if not isinstance(B, torch.Tensor):
        raise TypeError(f"B must be a torch tensor (n, n) or a callable V -> B @ V, got "
                        f"{type(B).__name__}")
    if B.dtype != p.dtype:
        raise TypeError(f"B must have the dtype of the parameter ({p.dtype}), got {B.dtype}")
    n = p.shape[0]
    if tuple(B.shape) != (n, n):
        raise ValueError(f"B must have shape ({n}, {n}) for a parameter of shape "
                         f"{tuple(p.shape)}, got {tuple(B.shape)}")


def _blame_nonfinite(index, p, G2, B, BX, BX2, bx_given):
    """Raise a ``ValueError`` naming the input that made the update of ``params[index]`` not
    finite (called only once the update was found to hold NaN or inf)."""
    candidates = [(f"params[{index}]", p), (f"params[{index}].grad (its gradient)", p.grad),
                  ("grad2", G2), ("BX" if bx_given else "B(X) (the product of B with X)", BX),
                  ("BX2", BX2), ("B", B if isinstance(B, torch.Tensor) else None)]
    for name, t in candidates:
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or inf (for params[{index}]); no parameter was "
                             "updated")
    raise ValueError(f"the landing update of params[{index}] is not finite although its "
                     "inputs are (a callable B returning NaN or inf, or an overflow: lower lr, "
                     "or rescale B or the loss); no parameter was updated")
