"""AdEMAMix and Simplified AdEMAMix: single-tensor, foreach and fused (Triton) steps.

Both optimizers write their update in one generic form, which is what the three code paths
implement (see :class:`_Coefficients`)::

    A <- aA * A + bA * g          (optional buffer: AdEMAMix's fast EMA m1)
    B <- aB * B + bB * g          (AdEMAMix's slow EMA m2, or the simplified momentum)
    v <- b2 * v + (1 - b2) * g^2
    u  = (cA * A + cB * B + cG * g) / (sqrt(v) * r2 + eps),   r2 = 1 / sqrt(1 - b2^t)
    theta <- theta * (1 - lr * wd) - lr * u

References
----------
.. [1] M. Pagliardini, P. Ablin, D. Grangier. "The AdEMAMix optimizer: better, faster, older".
   ICLR 2025, arXiv:2409.03137. Algorithm 1 and section 3.1 (schedulers).
.. [2] D. Morwani, N. Vyas, H. Zhang, S. Kakade. "Connections between schedule-free optimizers,
   AdEMAMix, and accelerated SGD variants". 2025, arXiv:2502.02431 (Simplified AdEMAMix).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch.optim import Optimizer

from ..._backends import triton_installed, triton_interpret

__all__ = [
    "AdEMAMix",
    "SimplifiedAdEMAMix",
    "ademamix_alpha_scheduler",
    "ademamix_beta3_scheduler",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------------
# schedulers
def ademamix_alpha_scheduler(step, alpha, T_alpha):
    """Linear warmup of the mixing coefficient alpha, from 0 (paper [1]_, section 3.1).

    Parameters
    ----------
    step : int
        The 1-based step count t.
    alpha : float
        Final value.
    T_alpha : int or None
        Warmup length; ``None`` means no warmup.

    Returns
    -------
    alpha_t : float
        ``min(t * alpha / T_alpha, alpha)``.

    References
    ----------
    .. [1] Pagliardini, Ablin, Grangier (2024), arXiv:2409.03137.
    """
    step = _check_step(step, "ademamix_alpha_scheduler")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) \
            or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"ademamix_alpha_scheduler: alpha must be a finite float >= 0, "
                         f"got {alpha!r}")
    _check_warmup(T_alpha, "T_alpha", "ademamix_alpha_scheduler")
    if T_alpha is None or step >= T_alpha:
        return float(alpha)
    return float(alpha) * step / T_alpha


def ademamix_beta3_scheduler(step, beta_end, beta_start, T):
    """Warmup of an EMA coefficient that is linear in the EMA's half-life ([1]_, section 3.1).

    The half-life of ``beta`` is ``ln(1/2) / ln(beta)``; it moves linearly from that of
    ``beta_start`` (at t = 0) to that of ``beta_end`` (at t = T)::

        beta(t) = min(exp(ln(b_s) ln(b_e) / ((1 - t/T) ln(b_e) + (t/T) ln(b_s))), b_e)

    ``beta_start = 0`` (half-life 0) is allowed. Used for beta3 in AdEMAMix (from beta1) and for
    beta1 in Simplified AdEMAMix (from ``min_beta1``).

    Parameters
    ----------
    step : int
        The 1-based step count t.
    beta_end, beta_start : float
        Final and initial coefficients, in [0, 1).
    T : int or None
        Warmup length; ``None`` means no warmup (``beta_end`` at every step).

    Returns
    -------
    beta_t : float

    References
    ----------
    .. [1] Pagliardini, Ablin, Grangier (2024), arXiv:2409.03137.
    """
    where = "ademamix_beta3_scheduler"
    step = _check_step(step, where)
    for name, b in (("beta_end", beta_end), ("beta_start", beta_start)):
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not 0.0 <= b < 1.0:
            raise ValueError(f"{where}: {name} must be in [0, 1), got {b!r}")
    _check_warmup(T, "T", where)
    if T is None or step >= T or beta_end == 0.0:
        return float(beta_end)
    a = step / T
    log_end = math.log(beta_end)
    # 1 / ln(beta) is proportional to the half-life; 1 / ln(0) = 0
    inv_start = 0.0 if beta_start == 0.0 else 1.0 / math.log(beta_start)
    inv = (1.0 - a) * inv_start + a / log_end
    return min(math.exp(1.0 / inv), float(beta_end))


def _check_step(step, where):
    if isinstance(step, torch.Tensor) and step.numel() == 1 and not step.is_floating_point():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"{where}: step must be an int >= 1 (the 1-based step count), "
                         f"got {step!r}")
    return int(step)


def _check_warmup(T, name, where):
    if T is None:
        return
    if isinstance(T, bool) or not isinstance(T, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int >= 1 or None, got {T!r}")
    if T < 1:
        raise ValueError(f"{where}: {name} must be >= 1 or None, got {T!r}")


# --------------------------------------------------------------------------------------------
# the generic per-step coefficients shared by the three paths
@dataclass(frozen=True)
class _Coefficients:
    aA: float
    bA: float
    cA: float
    aB: float
    bB: float
    cB: float
    cG: float
    b2: float
    r2: float  # 1 / sqrt(1 - b2^t)
    eps: float
    lr: float
    wd: float
    has_A: bool
    maximize: bool


def _validate_hparams(where, *, lr, betas, eps, weight_decay, alpha, warmups, n_betas):
    """Check hyperparameters, raising ValueError/TypeError naming the argument."""
    if isinstance(lr, torch.Tensor):
        if lr.numel() != 1:
            raise ValueError(f"{where}: lr must be a scalar, got a tensor of shape {lr.shape}")
        lr_val = float(lr)
    elif isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        lr_val = float(lr)
    else:
        raise TypeError(f"{where}: lr must be a float >= 0, got {lr!r}")
    if not lr_val >= 0.0:
        raise ValueError(f"{where}: lr must be >= 0, got {lr!r}")
    if not isinstance(betas, (tuple, list)) or len(betas) != n_betas:
        raise ValueError(f"{where}: betas must be a tuple of {n_betas} floats in [0, 1), "
                         f"got {betas!r}")
    for i, b in enumerate(betas):
        if not isinstance(b, numbers.Real) or isinstance(b, bool) or not 0.0 <= b < 1.0:
            raise ValueError(f"{where}: betas[{i}] must be in [0, 1), got {b!r}")
    if not isinstance(eps, numbers.Real) or not eps > 0.0:
        raise ValueError(f"{where}: eps must be > 0, got {eps!r}")
    if not isinstance(weight_decay, numbers.Real) or not weight_decay >= 0.0:
        raise ValueError(f"{where}: weight_decay must be >= 0, got {weight_decay!r}")
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not alpha >= 0.0 \
            or not math.isfinite(alpha):
        raise ValueError(f"{where}: alpha must be a finite float >= 0, got {alpha!r}")
    for name, T in warmups.items():
        if T is None:
            continue
        if isinstance(T, bool) or not isinstance(T, numbers.Integral):
            raise TypeError(f"{where}: {name} must be an int >= 1 or None, got {T!r}")
        if T < 1:
            raise ValueError(f"{where}: {name} must be >= 1 or None, got {T!r}")


def _real_dtype(dtype):
    """The dtype of a parameter once viewed as real (complex64 -> float32, ...)."""
    return dtype.to_real() if dtype.is_complex else dtype


def _local(t):
    """The local shard of a DTensor (elementwise updates act shard by shard), else ``t``."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


