"""Training loop of the workbench: hooks, state and history, the loss, the learning-rate
schedule, evaluation, and :func:`train`.

The torch.distributed helpers are in ``_distributed.py``, checkpoint saving and loading in
``_checkpoint.py``.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import check_in_range, check_int, check_option, check_positive
from ._checkpoint import restore_checkpoint, save_checkpoint
from ._distributed import (
    all_reduce_mean,
    all_reduce_sum,
    init_distributed,
    local_slice,
    rank_world,
    wrap_ddp,
)

__all__ = ["train", "evaluate", "default_loss", "per_sequence_loss", "Callback", "TrainState",
           "TrainHistory", "lr_multiplier"]


# ---------------------------------------------------------------------------- hooks
class Callback:
    """Base class of training hooks; override any subset of the methods.

    Call order within one step: :meth:`on_step_begin` (the batch is not drawn yet;
    ``state.mixture`` may be changed here), forward and backward, :meth:`on_after_backward`
    (gradients, already averaged over DDP ranks, are in ``p.grad``; clipping and the optimizer
    step follow), :meth:`on_step_end` (after the optimizer step; ``state.gradient`` can compute
    fresh gradients on any batch), then :meth:`on_evaluate` when validation losses are computed.
    A hook with state saves it through :meth:`state_dict` / :meth:`load_state_dict`, which the
    trainer stores in checkpoints.
    """

    def on_train_begin(self, state):
        """Called once, after a possible resume, before the first step."""

    def on_step_begin(self, state):
        """Called at the start of every step."""

    def on_after_backward(self, state):
        """Called once the step's gradients are in ``p.grad``."""

    def on_step_end(self, state):
        """Called after the optimizer step."""

    def on_evaluate(self, state, losses):
        """Called with the dict of per-domain validation losses."""

    def state_dict(self):
        """State to checkpoint (a picklable dict)."""
        return {}

    def load_state_dict(self, state):
        """Restore the state returned by :meth:`state_dict`."""


@dataclass
class TrainHistory:
    """What :func:`train` records.

    Attributes
    ----------
    step : list of int
        Completed steps (1-based) for the per-step records.
    train_loss : list of float
        Training loss of each step (averaged over ranks).
    lr : list of float
        Learning rate of each step (first parameter group).
    mixture : list of list of float
        Mixture weights used at each step, shape (n_steps, n_domains).
    eval_step : list of int
        Completed steps at which validation losses were computed (0 = before training).
    val_loss : dict of str to list of float
        Per-domain validation loss (nats per token) at each ``eval_step``.
    tokens_seen : dict of str to int
        Training tokens served per domain.
    wall_time : float
        Seconds spent in :func:`train` (summed over resumed runs).
    """

    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    mixture: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    val_loss: dict = field(default_factory=dict)
    tokens_seen: dict = field(default_factory=dict)
    wall_time: float = 0.0

    def final_val_loss(self):
        """Last recorded validation loss per domain (dict)."""
        return {k: v[-1] for k, v in self.val_loss.items() if v}

    def to_dict(self):
        """JSON-serialisable dict (a deep copy: changing it leaves the history as is)."""
        return copy.deepcopy(self.__dict__)


