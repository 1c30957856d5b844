"""Worker of test_optim_distributed.py (a top-level module so that spawned processes can
import it: the test adds this folder to PYTHONPATH)."""

import os

import torch
import torch.distributed as dist

from sciml_toolbox.nn.optim import AdEMAMix

WORLD = 2
STEPS = 8
OPT_KW = dict(lr=1e-2, alpha=5.0, T_alpha=STEPS, T_beta3=STEPS, weight_decay=0.1)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _batches():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 5, generator=gen), torch.randn(8, 3, generator=gen))
            for _ in range(STEPS)]


def _single_process(path_kw):
    model = _model()
    opt = AdEMAMix(model.parameters(), **OPT_KW, **path_kw)
    for x, y in _batches():
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _worker(rank, init_file, out_file, path_kws):
    os.environ.setdefault("TRITON_INTERPRET", "1")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        torch.set_num_threads(1)
        results = {name: _train_both(rank, kw) for name, kw in path_kws.items()}
        if rank == 0:
            torch.save(results, out_file)
    finally:
        dist.destroy_process_group()


def _train_both(rank, path_kw):
    """DDP, DTensor and FSDP2 runs with one optimizer path; params after training."""
    results = {}
    # --- DDP: gradients averaged over ranks before the step
    model = torch.nn.parallel.DistributedDataParallel(_model())
    opt = AdEMAMix(model.parameters(), **OPT_KW, **path_kw)
    for x, y in _batches():
        xs, ys = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xs), ys).backward()
        opt.step()
    results["ddp"] = [p.detach().clone() for p in model.module.parameters()]

    # --- DTensor parameters sharded on dim 0 (what FSDP2 hands to the optimizer)
    from torch.distributed.tensor import DTensor, Shard, distribute_tensor, init_device_mesh

    mesh = init_device_mesh("cpu", (WORLD,))
    model = _model()
    sharded = [torch.nn.Parameter(distribute_tensor(p.detach(), mesh, [Shard(0)]))
               for p in model.parameters()]
    opt = AdEMAMix(sharded, **OPT_KW, **path_kw)
    ref_model = _model()
    for x, y in _batches():
        ref_model.zero_grad()
        torch.nn.functional.mse_loss(ref_model(x), y).backward()
        for p, q in zip(sharded, ref_model.parameters(), strict=True):
            p.grad = distribute_tensor(q.grad, mesh, [Shard(0)])
        opt.step()
        with torch.no_grad():  # keep the reference model on the optimizer's trajectory
            for p, q in zip(sharded, ref_model.parameters(), strict=True):
                q.copy_(p.full_tensor())
    assert all(isinstance(p, DTensor) for p in sharded)
    assert all(isinstance(v, DTensor) for p in sharded for k, v in opt.state[p].items()
               if k != "step")
    results["dtensor"] = [p.full_tensor().detach().clone() for p in sharded]

    # --- FSDP2: fully_shard reduce-scatters the averaged gradients into DTensor shards
    from torch.distributed.fsdp import fully_shard

    model = _model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = AdEMAMix(model.parameters(), **OPT_KW, **path_kw)
    for x, y in _batches():
        xs, ys = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xs), ys).backward()
        opt.step()
    results["fsdp2"] = [p.full_tensor().detach().clone() for p in model.parameters()]
    return results