class _AdEMAMixBase(Optimizer):
    """Shared machinery: state, grouping, and the three update paths."""

    _buffer_A = None  # state key of the optional buffer (or None)
    _buffer_B = None
    _n_betas = 3
    _warmup_keys = ()

    def __init__(self, params, defaults, *, foreach, fused):
        if foreach and fused:
            raise ValueError("foreach and fused cannot both be True: choose one path")
        for name, flag in (("foreach", foreach), ("fused", fused)):
            if flag is not None and not isinstance(flag, bool):
                raise TypeError(f"{name} must be True, False or None, got {flag!r}")
        defaults = dict(defaults, foreach=foreach, fused=fused)
        super().__init__(params, defaults)
        if fused:
            self._check_fused_supported()

    # -- validation -------------------------------------------------------------------------
    def add_param_group(self, param_group):
        # validate every group, including the overrides given per group
        merged = dict(self.defaults, **{k: v for k, v in param_group.items() if k != "params"})
        self._validate(merged)
        super().add_param_group(param_group)

    def _validate(self, group):
        _validate_hparams(
            type(self).__name__, lr=group["lr"], betas=group["betas"], eps=group["eps"],
            weight_decay=group["weight_decay"], alpha=group["alpha"],
            warmups={k: group[k] for k in self._warmup_keys}, n_betas=self._n_betas)

    def _check_fused_supported(self):
        if not triton_installed():
            raise ValueError("fused=True needs triton (pip install triton); "
                             "use foreach=True instead")
        for group in self.param_groups:
            for p in group["params"]:
                dev = _local(p).device.type
                if dev != "cuda" and not (dev == "cpu" and triton_interpret()):
                    raise ValueError(
                        "fused=True needs CUDA parameters (or CPU ones with TRITON_INTERPRET=1), "
                        f"got a parameter on {dev!r}; use foreach=True instead")
                if _real_dtype(p.dtype) not in (torch.float32, torch.float16, torch.bfloat16):
                    raise ValueError("fused=True supports float32, float16, bfloat16 (and "
                                     f"complex64) parameters, got {p.dtype}; use foreach=True "
                                     "instead")

    # -- state ----------------------------------------------------------------------------------
    @staticmethod
    def _state_dtype(p):
        # 16-bit parameters keep their moments in float32: a beta3 = 0.9999 EMA cannot be
        # accumulated in bf16 (the (1 - beta3) g increments round away).
        return torch.float32 if p.dtype in _LOW_PRECISION else p.dtype

    def _has_A(self, group):
        raise NotImplementedError

    def _init_state(self, p, group):
        state = self.state[p]
        dtype = self._state_dtype(p)
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state[self._buffer_B] = torch.zeros_like(p, dtype=dtype,
                                                     memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype,
                                                   memory_format=torch.preserve_format)
        if self._buffer_A is not None and self._has_A(group) and self._buffer_A not in state:
            state[self._buffer_A] = torch.zeros_like(p, dtype=dtype,
                                                     memory_format=torch.preserve_format)
        return state

    def load_state_dict(self, state_dict):
        """Load a state saved by :meth:`state_dict`.

        Same as :meth:`torch.optim.Optimizer.load_state_dict`, except that the float32 moments of
        16-bit parameters stay float32 (the base class would cast them to the parameter dtype).
        """
        keep = []
        saved_groups = state_dict["param_groups"]
        for g_saved, g_now in zip(saved_groups, self.param_groups, strict=False):
            for pid, p in zip(g_saved["params"], g_now["params"], strict=False):
                if p.dtype in _LOW_PRECISION and pid in state_dict["state"]:
                    keep.append((p, {k: v for k, v in state_dict["state"][pid].items()
                                     if k != "step" and isinstance(v, torch.Tensor)}))
        super().load_state_dict(state_dict)
        for p, bufs in keep:
            for k, v in bufs.items():
                self.state[p][k] = v.to(device=p.device, dtype=torch.float32, copy=True)

    # -- the step ---------------------------------------------------------------------------
    def _coefficients(self, group, state, step):
        raise NotImplementedError

    def _post_step_state(self, group, state, step):
        """Hook for per-parameter scalars that advance with the step (none by default)."""

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        loss : Tensor or None
            The closure's value.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            for p in group["params"]:  # refuse before any state changes
                if p.grad is not None and p.grad.is_sparse:
                    raise TypeError(
                        f"{type(self).__name__} does not support sparse gradients "
                        "(a parameter has a sparse grad); use dense gradients, e.g. "
                        "nn.Embedding(sparse=False)")
        for group in self.param_groups:
            buckets = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._init_state(p, group)
                state["step"] += 1
                step = int(state["step"].item())
                coef = self._coefficients(group, state, step)
                key = (_local(p).device, _real_dtype(p.dtype), coef)
                buckets.setdefault(key, []).append(p)
                self._post_step_state(group, state, step)

            fused = bool(group["fused"])
            foreach = group["foreach"]
            if foreach is None:
                foreach = not fused
            for (_, _, coef), params in buckets.items():
                tensors = self._gather(params, coef)
                if fused:
                    from ._fused_ademamix import fused_update

                    fused_update(*tensors, coef)
                elif foreach:
                    _foreach_update_blocked(*tensors, coef)
                else:
                    _single_tensor_update(*tensors, coef)
        return loss

    def _gather(self, params, coef):
        ps, gs, As, Bs, vs = [], [], [], [], []
        for p in params:
            st = self.state[p]
            ps.append(_real_view(p))
            gs.append(_real_view(p.grad))
            As.append(_real_view(st[self._buffer_A]) if coef.has_A else None)
            Bs.append(_real_view(st[self._buffer_B]))
            vs.append(_real_view(st["exp_avg_sq"]))
        return ps, gs, As, Bs, vs