class TrainState:
    """Everything a hook can see and use during :func:`train`.

    Attributes
    ----------
    step : int
        Index of the current step (0-based; ``step + 1`` steps are done after it).
    steps : int
        Total number of steps.
    model : nn.Module
        The model being trained (unwrapped).
    forward_model : nn.Module
        What the loss function calls: the DDP wrapper under torchrun, else ``model``.
    optimizer : torch.optim.Optimizer
    corpus : DomainCorpus
    mixture : ndarray, shape (n_domains,)
        Mixture of the current step (a hook may replace it in ``on_step_begin``).
    batch : tuple (x, y, domains) or None
        This rank's part of the current batch.
    loss : Tensor or None
        This step's loss (before the optimizer step).
    per_sequence_loss : Tensor, shape (local_batch,), or None
        Per-sequence mean losses of the batch (default loss function only).
    history : TrainHistory
    rank, world_size : int
    device : torch.device
    mode : {'train', 'eval'}
    eval_domain : str or None
        Domain being evaluated (``mode == 'eval'``).
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def parameters(self):
        """Trainable parameters of the model, in order."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def gradient(self, x, y, *, flatten=True):
        """Gradient of the loss on a batch at the current parameters, averaged over ranks.

        Does not touch ``p.grad``; the model is put in eval mode for the computation (no
        dropout) and restored after.

        Parameters
        ----------
        x, y : LongTensor, shape (batch, seq_len)
            This rank's inputs and targets (moved to the training device).
        flatten : bool, default=True
            Return one flat vector instead of a list of per-parameter tensors.

        Returns
        -------
        grad : Tensor, shape (n_params,), or list of Tensor
        """
        params = self.parameters()
        was_training = self.model.training
        self.model.eval()
        mode, self.mode = self.mode, "grad"
        try:
            with torch.enable_grad():
                loss = self.loss_fn(self.model, x.to(self.device), y.to(self.device), self)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
        finally:
            self.mode = mode
            self.model.train(was_training)
        grads = [torch.zeros_like(p) if g is None else g
                 for g, p in zip(grads, params, strict=True)]
        all_reduce_mean(grads, self.world_size)
        return torch.cat([g.reshape(-1) for g in grads]) if flatten else grads

    def domain_gradient(self, domain, batch_size, *, split="train", flatten=True):
        """Gradient on a fresh batch of one domain (drawn from the corpus generator).

        Every rank draws the same global batch and uses its slice, so the result equals the
        single-process gradient of the whole batch.
        """
        x, y, _ = self.corpus.domain_batch(domain, batch_size, split=split)
        x, y = (local_slice(t, self.rank, self.world_size) for t in (x, y))
        return self.gradient(x, y, flatten=flatten)


