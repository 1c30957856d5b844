"""Training loop of the workbench: mixtures, hooks, evaluation, checkpoints, torchrun/DDP."""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..._validation import check_in_range, check_int, check_option, check_positive

__all__ = ["train", "evaluate", "default_loss", "Callback", "TrainState", "TrainHistory",
           "init_distributed",
           "lr_multiplier"]


# ---------------------------------------------------------------------------- distributed
def init_distributed(backend=None):
    """Initialise ``torch.distributed`` from the ``torchrun`` environment, if any.

    Does nothing when ``WORLD_SIZE`` is unset or 1, or when a process group already exists.

    Parameters
    ----------
    backend : {'gloo', 'nccl'}, optional
        Default: ``nccl`` when CUDA is available, else ``gloo``.

    Returns
    -------
    rank, world_size : int
    """
    if backend is not None:
        check_option(backend, "backend", ("gloo", "nccl", "mpi", "ucc", "xccl"))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce_mean(tensors, world):
    if world > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(world)
    return tensors


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
        _all_reduce_mean(grads, self.world_size)
        return torch.cat([g.reshape(-1) for g in grads]) if flatten else grads

    def domain_gradient(self, domain, batch_size, *, split="train", flatten=True):
        """Gradient on a fresh batch of one domain (drawn from the corpus generator).

        Every rank draws the same global batch and uses its slice, so the result equals the
        single-process gradient of the whole batch.
        """
        x, y, _ = self.corpus.domain_batch(domain, batch_size, split=split)
        x, y = _local_slice(x, self.rank, self.world_size), _local_slice(y, self.rank,
                                                                         self.world_size)
        return self.gradient(x, y, flatten=flatten)


def per_sequence_loss(logits, y):
    """Mean next-token cross-entropy of every sequence (in float32).

    Parameters
    ----------
    logits : Tensor, shape (batch, seq_len, vocab)
    y : LongTensor, shape (batch, seq_len)

    Returns
    -------
    loss : Tensor, shape (batch,)
    """
    if logits.ndim != 3 or tuple(y.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"y must have shape (batch, seq_len) = {tuple(logits.shape[:2])} of the "
                         f"logits (batch, seq_len, vocab) {tuple(logits.shape)}, got "
                         f"{tuple(y.shape)}")
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

_CHECKPOINT_KEYS = ("step", "model", "optimizer", "corpus", "torch_rng", "history", "callbacks")


def _load_checkpoint(path, device, corpus):
    """Load a checkpoint of :func:`train`, raising ``ValueError`` naming the file when it is
    not one (empty, truncated, another format) or was written for another corpus."""
    import pickle

    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError,
            AttributeError, ImportError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint_path {str(path)!r} is not a readable checkpoint of train "
                         f"({type(exc).__name__}: {exc}); delete it or pass resume=False"
                         ) from exc
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ValueError(f"checkpoint_path {str(path)!r} is not a checkpoint of train "
                         f"(missing {missing})")
    names = list(ck["corpus"].get("tokens_seen", {}))
    if names != list(corpus.names):
        raise ValueError(f"checkpoint_path {str(path)!r} was written for a corpus with domains "
                         f"{names}, this corpus has {list(corpus.names)}")
    if isinstance(ck["step"], bool) or not isinstance(ck["step"], int) or ck["step"] < 0:
        raise ValueError(f"checkpoint_path {str(path)!r} holds an invalid step {ck['step']!r}")
    return ck


def _local_slice(t, rank, world):
    if world == 1:
        return t
    b = t.shape[0] // world
    return t[rank * b:(rank + 1) * b]


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
    rank, world = _world()
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
            if world > 1:
                dist.all_reduce(total)
            out[name] = float(total[0] / total[1])
    finally:
        model.train(was_training)
    return out