def _real_view(t):
    """The local shard of ``t``, a complex one viewed as real (``torch.view_as_real``).

    A complex parameter is optimized as the pairs (real, imaginary) of its entries, each with
    its own second moment, as :class:`torch.optim.Adam` does: the run is the same as on
    ``torch.view_as_real`` of the parameters.
    """
    t = _local(t)
    return torch.view_as_real(t) if t.is_complex() else t


# --------------------------------------------------------------------------------------------
# the single-tensor path: the update written out per parameter
def _single_tensor_update(ps, gs, As, Bs, vs, c):
    for p, g, A, B, v in zip(ps, gs, As, Bs, vs, strict=True):
        low = p.dtype in _LOW_PRECISION
        p32 = p.float() if low else p
        g = g.to(B.dtype)
        if c.maximize:
            g = -g
        if c.has_A:
            A.mul_(c.aA).add_(g, alpha=c.bA)
        B.mul_(c.aB).add_(g, alpha=c.bB)
        v.mul_(c.b2).addcmul_(g, g, value=1.0 - c.b2)
        denom = v.sqrt().mul_(c.r2).add_(c.eps)
        num = B.mul(c.cB)
        if c.has_A:
            num.add_(A, alpha=c.cA)
        if c.cG != 0.0:
            num.add_(g, alpha=c.cG)
        if c.wd != 0.0:
            # u + wd p = (num + wd p denom) / denom: p is rounded once per step (p * (1 - lr wd)
            # would round 1 - lr wd the same way at every step, a drift in float32)
            num.addcmul_(p32, denom, value=c.wd)
        p32.addcdiv_(num, denom, value=-c.lr)
        if low:
            p.copy_(p32)


