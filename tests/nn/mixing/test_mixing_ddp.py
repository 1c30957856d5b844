"""DGA under torchrun: 2 gloo processes give the single-process weights and parameters."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch


# the finite difference divides round-off differences of the two runs by its small step
@pytest.mark.parametrize("alignment,rtol", [("finite_difference", 1e-2), ("backward", 1e-4)])
def test_dga_two_gloo_processes_match_single_process(tmp_path, alignment, rtol):
    here = Path(__file__).resolve().parent
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(here)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(here / "_ddp_dga_worker.py"), str(out), alignment]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=False)
    assert ddp["world"] == 2
    sys.path.insert(0, str(here))
    try:
        from _ddp_dga_worker import run
    finally:
        sys.path.remove(str(here))
    model, dga, hist = run(alignment=alignment)
    assert dga.n_updates_ == 3
    ref = np.asarray(dga.alignment_history_)
    np.testing.assert_allclose(ref, np.asarray(ddp["alignments"]), rtol=rtol,
                               atol=1e-8 + rtol * np.abs(ref).max())
    np.testing.assert_allclose(dga.weights_, ddp["weights"], rtol=rtol)
    np.testing.assert_allclose(hist.train_loss, ddp["loss"], rtol=1e-5)
    for (n, a), b in zip(model.state_dict().items(), ddp["state"].values(), strict=True):
        # the weights set the training gradient: parameters inherit their tolerance
        torch.testing.assert_close(a, b, atol=1e-5 * rtol / 1e-4, rtol=rtol, msg=n)
