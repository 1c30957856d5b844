"""AdEMAMix under torch.distributed: DDP and DTensor (FSDP2-style sharded) parameters.

Two gloo processes on CPU (torch.multiprocessing.spawn). Each rank trains on its half of every
batch; the result must equal single-process training on the concatenated batch.
"""

import os
import sys
import tempfile

import torch
import torch.multiprocessing as mp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _optim_dist_worker import WORLD, _model, _single_process, _worker  # noqa: E402


def test_ddp_dtensor_fsdp2_match_single_process():
    path_kws = {"foreach": dict(foreach=True), "fused": dict(fused=True)}
    pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = HERE + (os.pathsep + pythonpath if pythonpath else "")
    try:
        _spawn_and_check(path_kws)
    finally:
        if pythonpath is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = pythonpath


def _spawn_and_check(path_kws):
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        out_file = os.path.join(tmp, "out.pt")
        mp.spawn(_worker, args=(init_file, out_file, path_kws), nprocs=WORLD, join=True)
        results = torch.load(out_file)
    for path, path_kw in path_kws.items():
        ref = _single_process(path_kw)
        for name in ("ddp", "dtensor", "fsdp2"):
            err = max((a - b).abs().max().item()
                      for a, b in zip(results[path][name], ref, strict=True))
            assert err < 1e-6, (path, name, err)
    moved = max((a - b).abs().max().item()
                for a, b in zip(ref, _model().parameters(), strict=True))
    assert moved > 1e-2