# --------------------------------------------------------------------------------------------
# the foreach path: the same update with torch._foreach_* kernels, with the bias corrections
# folded into scalars: u = sqrt(bc2) * num / (sqrt(v) + eps * sqrt(bc2))
def _foreach_update(ps, gs, As, Bs, vs, c):
    low = ps[0].dtype in _LOW_PRECISION
    p_work = [p.float() for p in ps] if low else ps
    if gs[0].dtype != Bs[0].dtype:
        gs = [g.to(Bs[0].dtype) for g in gs]
    if c.maximize:
        gs = torch._foreach_neg(gs)
    # EMAs: lerp_(x, g, w) is x + w (g - x) = (1 - w) x + w g; used when bX = 1 - aX
    if c.has_A:
        _foreach_ema_(As, gs, c.aA, c.bA)
    _foreach_ema_(Bs, gs, c.aB, c.bB)
    torch._foreach_mul_(vs, c.b2)
    torch._foreach_addcmul_(vs, gs, gs, value=1.0 - c.b2)
    denom = torch._foreach_sqrt(vs)
    torch._foreach_add_(denom, c.eps / c.r2)
    # numerator: the nonzero terms, the first one as the base with its scale pulled out
    # (weight decay folded in as well: u + wd p = (num + wd p denom) / denom, so that p is
    # rounded once per step, as in the single-tensor path)
    terms = [(t, w) for t, w in ((As, c.cA), (Bs, c.cB), (gs, c.cG))
             if w != 0.0 and (t is not As or c.has_A)]
    if not terms:  # alpha = 0 and no other term: only the decay is left
        terms = [(Bs, 0.0)]
    (base, w0), rest = terms[0], terms[1:]
    scale = w0 / c.r2  # u = scale * num / denom
    if rest:
        num = torch._foreach_add(base, rest[0][0], alpha=rest[0][1] / w0)
        for t, w in rest[1:]:
            torch._foreach_add_(num, t, alpha=w / w0)
    elif c.wd != 0.0 and scale != 0.0:
        num = torch._foreach_mul(base, 1.0)  # a copy: the decay term is added to it
    else:
        num = base
    if c.wd != 0.0:
        if scale == 0.0:
            torch._foreach_add_(p_work, p_work, alpha=-c.lr * c.wd)
        else:
            torch._foreach_addcmul_(num, p_work, denom, value=c.wd / scale)
    if scale != 0.0:
        torch._foreach_addcdiv_(p_work, num, denom, value=-c.lr * scale)
    if low:
        torch._foreach_copy_(ps, p_work)