def per_sequence_loss(logits, y):
    """Mean next-token cross-entropy of every sequence (in float32).

    The per-sequence losses that :func:`default_loss` averages and records in
    ``TrainState.per_sequence_loss``; data-mixing methods (DGA) weight them per domain.

    Parameters
    ----------
    logits : Tensor, shape (batch, seq_len, vocab)
        Unnormalised next-token scores (any floating dtype; the loss is computed in float32).
    y : LongTensor, shape (batch, seq_len)
        Target token ids in ``[0, vocab)``.

    Returns
    -------
    loss : Tensor, shape (batch,)
        ``loss[b] = -mean_t log softmax(logits[b, t])[y[b, t]]`` (nats per token), float32,
        differentiable with respect to ``logits``.

    Raises
    ------
    TypeError
        If ``logits`` is not a floating tensor or ``y`` not a LongTensor.
    ValueError
        If ``logits`` is not 3-D, ``y`` is not of shape ``logits.shape[:2]``, or a target is
        outside ``[0, vocab)``.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating-point Tensor of shape (batch, seq_len, vocab), "
                        f"got {getattr(logits, 'dtype', type(logits).__name__)}")
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.long, torch.uint8):
        raise TypeError("y must be a LongTensor of token ids, got "
                        f"{getattr(y, 'dtype', type(y).__name__)}")
    if logits.ndim != 3 or tuple(y.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"y must have shape (batch, seq_len) = {tuple(logits.shape[:2])} of the "
                         f"logits (batch, seq_len, vocab) {tuple(logits.shape)}, got "
                         f"{tuple(y.shape)}")
    # the range scan runs on CPU only: on an accelerator it would synchronise with the host at
    # every training step (cross_entropy's own device assertion still stops bad ids there)
    if y.numel() and y.device.type == "cpu" and bool(((y < 0) | (y >= logits.shape[-1])).any()):
        raise ValueError(f"y must hold token ids in [0, {logits.shape[-1]}) (the logits' vocab), "
                         f"got values in [{int(y.min())}, {int(y.max())}]")
    tok = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                          reduction="none").view(y.shape)
    return tok.mean(dim=1)


def default_loss(model, x, y, state=None):
    """Mean next-token cross-entropy of ``model(x)`` logits; records per-sequence losses.

    Parameters
    ----------
    model : callable
        Returns logits of shape (batch, seq_len, vocab) for ``x``.
    x, y : LongTensor, shape (batch, seq_len)
    state : TrainState, optional

    Returns
    -------
    loss : Tensor, shape ()
    """
    per_seq = per_sequence_loss(model(x), y)
    if state is not None and getattr(state, "mode", "train") == "train":
        state.per_sequence_loss = per_seq.detach()
    return per_seq.mean()


# ---------------------------------------------------------------------------- helpers
def lr_multiplier(step, steps, schedule="cosine", warmup_steps=0, min_lr_ratio=0.1):
    """Learning-rate multiplier of a (0-based) step.

    Linear warm-up over ``warmup_steps`` then ``'cosine'`` decay to ``min_lr_ratio`` at the
    last step (Loshchilov & Hutter, 2017), ``'linear'`` decay, or ``'constant'``.

    Parameters
    ----------
    step : int
        The 0-based step (>= 0; steps past the last keep the final value).
    steps : int
        Total number of steps (>= 1).
    schedule : {'cosine', 'linear', 'constant'}, default='cosine'
    warmup_steps : int, default=0
        Linear warm-up length (>= 0).
    min_lr_ratio : float in [0, 1], default=0.1
        Final multiplier of the decaying schedules.

    Returns
    -------
    float
    """
    step = check_int(step, "step", min_value=0)
    steps = check_int(steps, "steps", min_value=1)
    check_option(schedule, "schedule", ("cosine", "linear", "constant"))
    warmup_steps = check_int(warmup_steps, "warmup_steps", min_value=0)
    min_lr_ratio = check_in_range(min_lr_ratio, "min_lr_ratio", 0.0, 1.0)
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(steps - warmup_steps - 1, 1)
    t = min(max(step - warmup_steps, 0) / span, 1.0)
    if schedule == "linear":
        return 1.0 - (1.0 - min_lr_ratio) * t
    return min_lr_ratio + 0.5 * (1.0 - min_lr_ratio) * (1.0 + math.cos(math.pi * t))


_HOOKS = ("on_train_begin", "on_step_begin", "on_after_backward", "on_step_end",
          "on_evaluate")

def _param_groups(model, weight_decay):
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _make_optimizer(optimizer, model, lr, weight_decay, betas):
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        check_option(optimizer, "optimizer", ("adamw", "adam", "sgd"))
        groups = _param_groups(model, weight_decay)
        if optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=lr, betas=betas)
        if optimizer == "adam":
            return torch.optim.Adam(groups, lr=lr, betas=betas)
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if callable(optimizer):
        opt = optimizer(_param_groups(model, weight_decay))
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError("optimizer factory must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}")
        return opt
    raise TypeError("optimizer must be 'adamw', 'adam', 'sgd', a torch.optim.Optimizer or a "
                    f"callable param_groups -> Optimizer, got {type(optimizer).__name__}")


@torch.no_grad()
def evaluate(model, corpus, *, domains=None, max_windows=64, batch_size=32, loss_fn=None,
             device=None, state=None):
    """Validation loss per domain (nats per token) on fixed windows of each domain.

    Under ``torch.distributed`` the windows are split over ranks and the sums all-reduced.

    Parameters
    ----------
    model : nn.Module
    corpus : DomainCorpus
    domains : list of str, optional
        Default: all domains.
    max_windows : int, default=64
        Windows of ``seq_len`` tokens per domain (evenly spread over its validation split).
    batch_size : int, default=32
    loss_fn : callable, optional
        ``loss_fn(model, x, y, state) -> mean loss``; default: cross-entropy of the logits.
    device : torch.device, optional
    state : TrainState, optional
        Passed to ``loss_fn`` with ``mode='eval'`` and ``eval_domain`` set.

    Returns
    -------
    losses : dict of str to float
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not all(hasattr(corpus, a) for a in ("validation_windows", "names")):
        raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    max_windows = check_int(max_windows, "max_windows", min_value=1)
    rank, world = rank_world()
    loss_fn = default_loss if loss_fn is None else loss_fn
    if device is None:
        device = next(model.parameters()).device
    if state is None:
        state = TrainState(mode="eval", eval_domain=None)
    was_training = model.training
    model.eval()
    out = {}
    try:
        for name in (corpus.names if domains is None else domains):
            x, y = corpus.validation_windows(name, max_windows)
            idx = torch.arange(rank, x.shape[0], world)
            total = torch.zeros(2, dtype=torch.float64, device=device)
            mode, state.mode, state.eval_domain = getattr(state, "mode", "train"), "eval", name
            for chunk in idx.split(batch_size):
                xb, yb = x[chunk].to(device), y[chunk].to(device)
                total[0] += float(loss_fn(model, xb, yb, state)) * chunk.numel()
                total[1] += chunk.numel()
            state.mode, state.eval_domain = mode, None
            all_reduce_sum(total, world)
            out[name] = float(total[0] / total[1])
    finally:
        model.train(was_training)
    return out


