"""The fused kernel compiles for a Hopper GPU (sm_90) with 16-byte vector memory accesses.

Triton compiles to PTX and SASS without a GPU when given the target; this runs in a subprocess
because the test session runs Triton in interpreter mode (TRITON_INTERPRET=1).
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = r"""
import json
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from sciml_toolbox.nn.optim import _fused_ademamix as F

sig = {"ptrs": "*i64", "numels": "*i64", "tile_tensor": "*i32", "tile_index": "*i32",
       "n_tensors": "i32", "neg_lr_wd": "fp32", "neg_lr": "fp32"}
sig.update({k: "fp32" for k in ["aA", "bA", "cA", "aB", "bB", "cB", "cG", "b2", "r2", "eps"]})
out = {"kernel": type(F._ademamix_step_kernel).__name__}
for name, dt in (("fp32", tl.float32), ("bf16", tl.bfloat16)):
    for aligned in ((True, False) if name == "fp32" else (True,)):
        const = dict(HAS_A=True, HAS_G_TERM=True, MAXIMIZE=False, ALIGNED=aligned, P_DT=dt,
                     G_DT=dt, S_DT=tl.float32, BLOCK=F.BLOCK)
        s = dict(sig, **{k: "constexpr" for k in const})
        c = triton.compile(ASTSource(fn=F._ademamix_step_kernel, signature=s, constexprs=const),
                           target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": F.NUM_WARPS})
        ops = sorted({w for line in c.asm["ptx"].splitlines() for w in line.split()
                      if w.startswith(("ld.global", "st.global"))})
        out[f"{name}-{'aligned' if aligned else 'unaligned'}"] = ops
print("RESULT" + json.dumps(out))
"""


def test_fused_kernel_compiles_for_sm90_with_vector_accesses():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        if "ptxas" in proc.stderr or "backend" in proc.stderr.lower():
            pytest.skip(f"Triton cannot compile for CUDA here: {proc.stderr[-300:]}")
        raise AssertionError(proc.stderr[-3000:])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    out = json.loads(line[len("RESULT"):])
    assert out["kernel"] == "JITFunction"
    # aligned full tiles: 16-byte loads and stores (4 x fp32, 8 x bf16)
    for name in ("fp32-aligned", "bf16-aligned"):
        assert "ld.global.v4.b32" in out[name], out[name]
        assert "st.global.v4.b32" in out[name], out[name]
    # without the alignment guarantee the compiler must not assume it
    assert "ld.global.v4.b32" not in out["fp32-unaligned"]
