"""Forgetting study: pretrain TinyLMs, finetune with pretraining-data injection, measure."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from ..._validation import check_int, check_option, check_positive, check_scalar
from ._corpus import DomainCorpus
from ._model import TinyLM, TinyLMConfig
from ._sources import pydoc_topics_text, python_source_text
from ._train import evaluate, train

__all__ = ["forgetting_study"]


def forgetting_study(model_configs, budgets, fractions, *, pretrain_steps=400, epochs=2.0,
                     seq_len=64, batch_size=16, pretrain_lr=3e-3, finetune_lr=1e-3,
                     code_bytes=600_000, eval_windows=48, injection="sampled", curve_points=0,
                     device="cpu", seed=0, verbose=False):
    """Pretrain models on a generic domain, finetune on a target domain with a fraction ``p``
    of generic data injected, and measure forgetting (Bethune et al., 2025, at small scale).

    The generic (pretraining) domain is CPython's standard-library source code; the target
    (finetuning) domain is ``pydoc_data.topics`` English prose with ``D`` unique tokens. Each
    finetuning run lasts ``epochs`` passes over the ``D`` target tokens; a fraction ``p`` of the
    sequences of every batch comes from the generic domain: drawn i.i.d. per sequence
    (``injection='sampled'``), or an exact count per step (``injection='exact'``).

    Parameters
    ----------
    model_configs : list of TinyLMConfig
        One pretrained model per config (the model sizes ``N``).
    budgets : list of int
        Unique target tokens ``D``.
    fractions : list of float
        Injected fractions ``p`` in [0, 1).
    pretrain_steps : int, default=400
    epochs : float, default=2.0
        Passes over the ``D`` target tokens during finetuning.
    seq_len, batch_size : int
    pretrain_lr, finetune_lr : float
    code_bytes : int, default=600_000
        Size of the generic domain.
    eval_windows : int, default=48
        Validation windows per domain.
    injection : {'sampled', 'exact'}, default='sampled'
        How the generic sequences of a finetuning batch are chosen. ``'sampled'``: the domain
        of each sequence is drawn from the mixture ``(p, 1 - p)``, so a batch of ``B``
        sequences holds a binomial number of generic ones (with ``p B < 1`` most batches hold
        none). ``'exact'``: step ``s`` (0-based) holds exactly
        ``floor((s + 1) p B + 1/2) - floor(s p B + 1/2)`` generic sequences, so ``k`` steps
        hold ``round(k p B)`` in all and every step holds at least one when ``p B >= 1``
        (choose ``batch_size >= 1 / p`` for that); use it when the injected fraction must be
        the same in every run and every stretch of a run.
    curve_points : int, default=0
        Number of evaluations spread evenly over pretraining and over each finetuning run
        (every ``ceil(steps / curve_points)`` steps, plus before the first and after the last
        step); 0 evaluates only before and after. The curves are returned (see below); each
        evaluation costs a forward pass over ``eval_windows`` windows of both domains.
    device : str, default='cpu'
    seed : int, default=0
        Seeds the initialisation (``seed + index of the config``) and the pretraining and
        finetuning batches, so two seeds repeat the whole study, pretraining included.
    verbose : bool, default=False

    Returns
    -------
    result : dict
        ``'models'``: per config ``{'n_params', 'pretrain_loss', 'target_loss_before',
        'init_pretrain_loss', 'seconds'}``; ``'runs'``: one dict per (model, D, p) with
        ``N, D, p, steps, pretrain_loss`` (generic validation loss after finetuning),
        ``finetune_loss`` (target validation loss), ``L0`` (before finetuning) and
        ``forgetting`` (the fraction of pretraining progress lost,
        ``(L_after - L0) / (L_init - L0)``), ``generic_sequences`` (generic sequences
        served during finetuning) and ``seconds``. With ``injection='exact'`` a run also holds
        ``generic_per_step``, the generic sequences of each finetuning batch as served (a list
        of ``steps`` ints). With ``curve_points > 0`` each model holds ``pretrain_curve`` and
        each run ``curve``: ``{'step': [...], 'generic': [...], 'target': [...]}``, the
        validation losses along training (``step`` 0 is before the first step).
    """
    check_int(pretrain_steps, "pretrain_steps", min_value=1)
    check_positive(epochs, "epochs")
    check_option(injection, "injection", ("sampled", "exact"))
    curve_points = check_int(curve_points, "curve_points", min_value=0)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    for p in fractions:
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"fractions must lie in [0, 1), got {p}")
    code = python_source_text(code_bytes)
    prose = pydoc_topics_text()
    result = {"models": [], "runs": []}
    for mi, cfg in enumerate(model_configs):
        if not isinstance(cfg, TinyLMConfig):
            raise TypeError("model_configs must hold TinyLMConfig objects")
        t0 = time.perf_counter()
        torch.manual_seed(seed + mi)
        model = TinyLM(cfg)
        pre = DomainCorpus({"generic": code, "target": prose}, seq_len=seq_len,
                           random_state=seed)
        init = evaluate(model, pre, max_windows=eval_windows, device=device)
        hist = train(model, pre, [1.0, 0.0], pretrain_steps, lr=pretrain_lr,
                     batch_size=batch_size, warmup_steps=max(pretrain_steps // 20, 1),
                     device=device, seed=seed, eval_windows=eval_windows,
                     eval_every=_eval_every(pretrain_steps, curve_points))
        base = evaluate(model, pre, max_windows=eval_windows, device=device)
        state = copy.deepcopy(model.state_dict())
        info = {"config": cfg.to_dict(), "n_params": model.num_parameters(),
                "init_pretrain_loss": init["generic"], "pretrain_loss": base["generic"],
                "target_loss_before": base["target"]}
        if curve_points:
            info["pretrain_curve"] = _curve(hist)
        for D in budgets:
            for p in fractions:
                model.load_state_dict(state)
                corpus = DomainCorpus({"generic": code, "target": prose}, seq_len=seq_len,
                                      max_train_tokens={"target": int(D)},
                                      random_state=seed + 1)
                steps = max(1, math.ceil(epochs * D / (batch_size * seq_len * (1.0 - p))))
                served = []
                t1 = time.perf_counter()
                hist = train(model, corpus, [p, 1.0 - p], steps, lr=finetune_lr,
                             batch_size=batch_size, warmup_steps=max(steps // 20, 1),
                             device=device, seed=seed, eval_windows=eval_windows,
                             eval_every=_eval_every(steps, curve_points),
                             batch_fn=(_exact_batches(corpus, p, batch_size, served)
                                       if injection == "exact" else None))
                after = hist.final_val_loss()
                forget = (after["generic"] - base["generic"]) / (
                    init["generic"] - base["generic"])
                run = {"N": info["n_params"], "D": int(D), "p": float(p), "steps": steps,
                       "L0": base["generic"], "pretrain_loss": after["generic"],
                       "finetune_loss": after["target"], "forgetting": float(forget),
                       "generic_sequences": corpus.tokens_seen["generic"] // seq_len,
                       "seconds": time.perf_counter() - t1}
                if injection == "exact":
                    run["generic_per_step"] = served
                if curve_points:
                    run["curve"] = _curve(hist)
                result["runs"].append(run)
                if verbose:
                    print(f"N={info['n_params']} D={D} p={p}: L_pt {base['generic']:.3f} -> "
                          f"{after['generic']:.3f}, L_ft {after['target']:.3f}")
        info["seconds"] = time.perf_counter() - t0
        result["models"].append(info)
    return result


def _eval_every(steps, curve_points):
    """Evaluation period of ``train`` for ``curve_points`` evaluations (None: only at the end)."""
    return math.ceil(steps / curve_points) if curve_points else None


def _curve(hist):
    """The validation losses recorded along one training run."""
    return {"step": list(hist.eval_step), "generic": list(hist.val_loss["generic"]),
            "target": list(hist.val_loss["target"])}


def _exact_batches(corpus, p, batch_size, served):
    """``batch_fn`` of ``train`` with ``round``-telescoped generic counts per step.

    Step ``s`` gets ``floor((s + 1) p B + 1/2) - floor(s p B + 1/2)`` generic sequences (first
    rows) and target sequences for the rest; the count of each served batch, read from its
    domain labels, is appended to ``served``.
    """
    generic = corpus.domain_index("generic")

    def cumulative(s):
        return math.floor(s * p * batch_size + 0.5)

    def batch_fn(state):
        k = cumulative(state.step + 1) - cumulative(state.step)
        parts = [corpus.domain_batch(name, n) for name, n in
                 (("generic", k), ("target", batch_size - k)) if n > 0]
        x, y, d = (torch.cat(t) for t in zip(*parts, strict=True))
        served.append(int((d == generic).sum()))
        return x, y, d

    return batch_fn


_RUN_KEYS = ("N", "D", "p", "L0", "pretrain_loss", "finetune_loss")


def runs_to_arrays(result):
    """Regression arrays of the forgetting and finetuning laws from a study result.

    Parameters
    ----------
    result : dict
        A :func:`forgetting_study` result (or any dict with a non-empty ``'runs'`` list of
        dicts holding the finite numbers ``N, D, p, L0, pretrain_loss, finetune_loss``).

    Returns
    -------
    X_forget : ndarray of shape (n_runs, 4)
        Columns ``N, D, p, L0``.
    y_forget : ndarray of shape (n_runs,)
        ``pretrain_loss`` (the generic loss after finetuning).
    X_ft : ndarray of shape (n_runs, 3)
        Columns ``N, D, p``.
    y_ft : ndarray of shape (n_runs,)
        ``finetune_loss``.

    Raises
    ------
    TypeError
        ``result`` not a dict, ``result['runs']`` not a list/tuple of dicts, or a value that
        is not a real number.
    ValueError
        A missing key, no runs, or a value that is not finite.
    """
    if not isinstance(result, dict):
        raise TypeError(f"result must be a forgetting_study result (a dict), got "
                        f"{type(result).__name__}")
    if "runs" not in result:
        raise ValueError("result has no 'runs' entry (expected a forgetting_study result)")
    runs = result["runs"]
    if not isinstance(runs, (list, tuple)):
        raise TypeError(f"result['runs'] must be a list of dicts, got {type(runs).__name__}")
    if not runs:
        raise ValueError("result['runs'] is empty: no run to convert")
    table = np.empty((len(runs), len(_RUN_KEYS)))
    for i, r in enumerate(runs):
        if not isinstance(r, dict):
            raise TypeError(f"result['runs'][{i}] must be a dict, got {type(r).__name__}")
        missing = [k for k in _RUN_KEYS if k not in r]
        if missing:
            raise ValueError(f"result['runs'][{i}] lacks {missing} (needs {list(_RUN_KEYS)})")
        for j, k in enumerate(_RUN_KEYS):
            table[i, j] = check_scalar(r[k], f"result['runs'][{i}][{k!r}]")
    Xf, yf, yt = table[:, :4], table[:, 4], table[:, 5]
    return Xf.copy(), yf.copy(), Xf[:, :3].copy(), yt.copy()