#: on CPU the foreach path runs on slices of this many elements, a few per call, so that the
#: arrays and temporaries of one call stay in the L2 cache (faster than whole tensors, whose
#: temporaries also pay fresh page faults at every step; timings in benchmarks/optim.md)
_CPU_SLICE = 1 << 16
_CPU_CALL = 1 << 18


def _foreach_update_blocked(ps, gs, As, Bs, vs, c):
    """The foreach update, on CUDA as is and on CPU over cache-sized slices of the tensors."""
    if ps[0].device.type != "cpu":
        _foreach_update(ps, gs, As, Bs, vs, c)
        return
    lists = ([], [], [], [], [])
    size = 0
    for tensors in zip(ps, gs, As, Bs, vs, strict=True):
        if tensors[0].numel() > _CPU_SLICE and all(
                t.is_contiguous() for t in tensors if t is not None):
            pieces = [None if t is None else t.view(-1).split(_CPU_SLICE) for t in tensors]
            items = zip(*(pc if pc is not None else [None] * len(pieces[0]) for pc in pieces),
                        strict=True)
        else:
            items = [tensors]
        for item in items:
            for lst, t in zip(lists, item, strict=True):
                lst.append(t)
            size += item[0].numel()
            if size >= _CPU_CALL:
                _foreach_update(*lists, c)
                lists = ([], [], [], [], [])
                size = 0
    if lists[0]:
        _foreach_update(*lists, c)


def _foreach_ema_(xs, gs, a, b):
    if abs((a + b) - 1.0) < 1e-15:
        torch._foreach_lerp_(xs, gs, b)
    else:
        torch._foreach_mul_(xs, a)
        torch._foreach_add_(xs, gs, alpha=b)


