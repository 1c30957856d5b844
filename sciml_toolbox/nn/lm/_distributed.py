"""torch.distributed helpers of the trainer: process group, rank and world size, DDP wrapping,
slicing of the global batch and averaging over ranks.

Everything here is a no-op in a single process (no process group, or a world of one).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from ..._validation import check_option

__all__ = ["init_distributed"]


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


def rank_world():
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap_ddp(model, device, world_size):
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when
    ``world_size > 1``, else ``model`` itself."""
    if world_size == 1:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)


def local_slice(t, rank, world_size):
    """This rank's contiguous share of the leading dimension of ``t`` (the global batch)."""
    if world_size == 1:
        return t
    b = t.shape[0] // world_size
    return t[rank * b:(rank + 1) * b]


def all_reduce_mean(tensors, world_size):
    """Average each tensor over ranks, in place; returns ``tensors``."""
    if world_size > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(world_size)
    return tensors


def all_reduce_sum(t, world_size):
    """Sum ``t`` over ranks, in place; returns ``t``."""
    if world_size > 1:
        dist.all_reduce(t)
    return t


def barrier(world_size):
    """Wait for every rank (a no-op in a single process)."""
    if world_size > 1:
        dist.barrier()