# ---------------------------------------------------------------------------- train
def _check_train_objects(model, corpus, betas, callbacks, loss_fn, batch_fn):
    """Type checks of :func:`train`'s object arguments (TypeError/ValueError naming them)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0
            for b in betas):
        raise ValueError(f"betas must be a pair of floats in [0, 1), got {betas!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not all(hasattr(corpus, a) for a in ("check_mixture", "sample", "names")):
        raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback) and not any(
                callable(getattr(cb, m, None)) for m in _HOOKS):
            raise TypeError(f"callbacks[{i}] must be a Callback (or have its hook methods), got "
                            f"{type(cb).__name__}")
    for name, fn in (("loss_fn", loss_fn), ("batch_fn", batch_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")


def _check_schedule(lr_schedule, warmup_steps, min_lr_ratio, scheduler):
    """The built-in schedule's options, and that a ``scheduler`` is not combined with them."""
    if not callable(lr_schedule):
        check_option(lr_schedule, "lr_schedule", ("cosine", "linear", "constant"))
    if scheduler is None:
        return
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler) and not callable(
            scheduler):
        raise TypeError("scheduler must be a torch.optim.lr_scheduler.LRScheduler or a callable "
                        f"optimizer -> LRScheduler, got {type(scheduler).__name__}")
    conflicts = {name: value for name, value, is_default in (
        ("lr_schedule", lr_schedule, isinstance(lr_schedule, str) and lr_schedule == "cosine"),
        ("warmup_steps", warmup_steps, warmup_steps == 0),
        ("min_lr_ratio", min_lr_ratio, float(min_lr_ratio) == 0.1)) if not is_default}
    if conflicts:
        raise ValueError(f"scheduler replaces the built-in learning-rate schedule: leave "
                         f"lr_schedule, warmup_steps and min_lr_ratio at their defaults when "
                         f"scheduler is given, got {conflicts}")


def _make_scheduler(scheduler, opt):
    """The LRScheduler of ``opt``: ``scheduler`` itself, or ``scheduler(opt)``."""
    if scheduler is None:
        return None
    base = torch.optim.lr_scheduler.LRScheduler
    if not isinstance(scheduler, base):
        scheduler = scheduler(opt)
        if not isinstance(scheduler, base):
            raise TypeError("scheduler factory must return a torch.optim.lr_scheduler."
                            f"LRScheduler, got {type(scheduler).__name__}")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError("scheduler=ReduceLROnPlateau needs a metric at each step, which train "
                        "does not pass: use a schedule of the step, or adapt the lr in a "
                        "Callback's on_evaluate")
    if scheduler.optimizer is not opt:
        raise ValueError("scheduler must be built on the optimizer train uses: pass that "
                         "optimizer instance as optimizer=, or a factory optimizer -> "
                         "LRScheduler as scheduler=")
    return scheduler