# --------------------------------------------------------------------------------------------
class AdEMAMix(_AdEMAMixBase):
    r"""AdEMAMix: Adam with a mixture of a fast and a slow gradient EMA ([1]_, Algorithm 1).

    For each parameter, with gradient :math:`g` at step :math:`t \geq 1`:

    .. math::

        m_1 &\leftarrow \beta_1 m_1 + (1 - \beta_1) g, \qquad
        m_2 \leftarrow \beta_3(t) m_2 + (1 - \beta_3(t)) g, \qquad
        \nu \leftarrow \beta_2 \nu + (1 - \beta_2) g^2, \\
        \theta &\leftarrow \theta - \eta \left( \frac{\hat m_1 + \alpha(t) m_2}
        {\sqrt{\hat\nu} + \epsilon} + \lambda \theta \right),

    with :math:`\hat m_1 = m_1 / (1 - \beta_1^t)`, :math:`\hat\nu = \nu / (1 - \beta_2^t)`.
    The slow EMA :math:`m_2` is not bias-corrected and weight decay :math:`\lambda` is decoupled
    (AdamW style, multiplied by the learning rate). :math:`\alpha(t)` warms up linearly over
    ``T_alpha`` steps (:func:`ademamix_alpha_scheduler`) and :math:`\beta_3(t)` linearly in
    half-life from :math:`\beta_1` over ``T_beta3`` steps (:func:`ademamix_beta3_scheduler`).
    With :math:`\beta_1 = 0` the :math:`m_1` buffer is not allocated (:math:`\hat m_1 = g`).

    Parameters
    ----------
    params : iterable
        Parameters or dicts defining parameter groups (any keyword below may be set per group).
    lr : float, default=1e-3
        Learning rate :math:`\eta` (>= 0).
    betas : tuple of 3 floats, default=(0.9, 0.999, 0.9999)
        :math:`(\beta_1, \beta_2, \beta_3)`, each in [0, 1).
    alpha : float, default=5.0
        Weight of the slow EMA (>= 0).
    T_alpha, T_beta3 : int or None, default=None
        Warmup lengths of alpha and beta3 (>= 1), usually both the total number of steps;
        ``None`` means no warmup. Long runs with beta3 close to 1 need them ([1]_, section 3.1).
    eps : float, default=1e-8
        Added to the denominator (> 0).
    weight_decay : float, default=0.0
        Decoupled weight decay :math:`\lambda` (>= 0).
    foreach : bool or None, default=None
        Use the multi-tensor ``torch._foreach_*`` path (the default unless ``fused``).
    fused : bool or None, default=None
        Use the fused Triton kernel: one launch per step for all tensors of a group with the same
        device and dtype. Needs CUDA tensors (or CPU ones under ``TRITON_INTERPRET=1``).
    maximize : bool, default=False
        Maximize the objective instead of minimizing it.

    Notes
    -----
    State per parameter: ``step`` (a CPU scalar tensor), ``exp_avg`` (:math:`m_1`, absent when
    :math:`\beta_1 = 0`), ``exp_avg_slow`` (:math:`m_2`) and ``exp_avg_sq`` (:math:`\nu`): 3 (or
    2) parameter-sized buffers, 50% more than Adam. Parameters in float16 / bfloat16 keep their
    buffers in float32 and are updated in float32 before rounding back.

    The beta3 warmup uses the paper's closed form exactly; the authors' code adds 1e-8 inside a
    logarithm, which changes beta3(t) by a relative amount below 1e-7.

    Works with LR schedulers, gradient clipping, :class:`torch.amp.GradScaler` (through the
    usual unscale, no fused inf check), DDP (gradients are averaged before the step) and FSDP2 /
    DTensor parameters (the update is elementwise, applied to each local shard).

    References
    ----------
    .. [1] M. Pagliardini, P. Ablin, D. Grangier. "The AdEMAMix optimizer: better, faster,
       older". ICLR 2025, arXiv:2409.03137.

    Examples
    --------
    >>> import torch
    >>> from sciml_toolbox.nn.optim import AdEMAMix
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = AdEMAMix(model.parameters(), lr=1e-3, T_alpha=1000, T_beta3=1000)
    >>> loss = model(torch.randn(8, 4)).pow(2).mean()
    >>> loss.backward()
    >>> opt.step()
    """

    _buffer_A = "exp_avg"
    _buffer_B = "exp_avg_slow"
    _n_betas = 3
    _warmup_keys = ("T_alpha", "T_beta3")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, T_alpha=None,
                 T_beta3=None, eps=1e-8, weight_decay=0.0, *, foreach=None, fused=None,
                 maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        alpha=alpha, T_alpha=T_alpha, T_beta3=T_beta3, eps=eps,
                        weight_decay=weight_decay, maximize=bool(maximize))
        _validate_hparams("AdEMAMix", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                          alpha=alpha, warmups={"T_alpha": T_alpha, "T_beta3": T_beta3},
                          n_betas=3)
        super().__init__(params, defaults, foreach=foreach, fused=fused)

    def _has_A(self, group):
        return group["betas"][0] != 0.0

    def _coefficients(self, group, state, step):
        b1, b2, b3 = group["betas"]
        lr = float(group["lr"])
        alpha_t = ademamix_alpha_scheduler(step, group["alpha"], group["T_alpha"])
        b3_t = ademamix_beta3_scheduler(step, b3, b1, group["T_beta3"])
        r2 = 1.0 / math.sqrt(1.0 - b2**step)
        has_A = b1 != 0.0
        cA = 1.0 / (1.0 - b1**step) if has_A else 0.0
        return _Coefficients(aA=b1, bA=1.0 - b1, cA=cA, aB=b3_t, bB=1.0 - b3_t, cB=alpha_t,
                             cG=0.0 if has_A else 1.0, b2=b2, r2=r2, eps=group["eps"], lr=lr,
                             wd=group["weight_decay"], has_A=has_A,
                             maximize=group["maximize"])


