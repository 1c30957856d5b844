"""Optimizers compared on a small byte-level LM: loss curves and forgetting (AdEMAMix, AdamW).

A small-scale version of the comparisons of Pagliardini, Ablin & Grangier (2024): both
optimizers see the same batches in the same order; we record the validation loss, the number of
steps AdEMAMix needs to reach AdamW's final loss, and how fast a batch seen once is forgotten
(section 5 of the paper: the loss on a batch used at a single step rises back more slowly with
AdEMAMix, whose slow EMA keeps that gradient for about 1 / (1 - beta3) steps).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..._validation import check_in_range, check_int, check_option, check_positive
from ._corpus import DomainCorpus
from ._model import TinyLM, TinyLMConfig
from ._train import lr_multiplier

__all__ = ["compare_optimizers"]


def _corpus(seq_len, random_state):
    return DomainCorpus.from_stdlib(("prose",), seq_len=seq_len, random_state=random_state)


def _make_optimizer(name, model, n_steps, lr, alpha, beta3, weight_decay):
    if name == "AdamW":
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999),
                                 weight_decay=weight_decay)
    if name == "AdEMAMix":
        from ..optim import AdEMAMix

        return AdEMAMix(model.parameters(), lr=lr, betas=(0.9, 0.999, beta3), alpha=alpha,
                        T_alpha=n_steps, T_beta3=n_steps, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'AdamW' or 'AdEMAMix', got {name!r}")


def _schedule(n_steps, warmup):
    """Linear warmup, cosine decay to 10% at step ``n_steps`` (the last LambdaLR call)."""
    return lambda step: lr_multiplier(step, n_steps + 1, "cosine", warmup, 0.1)


@torch.no_grad()
def _loss(model, batches):
    model.eval()
    out = float(np.mean([model(x, y).item() for x, y in batches]))
    model.train()
    return out


def compare_optimizers(n_steps=300, *, size="0.1M", seq_len=64, batch_size=16, lr=3e-3,
                       alpha=5.0, beta3=0.999, weight_decay=0.1, probe_step=None,
                       eval_every=10, n_val_batches=4, optimizers=("AdamW", "AdEMAMix"),
                       random_state=0, verbose=False):
    """Train the same small LM with each optimizer on the same batches; measure forgetting.

    The model is :class:`sciml_toolbox.nn.lm.TinyLM` on the bytes of ``pydoc_data.topics``
    (CPython's own documentation: nothing is downloaded). A probe batch, drawn from the held-out
    split, replaces the training batch at ``probe_step`` only. Each optimizer also runs once more
    with the regular batch at that step: the memorisation gap, the probe's loss without it minus
    its loss with it, measures what is left of that single step as training goes on.

    Parameters
    ----------
    n_steps : int, default=300
        Training steps (both warmups of AdEMAMix last the whole run).
    size : str, default='0.1M'
        :meth:`TinyLMConfig.from_size` preset.
    seq_len, batch_size : int
        Sequence length and batch size.
    lr : float, default=3e-3
        Peak learning rate of both optimizers (5% warmup, cosine decay to 10%).
    alpha, beta3 : float
        AdEMAMix's mixing weight and slow-EMA coefficient (beta3 = 0.999 suits short runs).
    weight_decay : float, default=0.1
    probe_step : int, optional
        Step at which the probe batch is trained on, in ``[0, n_steps - 1]`` (default:
        ``n_steps // 4``).
    eval_every : int, default=10
        Evaluation period (validation and probe losses).
    n_val_batches : int, default=4
        Held-out batches of the validation loss.
    optimizers : sequence of {'AdamW', 'AdEMAMix'}, or one of these names
    random_state : int, default=0
        Seed of the model initialisation and of the batch order (shared by all optimizers).
    verbose : bool, default=False

    Returns
    -------
    result : dict
        ``steps`` (evaluation steps, shape (n_evals,)), and per optimizer name a dict with
        ``val_loss``, ``probe_loss``, ``probe_loss_without_probe``, ``gap`` (shape (n_evals,)),
        ``train_loss``
        (shape (n_steps,)), ``seconds`` (both runs); plus the summary numbers ``final_val_loss``,
        ``steps_to_adamw_final`` (first evaluation step at which the optimizer's validation loss
        is at most AdamW's final one; None if never), ``gap_after_probe``, ``gap_final`` and
        ``gap_late`` (memorisation gap at the first evaluation after the probe, at the end, and
        its mean over the evaluations in the second half of the steps after the probe).
    """
    n_steps = check_int(n_steps, "n_steps", min_value=1)
    # the evaluation right after the probe step must exist: probe_step + 1 <= n_steps
    probe_step = n_steps // 4 if probe_step is None else check_int(
        probe_step, "probe_step", min_value=0, max_value=n_steps - 1)
    seq_len = check_int(seq_len, "seq_len", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    eval_every = check_int(eval_every, "eval_every", min_value=1)
    n_val_batches = check_int(n_val_batches, "n_val_batches", min_value=1)
    random_state = check_int(random_state, "random_state", min_value=0)
    lr = check_positive(lr, "lr")
    alpha = check_positive(alpha, "alpha", strict=False)
    beta3 = check_in_range(beta3, "beta3", 0.0, 1.0, closed="left")
    weight_decay = check_positive(weight_decay, "weight_decay", strict=False)
    if isinstance(optimizers, str):
        optimizers = (optimizers,)
    optimizers = tuple(optimizers)
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer ('AdamW', 'AdEMAMix')")
    for name in optimizers:
        check_option(name, "optimizers", ("AdamW", "AdEMAMix"))
    corpus = _corpus(seq_len, random_state)
    train = [corpus.sample([1.0], batch_size)[:2] for _ in range(n_steps)]
    val = [corpus.sample([1.0], batch_size, split="val")[:2] for _ in range(n_val_batches)]
    probe = corpus.sample([1.0], batch_size, split="val")[:2]
    # evaluate right before and after the probe step as well
    steps = sorted(set(range(0, n_steps + 1, eval_every)) | {probe_step, probe_step + 1})
    steps = [s for s in steps if s <= n_steps]

    plain = list(train)
    train[probe_step] = probe

    def run(name, batches):
        torch.manual_seed(random_state)
        model = TinyLM(TinyLMConfig.from_size(size, max_seq_len=seq_len))
        opt = _make_optimizer(name, model, n_steps, lr, alpha, beta3, weight_decay)
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
        hist = run(name, train)
        without = run(name, plain)  # the same run, with the regular batch at probe_step
        hist["probe_loss_without_probe"] = without["probe_loss"]
        hist["seconds"] += without["seconds"]
        hist["final_val_loss"] = hist["val_loss"][-1]
        gap = np.asarray(without["probe_loss"]) - np.asarray(hist["probe_loss"])
        hist["gap"] = gap.tolist()
        after = steps.index(probe_step + 1)
        hist["gap_after_probe"] = float(gap[after])
        hist["gap_final"] = float(gap[-1])
        late = [i for i, s in enumerate(steps) if s >= (probe_step + n_steps) / 2]
        hist["gap_late"] = float(gap[late].mean())
        result[name] = hist
        if verbose:
            print(f"{name}: final val loss {hist['final_val_loss']:.4f} "
                  f"({hist['seconds']:.1f} s), gap after probe {gap[after]:.4f}, "
                  f"final {gap[-1]:.4f}")
    if "AdamW" in result:
        target = result["AdamW"]["final_val_loss"]
        for name in optimizers:
            reached = [s for s, v in zip(steps, result[name]["val_loss"], strict=True)
                       if v <= target]
            result[name]["steps_to_adamw_final"] = reached[0] if reached else None
    return result