def _fire(callbacks, name, state):
    """Call hook ``name`` of every callback that has it."""
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is not None:
            fn(state)


def _evaluate_and_record(state, callbacks, domains, max_windows):
    """Validation losses at the current step: appended to ``state.history`` and passed to the
    hooks' ``on_evaluate`` (``state.mode == 'done'``: after step ``state.step``, else before)."""
    losses = evaluate(state.model, state.corpus, domains=domains, max_windows=max_windows,
                      loss_fn=state.loss_fn, device=state.device, state=state)
    history = state.history
    history.eval_step.append(state.step + 1 if state.mode == "done" else state.step)
    for k, v in losses.items():
        history.val_loss[k].append(v)
    for cb in callbacks:
        if hasattr(cb, "on_evaluate"):
            cb.on_evaluate(state, losses)
    return losses


def _progress_bar(steps, start):
    from tqdm.auto import tqdm

    return tqdm(total=steps, initial=start, desc="train")


def train(model, corpus, mixture, steps, *, optimizer="adamw", lr=1e-3, weight_decay=0.1,
          betas=(0.9, 0.95), lr_schedule="cosine", warmup_steps=0, min_lr_ratio=0.1,
          scheduler=None, batch_size=16, grad_clip=1.0, eval_every=None, eval_windows=64,
          eval_domains=None, callbacks=(), loss_fn=None, batch_fn=None, checkpoint_path=None,
          checkpoint_every=None, resume=False, device="cpu", seed=0, verbose=False):
    """Train a language model on a mixture of corpus domains.

    Each step draws a global batch of ``batch_size`` sequences whose domains follow the
    current mixture, takes this rank's slice (under ``torchrun``), computes the loss, and
    takes an optimizer step. Validation losses per domain are recorded every ``eval_every``
    steps. With ``checkpoint_path`` the model, optimizer, ``scheduler``, corpus sampler, RNGs,
    hooks and history are saved; ``resume=True`` continues from the file and gives the same
    result as an uninterrupted run.

    Parameters
    ----------
    model : nn.Module
        A :class:`TinyLM` or any module whose loss ``loss_fn`` computes.
    corpus : DomainCorpus
    mixture : array_like of shape (n_domains,), or callable
        Fixed domain weights on the simplex, or ``mixture(step) -> weights`` (a schedule or an
        online method). A mixture object that also has :class:`Callback` methods is registered
        as a hook, and its ``state_dict`` is checkpointed. One that builds its own batches and
        loss (a ``train_kwargs(batch_size)`` method, as :class:`~sciml_toolbox.nn.mixing.DGA`)
        is wired in when neither ``batch_fn`` nor ``loss_fn`` is given.
    steps : int
        Total number of optimizer steps.
    optimizer : {'adamw', 'adam', 'sgd'}, Optimizer or callable, default='adamw'
        A name, an optimizer already built on ``model``'s parameters, or a factory
        ``param_groups -> Optimizer`` (the groups put weight decay on matrices only).
    lr : float, default=1e-3
        Peak learning rate (ignored for an optimizer instance: its own ``lr`` is the peak).
    weight_decay : float, default=0.1
    betas : tuple of float, default=(0.9, 0.95)
    lr_schedule : {'cosine', 'linear', 'constant'} or callable, default='cosine'
        The built-in schedule (:func:`lr_multiplier`), or ``f(step) -> multiplier``; each
        step sets every group's ``lr`` to its ``initial_lr`` times the multiplier.
    warmup_steps : int, default=0
    min_lr_ratio : float, default=0.1
    scheduler : LRScheduler or callable, optional
        A :mod:`torch.optim.lr_scheduler` scheduler built on the ``optimizer`` instance, or a
        factory ``optimizer -> LRScheduler`` (for an optimizer built here). It replaces the
        built-in schedule: ``train`` leaves the groups' ``lr`` to it and calls
        ``scheduler.step()`` once per step, after the optimizer step and the ``on_step_end``
        hooks (which see the ``lr`` the step used). Its state is checkpointed. Passing a
        non-default ``lr_schedule``, ``warmup_steps`` or ``min_lr_ratio`` with it raises
        ``ValueError``; ``ReduceLROnPlateau`` (which needs a metric) raises ``TypeError``.
    batch_size : int, default=16
        Global batch size (sequences); must be divisible by the number of ranks.
    grad_clip : float or None, default=1.0
        Clip the global gradient norm.
    eval_every : int, optional
        Evaluate before training, every ``eval_every`` steps and at the end. ``None``: only at
        the end.
    eval_windows : int, default=64
        Validation windows per domain.
    eval_domains : list of str, optional
    callbacks : sequence of Callback, default=()
    loss_fn : callable, optional
        ``loss_fn(model, x, y, state) -> scalar loss``. ``model`` is the DDP-wrapped module
        under torchrun (so a module whose ``forward`` instantiates parameters per step, e.g.
        through ``torch.func.functional_call``, is synchronised). Default: cross-entropy of
        ``model(x)``.
    batch_fn : callable, optional
        ``batch_fn(state) -> (x, y, domains)`` of the global batch; default
        ``corpus.sample(state.mixture, batch_size)``.
    checkpoint_path : str or Path, optional
    checkpoint_every : int, optional
        Default: only at the end (when ``checkpoint_path`` is set).
    resume : bool, default=False
        Load ``checkpoint_path`` if it exists and continue. A file that is not a checkpoint of
        this function (empty, truncated, another format), or one written for a corpus with
        other domains, for another model or optimizer, or with a ``scheduler`` when none is
        given (or the reverse), raises ``ValueError`` naming it.
    device : str or torch.device, default='cpu'
    seed : int, default=0
        Seed of torch's generator (dropout) at the start of training.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    history : TrainHistory
    """
    steps = check_int(steps, "steps", min_value=0)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    lr = check_positive(lr, "lr")
    check_in_range(min_lr_ratio, "min_lr_ratio", 0.0, 1.0)
    warmup_steps = check_int(warmup_steps, "warmup_steps", min_value=0)
    eval_every = check_int(eval_every, "eval_every", min_value=1, allow_none=True)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", min_value=1,
                                 allow_none=True)
    grad_clip = check_positive(grad_clip, "grad_clip", allow_none=True)
    check_positive(weight_decay, "weight_decay", strict=False)
    eval_windows = check_int(eval_windows, "eval_windows", min_value=1)
    seed = check_int(seed, "seed")
    callbacks = list(callbacks)
    _check_train_objects(model, corpus, betas, callbacks, loss_fn, batch_fn)
    _check_schedule(lr_schedule, warmup_steps, min_lr_ratio, scheduler)
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    fixed = None if callable(mixture) else corpus.check_mixture(mixture)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and vocab < corpus.vocab_size:
        raise ValueError(f"model vocab_size={vocab} is smaller than the corpus's "
                         f"vocab_size={corpus.vocab_size}: build the model with "
                         f"TinyLMConfig(vocab_size={corpus.vocab_size})")
    wire = getattr(mixture, "train_kwargs", None)
    if fixed is None and callable(wire) and batch_fn is None and loss_fn is None:
        # a mixing method that builds its own batches and loss (DGA): wire it in, as
        # train(..., **mixture.train_kwargs(batch_size)) would
        kw = wire(batch_size=batch_size)
        batch_fn, loss_fn = kw.get("batch_fn"), kw.get("loss_fn")
    if fixed is None and any(hasattr(mixture, m) for m in
                             ("on_step_begin", "on_after_backward", "on_step_end")):
        callbacks.insert(0, mixture)

    # set-up: process group, device, DDP, optimizer, scheduler, state; resume
    rank, world = init_distributed()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} must be divisible by the world size {world}")
    device = torch.device(device)
    model.to(device)
    forward_model = wrap_ddp(model, device, world)
    opt = _make_optimizer(optimizer, model, lr, weight_decay, betas)
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])
    scheduler = _make_scheduler(scheduler, opt)
    loss_fn = default_loss if loss_fn is None else loss_fn
    history = TrainHistory()
    history.val_loss = {k: [] for k in (eval_domains or corpus.names)}
    state = TrainState(step=0, steps=steps, model=model, forward_model=forward_model,
                       optimizer=opt, corpus=corpus, mixture=fixed, batch=None, loss=None,
                       per_sequence_loss=None, history=history, rank=rank, world_size=world,
                       device=device, mode="train", eval_domain=None, loss_fn=loss_fn,
                       batch_fn=batch_fn, batch_size=batch_size)
    torch.manual_seed(seed)
    start = 0
    if resume and os.path.exists(checkpoint_path):
        start, saved = restore_checkpoint(checkpoint_path, state, callbacks, scheduler)
        history = state.history = TrainHistory(**saved)

    t0 = time.perf_counter()
    _fire(callbacks, "on_train_begin", state)
    if start == 0 and eval_every is not None and steps > 0:
        state.step = 0
        _evaluate_and_record(state, callbacks, eval_domains, eval_windows)
    bar = _progress_bar(steps, start) if verbose and rank == 0 else None
    model.train()
    for step in range(start, steps):
        # the step's mixture and batch (this rank's slice of the global batch)
        state.step, state.mode = step, "train"
        state.mixture = fixed if fixed is not None else corpus.check_mixture(mixture(step))
        _fire(callbacks, "on_step_begin", state)
        if batch_fn is None:
            x, y, d = corpus.sample(state.mixture, batch_size)
        else:
            x, y, d = batch_fn(state)
        x, y, d = (local_slice(t, rank, world).to(device) for t in (x, y, d))
        state.batch = (x, y, d)
        # learning rate, loss, backward, optimizer step
        if scheduler is None:
            mult = lr_schedule(step) if callable(lr_schedule) else lr_multiplier(
                step, steps, lr_schedule, warmup_steps, min_lr_ratio)
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * mult
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward_model, x, y, state)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {float(loss)} at step {step}")
        loss.backward()
        state.loss = loss.detach()
        _fire(callbacks, "on_after_backward", state)
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        # records and hooks (which see the lr the step used), then the scheduler's step
        logged = all_reduce_mean([state.loss.clone()], world)[0]
        history.step.append(step + 1)
        history.train_loss.append(float(logged))
        history.lr.append(float(opt.param_groups[0]["lr"]))
        history.mixture.append([float(v) for v in state.mixture])
        _fire(callbacks, "on_step_end", state)
        if scheduler is not None:
            scheduler.step()
        # evaluation and checkpoint
        done = step + 1
        if (eval_every is not None and done % eval_every == 0) or done == steps:
            state.mode = "done"
            _evaluate_and_record(state, callbacks, eval_domains, eval_windows)
        history.tokens_seen = dict(corpus.tokens_seen)
        if checkpoint_path is not None and (
                (checkpoint_every is not None and done % checkpoint_every == 0)
                or done == steps):
            history.wall_time += time.perf_counter() - t0
            t0 = time.perf_counter()
            save_checkpoint(checkpoint_path, state, callbacks, scheduler)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}")
    if bar is not None:
        bar.close()
    history.tokens_seen = dict(corpus.tokens_seen)
    if checkpoint_path is None or start >= steps:
        history.wall_time += time.perf_counter() - t0
    state.mode = "train"
    return history