class SimplifiedAdEMAMix(_AdEMAMixBase):
    r"""Simplified AdEMAMix: one momentum buffer, the gradient mixed in ([2]_).

    .. math::

        m &\leftarrow \beta_1(t) m + g, \qquad
        \nu \leftarrow \beta_2 \nu + (1 - \beta_2) g^2, \\
        \theta &\leftarrow \theta - \eta \left( \frac{(\alpha g + m) / s_t}
        {\sqrt{\nu / (1 - \beta_2^t)} + \epsilon} + \lambda \theta \right),

    where the momentum is a sum ("theory style", no :math:`1 - \beta_1` factor) and
    :math:`s_t = 1` by default, or :math:`s_t = \beta_1(t) s_{t-1} + 1` (the sum of the momentum
    weights) with ``bias_correction1=True``. :math:`\beta_1(t)` warms up linearly in half-life
    from ``min_beta1`` over ``T_beta1`` steps (:func:`ademamix_beta3_scheduler`). It matches
    AdEMAMix with a slow EMA only; ``alpha`` should shrink as the batch grows ([2]_).

    Parameters
    ----------
    params : iterable
        Parameters or dicts defining parameter groups.
    lr : float, default=1e-3
        Learning rate (>= 0). With the summed momentum, an Adam learning rate ``lr_adam``
        translates to about ``lr_adam * sqrt((1 - min_beta1) * (1 - beta1))`` ([2]_).
    betas : tuple of 2 floats, default=(0.99, 0.95)
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    alpha : float, default=0.0
        Weight of the current gradient (>= 0).
    T_beta1 : int or None, default=None
        Warmup length of beta1 (>= 1); ``None`` means no warmup.
    min_beta1 : float, default=0.9
        Start of the beta1 warmup, in [0, 1).
    eps : float, default=1e-8
        Added to the denominator (> 0).
    weight_decay : float, default=0.0
        Decoupled weight decay (>= 0).
    bias_correction1 : bool, default=False
        Divide the numerator by the sum of the momentum weights.
    foreach, fused, maximize
        As in :class:`AdEMAMix`.

    Notes
    -----
    State: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`\nu`): 2 parameter-sized
    buffers, as Adam; ``momentum_norm`` (a scalar) with ``bias_correction1``.

    References
    ----------
    .. [2] D. Morwani, N. Vyas, H. Zhang, S. Kakade. "Connections between schedule-free
       optimizers, AdEMAMix, and accelerated SGD variants". 2025, arXiv:2502.02431.
    """

    _buffer_A = None
    _buffer_B = "exp_avg"
    _n_betas = 2
    _warmup_keys = ("T_beta1",)

    def __init__(self, params, lr=1e-3, betas=(0.99, 0.95), alpha=0.0, T_beta1=None,
                 min_beta1=0.9, eps=1e-8, weight_decay=0.0, *, bias_correction1=False,
                 foreach=None, fused=None, maximize=False):
        _validate_hparams("SimplifiedAdEMAMix", lr=lr, betas=betas, eps=eps,
                          weight_decay=weight_decay, alpha=alpha,
                          warmups={"T_beta1": T_beta1}, n_betas=2)
        _check_min_beta1(min_beta1)
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas,
                        alpha=alpha, T_beta1=T_beta1, min_beta1=min_beta1, eps=eps,
                        weight_decay=weight_decay, bias_correction1=bool(bias_correction1),
                        maximize=bool(maximize))
        super().__init__(params, defaults, foreach=foreach, fused=fused)

    def _validate(self, group):
        super()._validate(group)
        _check_min_beta1(group["min_beta1"])

    def _has_A(self, group):
        return False

    def _beta1(self, group, step):
        return ademamix_beta3_scheduler(step, group["betas"][0], group["min_beta1"],
                                        group["T_beta1"])

    def _coefficients(self, group, state, step):
        b2 = group["betas"][1]
        b1_t = self._beta1(group, step)
        scale = 1.0
        if group["bias_correction1"]:
            norm = float(state.get("momentum_norm", 0.0)) * b1_t + 1.0
            scale = 1.0 / norm
        r2 = 1.0 / math.sqrt(1.0 - b2**step)
        return _Coefficients(aA=0.0, bA=0.0, cA=0.0, aB=b1_t, bB=1.0, cB=scale,
                             cG=float(group["alpha"]) * scale, b2=b2, r2=r2, eps=group["eps"],
                             lr=float(group["lr"]), wd=group["weight_decay"], has_A=False,
                             maximize=group["maximize"])

    def _post_step_state(self, group, state, step):
        if group["bias_correction1"]:
            prev = float(state.get("momentum_norm", 0.0))
            state["momentum_norm"] = torch.tensor(prev * self._beta1(group, step) + 1.0,
                                                  dtype=torch.float64)


def _check_min_beta1(min_beta1):
    if isinstance(min_beta1, bool) or not isinstance(min_beta1, numbers.Real) \
            or not 0.0 <= min_beta1 < 1.0:
        raise ValueError(f"SimplifiedAdEMAMix: min_beta1 must be in [0, 1), got {min_beta1!r}")
