"""Checkpoints of the trainer: what is saved, atomic writing on rank 0, and loading with the
checks that a file is a checkpoint of :func:`~sciml_toolbox.nn.lm.train` for this corpus,
model, optimizer and learning-rate scheduler."""

from __future__ import annotations

import os
import pickle

import torch

from ._distributed import barrier

# keys every checkpoint holds; "scheduler" is there only when train was given a scheduler
CHECKPOINT_KEYS = ("step", "model", "optimizer", "corpus", "torch_rng", "history", "callbacks")

_UNREADABLE = (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError,
               AttributeError, ImportError, IndexError, KeyError, TypeError)


def save_checkpoint(path, state, callbacks, scheduler=None):
    """Save the training state after step ``state.step`` to ``path`` (rank 0 writes a
    temporary file and renames it, so an interrupted write leaves the previous checkpoint);
    every rank waits for the write."""
    if state.rank == 0:
        ck = {"step": state.step + 1, "model": state.model.state_dict(),
              "optimizer": state.optimizer.state_dict(), "corpus": state.corpus.state_dict(),
              "torch_rng": torch.get_rng_state(), "history": state.history.to_dict(),
              "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else {}
                            for cb in callbacks]}
        if scheduler is not None:
            ck["scheduler"] = scheduler.state_dict()
        tmp = f"{path}.tmp"
        torch.save(ck, tmp)
        os.replace(tmp, path)
    barrier(state.world_size)


def load_checkpoint(path, device, corpus):
    """Load a checkpoint of :func:`train`, raising ``ValueError`` naming the file when it is
    not one (empty, truncated, another format) or was written for another corpus."""
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except _UNREADABLE as exc:
        raise ValueError(f"checkpoint_path {str(path)!r} is not a readable checkpoint of train "
                         f"({type(exc).__name__}: {exc}); delete it or pass resume=False"
                         ) from exc
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
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


def restore_checkpoint(path, state, callbacks, scheduler=None):
    """Load ``path`` into the model, optimizer, corpus sampler, torch RNG, hooks and
    ``scheduler`` of a run.

    Returns
    -------
    start : int
        Steps already done.
    history : dict
        The saved :class:`TrainHistory` fields.
    """
    ck = load_checkpoint(path, state.device, state.corpus)
    if (scheduler is None) != ("scheduler" not in ck):
        saved = "with" if "scheduler" in ck else "without"
        given = "is" if scheduler is not None else "is not"
        raise ValueError(f"checkpoint {str(path)!r} was written {saved} a scheduler and this "
                         f"run's scheduler {given} given")
    try:
        state.model.load_state_dict(ck["model"])
        state.optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} was written for another model, optimizer "
                         f"or scheduler: {exc}") from exc
    state.corpus.load_state_dict(ck["corpus"])
    torch.set_rng_state(ck["torch_rng"])
    for cb, sd in zip(callbacks, ck["callbacks"], strict=False):
        if hasattr(cb, "load_state_dict"):
            cb.load_state_dict(sd)
    return ck["step"], ck["history"]