# ---------------------------------------------------------------------------- train
def train(model, corpus, mixture, steps, *, optimizer="adamw", lr=1e-3, weight_decay=0.1,
          betas=(0.9, 0.95), lr_schedule="cosine", warmup_steps=0, min_lr_ratio=0.1,
          batch_size=16, grad_clip=1.0, eval_every=None, eval_windows=64, eval_domains=None,
          callbacks=(), loss_fn=None, batch_fn=None, checkpoint_path=None,
          checkpoint_every=None, resume=False, device="cpu", seed=0, verbose=False):
    """Train a language model on a mixture of corpus domains.

    Each step draws a global batch of ``batch_size`` sequences whose domains follow the
    current mixture, takes this rank's slice (under ``torchrun``), computes the loss, and
    takes an optimizer step. Validation losses per domain are recorded every ``eval_every``
    steps. With ``checkpoint_path`` the model, optimizer, corpus sampler, RNGs, hooks and
    history are saved; ``resume=True`` continues from the file and gives the same result as
    an uninterrupted run.

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
        Or ``f(step) -> multiplier``.
    warmup_steps : int, default=0
    min_lr_ratio : float, default=0.1
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
        other domains or for another model or optimizer, raises ``ValueError`` naming it.
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
    if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0
            for b in betas):
        raise ValueError(f"betas must be a pair of floats in [0, 1), got {betas!r}")
    eval_windows = check_int(eval_windows, "eval_windows", min_value=1)
    seed = check_int(seed, "seed")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not all(hasattr(corpus, a) for a in ("check_mixture", "sample", "names")):
        raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback) and not any(
                callable(getattr(cb, m, None)) for m in _HOOKS):
            raise TypeError(f"callbacks[{i}] must be a Callback (or have its hook methods), got "
                            f"{type(cb).__name__}")
    for name, fn in (("loss_fn", loss_fn), ("batch_fn", batch_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
    if not callable(lr_schedule):
        check_option(lr_schedule, "lr_schedule", ("cosine", "linear", "constant"))
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
    callbacks = list(callbacks)
    if fixed is None and any(hasattr(mixture, m) for m in
                             ("on_step_begin", "on_after_backward", "on_step_end")):
        callbacks.insert(0, mixture)

    rank, world = init_distributed()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} must be divisible by the world size {world}")
    device = torch.device(device)
    model.to(device)
    forward_model = model
    if world > 1:
        forward_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _make_optimizer(optimizer, model, lr, weight_decay, betas)
    for g in opt.param_groups:
        g.setdefault("initial_lr", g["lr"])
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
        ck = _load_checkpoint(checkpoint_path, device, corpus)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ValueError(f"checkpoint {str(checkpoint_path)!r} was written for another "
                             f"model or optimizer: {exc}") from exc
        corpus.load_state_dict(ck["corpus"])
        torch.set_rng_state(ck["torch_rng"])
        history = TrainHistory(**ck["history"])
        state.history = history
        for cb, sd in zip(callbacks, ck["callbacks"], strict=False):
            if hasattr(cb, "load_state_dict"):
                cb.load_state_dict(sd)
        start = ck["step"]

    def do_eval():
        losses = evaluate(model, corpus, domains=eval_domains, max_windows=eval_windows,
                          loss_fn=loss_fn, device=device, state=state)
        history.eval_step.append(state.step + 1 if state.mode == "done" else state.step)
        for k, v in losses.items():
            history.val_loss[k].append(v)
        for cb in callbacks:
            if hasattr(cb, "on_evaluate"):
                cb.on_evaluate(state, losses)
        return losses

    def save():
        if rank == 0:
            ck = {"step": state.step + 1, "model": model.state_dict(),
                  "optimizer": opt.state_dict(), "corpus": corpus.state_dict(),
                  "torch_rng": torch.get_rng_state(), "history": history.to_dict(),
                  "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else {}
                                for cb in callbacks]}
            tmp = f"{checkpoint_path}.tmp"
            torch.save(ck, tmp)
            os.replace(tmp, checkpoint_path)
        if world > 1:
            dist.barrier()

    def fire(name):
        for cb in callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(state)

    t0 = time.perf_counter()
    fire("on_train_begin")
    if start == 0 and eval_every is not None and steps > 0:
        state.step = 0
        do_eval()
    bar = None
    if verbose and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc="train")
    model.train()
    for step in range(start, steps):
        state.step, state.mode = step, "train"
        state.mixture = fixed if fixed is not None else corpus.check_mixture(mixture(step))
        fire("on_step_begin")
        if batch_fn is None:
            x, y, d = corpus.sample(state.mixture, batch_size)
        else:
            x, y, d = batch_fn(state)
        x, y, d = (_local_slice(t, rank, world).to(device) for t in (x, y, d))
        state.batch = (x, y, d)
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
        fire("on_after_backward")
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        logged = state.loss.clone()
        _all_reduce_mean([logged], world)
        history.step.append(step + 1)
        history.train_loss.append(float(logged))
        history.lr.append(float(opt.param_groups[0]["lr"]))
        history.mixture.append([float(v) for v in state.mixture])
        fire("on_step_end")
        done = step + 1
        if (eval_every is not None and done % eval_every == 0) or done == steps:
            state.mode = "done"
            do_eval()
        history.tokens_seen = dict(corpus.tokens_seen)
        if checkpoint_path is not None and (
                (checkpoint_every is not None and done % checkpoint_every == 0)
                or done == steps):
            history.wall_time += time.perf_counter() - t0
            t0 = time.perf_counter()
            save()
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
