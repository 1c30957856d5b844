"""Optimizers compared on a small byte-level LM: loss curves and forgetting (AdEMAMix, AdamW).

A small-scale version of the comparisons of Pagliardini, Ablin & Grangier (2024): both
optimizers see the same batches in the same order; we record the validation loss, the number of
steps AdEMAMix needs to reach AdamW's final loss, and how fast a batch seen once is forgotten
(section 5 of the paper: the loss on a batch used at a single step rises back more slowly with
AdEMAMix, whose slow EMA keeps that gradient for about 1 / (1 - beta3) steps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np
import torch

from ..._validation import check_in_range, check_int, check_option, check_positive
from ._corpus import DomainCorpus
from ._model import _PRESETS, TinyLM, TinyLMConfig
from ._train import lr_multiplier

__all__ = ["compare_optimizers"]

_NAMES = ("AdamW", "AdEMAMix")


def _make_optimizer(name, model, n_steps, lr, alpha, beta3, weight_decay):
    if name == "AdamW":
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999),
                                 weight_decay=weight_decay)
    from ..optim import AdEMAMix

    return AdEMAMix(model.parameters(), lr=lr, betas=(0.9, 0.999, beta3), alpha=alpha,
                    T_alpha=n_steps, T_beta3=n_steps, weight_decay=weight_decay)


def _schedule(n_steps, warmup):
    """Linear warmup, cosine decay to 10% at step ``n_steps`` (the last LambdaLR call)."""
    return lambda step: lr_multiplier(step, n_steps + 1, "cosine", warmup, 0.1)


@torch.no_grad()
def _loss(model, batches):
    model.eval()
    out = float(np.mean([model(x, y).item() for x, y in batches]))
    model.train()
    return out


def _check_corpus(corpus, seq_len, random_state):
    if corpus is None:
        seq_len = 64 if seq_len is None else check_int(seq_len, "seq_len", min_value=1)
        return DomainCorpus.from_stdlib(("prose",), seq_len=seq_len, random_state=random_state)
    if not isinstance(corpus, DomainCorpus):
        raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
    if corpus.n_domains != 1:
        raise ValueError(f"corpus must have exactly one domain (the training data), got "
                         f"{corpus.n_domains}: {list(corpus.names)}")
    if seq_len is not None and check_int(seq_len, "seq_len", min_value=1) != corpus.seq_len:
        raise ValueError(f"seq_len={seq_len} differs from corpus.seq_len={corpus.seq_len}; "
                         f"leave seq_len=None to use the corpus's")
    return corpus


def _check_lr(lr, optimizers):
    if isinstance(lr, Mapping):
        out = {}
        for name in optimizers:
            if name not in lr:
                raise ValueError(f"lr has no entry for optimizer {name!r} (keys: "
                                 f"{sorted(map(str, lr))})")
            out[name] = check_positive(lr[name], f"lr[{name!r}]")
        return out
    value = check_positive(lr, "lr")
    return dict.fromkeys(optimizers, value)


def compare_optimizers(n_steps=300, *, size="0.1M", seq_len=None, batch_size=16, lr=3e-3,
                       alpha=5.0, beta3=0.999, weight_decay=0.1, forgetting=True,
                       probe_step=None, eval_every=10, n_val_batches=4, corpus=None,
                       optimizers=_NAMES, random_state=0, verbose=False):
    """Train the same small LM with each optimizer on the same batches; measure forgetting.

    The model is :class:`sciml_toolbox.nn.lm.TinyLM`; by default it is trained on the bytes of
    ``pydoc_data.topics`` (CPython's own documentation: nothing is downloaded). Every
    optimizer starts from the same initialisation and sees the same batches in the same order.
    Both use betas ``(0.9, 0.999)``, decoupled weight decay, a linear warmup over 5% of the
    steps then cosine decay to 10% of the peak, and gradient clipping at 1.0; AdEMAMix's
    ``alpha`` and ``beta3`` warmups last the whole run (``T_alpha = T_beta3 = n_steps``, the
    paper's setting).

    With ``forgetting=True`` a probe batch, drawn from the held-out split, replaces the training
    batch at ``probe_step`` in a second run of each optimizer: the memorisation gap, the probe's
    loss in the regular run minus its loss in the probe run, measures what is left of that
    single step as training goes on (section 5 of the paper).

    Parameters
    ----------
    n_steps : int, default=300
        Training steps. To see AdEMAMix's slow EMA at work, run at least ten of its final
        half-lives, ``n_steps >= 10 ln(2) / (1 - beta3)``.
    size : str, default='0.1M'
        :meth:`TinyLMConfig.from_size` preset.
    seq_len : int, optional
        Sequence length (default: 64, or ``corpus.seq_len``).
    batch_size : int, default=16
        Sequences per step.
    lr : float or mapping of str to float, default=3e-3
        Peak learning rate, the same for every optimizer or one per name
        (``{'AdamW': 1e-2, 'AdEMAMix': 3e-3}``): compare each at its own tuned rate.
    alpha, beta3 : float
        AdEMAMix's mixing weight and slow-EMA coefficient (beta3 = 0.999 suits runs of a few
        thousand steps; the half-life of the slow EMA is ``ln(2) / (1 - beta3)`` steps).
    weight_decay : float, default=0.1
    forgetting : bool, default=True
        Run the probe twin of each optimizer (doubles the cost).
    probe_step : int, optional
        Step at which the probe batch is trained on, in ``[0, n_steps - 1]`` (default:
        ``n_steps // 4``).
    eval_every : int, default=10
        Evaluation period (validation and probe losses).
    n_val_batches : int, default=4
        The validation loss is the mean over ``n_val_batches * batch_size`` fixed windows
        evenly spread over the held-out split: the same for every optimizer, seed and
        ``n_steps``.
    corpus : DomainCorpus, optional
        Training data, with exactly one domain (default: ``pydoc_data.topics`` prose). Its
        sampler is reseeded with ``random_state``; the probe batch is drawn first, so that the
        first ``k`` training batches are the same for every ``n_steps >= k``.
    optimizers : sequence of {'AdamW', 'AdEMAMix'}, or one of these names
    random_state : int, default=0
        Seed of the model initialisation and of the batch order (shared by all optimizers).
    verbose : bool, default=False

    Returns
    -------
    result : dict
        ``steps`` (evaluation steps, shape (n_evals,)), ``probe_step``, and per optimizer name
        a dict with ``lr``, ``val_loss`` and ``probe_loss`` (shape (n_evals,), regular run),
        ``train_loss`` (shape (n_steps,)), ``final_val_loss``, ``seconds`` (all runs of that
        optimizer) and ``steps_to_adamw_final`` (when AdamW is compared: the first evaluation
        step at which the optimizer's validation loss is at most AdamW's final one; None if
        never). With ``forgetting=True`` also ``probe_loss_with_probe`` and ``gap`` (shape
        (n_evals,)), and the summary numbers ``gap_after_probe``, ``gap_final`` and
        ``gap_late`` (memorisation gap at the first evaluation after the probe, at the end, and
        its mean over the evaluations in the second half of the steps after the probe).
    """
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    # the evaluation right after the probe step must exist: probe_step + 1 <= n_steps
    probe_step = n_steps // 4 if probe_step is None else check_int(
        probe_step, "probe_step", min_value=0, max_value=n_steps - 1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    eval_every = check_int(eval_every, "eval_every", min_value=1)
    n_val_batches = check_int(n_val_batches, "n_val_batches", min_value=1)
    random_state = check_int(random_state, "random_state", min_value=0)
    alpha = check_positive(alpha, "alpha", strict=False)
    beta3 = check_in_range(beta3, "beta3", 0.0, 1.0, closed="left")
    weight_decay = check_positive(weight_decay, "weight_decay", strict=False)
    if not isinstance(forgetting, (bool, np.bool_)):
        raise TypeError(f"forgetting must be a bool, got {type(forgetting).__name__}")
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(optimizers)
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer ('AdamW', 'AdEMAMix')")
    for name in optimizers:
        check_option(name, "optimizers", _NAMES)
    lrs = _check_lr(lr, optimizers)
    check_option(size, "size", tuple(_PRESETS))
    corpus = _check_corpus(corpus, seq_len, random_state)
    corpus.reset(random_state)
    domain = corpus.names[0]
    probe = corpus.domain_batch(domain, batch_size, split="val")[:2]
    plain = [corpus.domain_batch(domain, batch_size)[:2] for _ in range(n_steps)]
    xv, yv = corpus.validation_windows(domain, max_windows=n_val_batches * batch_size)
    val = [(xv[i:i + batch_size], yv[i:i + batch_size]) for i in range(0, len(xv), batch_size)]
    # evaluate right before and after the probe step as well
    steps = set(range(0, n_steps + 1, eval_every)) | {n_steps}
    if forgetting:
        steps |= {probe_step, probe_step + 1}
    steps = sorted(s for s in steps if s <= n_steps)

    def run(name, batches):
        torch.manual_seed(random_state)
        model = TinyLM(TinyLMConfig.from_size(size, max_seq_len=corpus.seq_len))
        opt = _make_optimizer(name, model, n_steps, lrs[name], alpha, beta3, weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(n_steps, max(1, n_steps // 20)))
        hist = {"val_loss": [], "probe_loss": [], "train_loss": []}
        t0 = time.perf_counter()
        for step in range(n_steps + 1):
            if step in steps:
                hist["val_loss"].append(_loss(model, val))
                hist["probe_loss"].append(_loss(model, [probe]))
            if step == n_steps:
                break
            x, y = batches[step]
            opt.zero_grad(set_to_none=True)
            loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            hist["train_loss"].append(loss.item())
        hist["seconds"] = time.perf_counter() - t0
        return hist

    result = {"steps": steps, "probe_step": probe_step}
    for name in optimizers:
        hist = run(name, plain)
        hist["lr"] = lrs[name]
        hist["final_val_loss"] = hist["val_loss"][-1]
        if not math.isfinite(hist["final_val_loss"]):
            hist["final_val_loss"] = math.inf  # diverged
        if forgetting:
            probed = list(plain)
            probed[probe_step] = probe
            twin = run(name, probed)
            hist["probe_loss_with_probe"] = twin["probe_loss"]
            hist["seconds"] += twin["seconds"]
            gap = np.asarray(hist["probe_loss"]) - np.asarray(twin["probe_loss"])
            hist["gap"] = gap.tolist()
            after = steps.index(probe_step + 1)
            hist["gap_after_probe"] = float(gap[after])
            hist["gap_final"] = float(gap[-1])
            late = [i for i, s in enumerate(steps) if s >= (probe_step + n_steps) / 2]
            hist["gap_late"] = float(gap[late].mean())
        result[name] = hist
        if verbose:
            msg = (f"{name} (lr {lrs[name]:.3g}): final val loss {hist['final_val_loss']:.4f} "
                   f"({hist['seconds']:.1f} s)")
            if forgetting:
                msg += f", gap after probe {hist['gap_after_probe']:.4f}, final " \
                       f"{hist['gap_final']:.4f}"
            print(msg)
    if "AdamW" in result:
        target = result["AdamW"]["final_val_loss"]
        for name in optimizers:
            reached = [s for s, v in zip(steps, result[name]["val_loss"], strict=True)
                       if v <= target]
            result[name]["steps_to_adamw_final"] = reached[0] if reached else None
    return result
