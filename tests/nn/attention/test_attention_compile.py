"""The Triton kernels compile for Hopper (sm_90) without a GPU, within its shared memory.

Triton ships ``ptxas``, so the kernels can be compiled for ``GPUTarget('cuda', 90, 32)`` on a
machine without a GPU. This runs in a subprocess with ``TRITON_INTERPRET=0`` (tests/conftest.py
turns the interpreter on for this process) and checks, for the untuned default tiles: the
compile succeeds, shared memory stays under the 227 KiB an sm_90 block may use, the matrix
products use Hopper's ``wgmma`` instructions, and the fp16 kernels use ``tanh.approx.f32``.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

SCRIPT = r"""
import json, os, sys
import torch, triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
from sciml_toolbox.nn.attention import _triton as K

target = GPUTarget("cuda", 90, 32)
kernels = {"fwd": (K._fwd, "fwd"), "dkdv": (K._bwd_dkdv, "bwd"), "dq": (K._bwd_dq, "bwd")}
ptrs = {"Q", "K", "V", "O", "DO", "DK", "DV", "DQ"}
out = []
for dtype, tdtype, d in json.loads(sys.argv[1]):
    bd = max(16, triton.next_power_of_2(d))
    for name, (kern, kind) in kernels.items():
        q = torch.empty(1, dtype=getattr(torch, tdtype))
        cfg = K._make_prune(kind)(K._configs(kind), {"Q": q}, BLOCK_D=bd)[0]
        consts = dict(HEAD_DIM=d, BLOCK_D=bd, MASKED=True, ALIBI=True, FAST=dtype != "fp32",
                      PRECISION="tf32", **cfg.kwargs)
        fn = kern.fn
        sig = {}
        for a in fn.arg_names:
            if a in consts:
                sig[a] = "constexpr"
            elif a == "Slopes":
                sig[a] = "*fp32"
            elif a in ptrs:
                sig[a] = "*" + dtype
            elif a in ("qk_scale", "bias"):
                sig[a] = "fp32"
            else:
                sig[a] = "i32"
        ck = triton.compile(ASTSource(fn, signature=sig, constexprs=consts), target=target,
                            options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages})
        ptx = ck.asm["ptx"]
        out.append({"dtype": dtype, "d": d, "kernel": name, "shared": ck.metadata.shared,
                    "wgmma": "wgmma" in ptx, "tanh": "tanh.approx.f32" in ptx})
print(json.dumps(out))
"""


@pytest.mark.slow
def test_kernels_compile_for_sm90():
    pytest.importorskip("triton.backends.nvidia")
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    cases = [["fp16", "float16", 64], ["bf16", "bfloat16", 128], ["fp32", "float32", 128]]
    res = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cases)], env=env,
                         capture_output=True, text=True, timeout=1800, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(rows) == 9
    for r in rows:
        assert r["shared"] <= 227 * 1024, r
        assert r["tanh"] == (r["dtype"] != "fp32"), r
        if r["kernel"] == "fwd":
            assert r["wgmma"], r
