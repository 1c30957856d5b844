"""FlashSigmoid Triton kernels compiled for a CUDA GPU (skipped without one).

Run with ``TRITON_INTERPRET=0 pytest tests/gpu/test_attention_gpu.py -m gpu``: tests/conftest.py
sets ``TRITON_INTERPRET=1`` when the variable is unset, and kernels defined in interpreter mode
cannot run on CUDA tensors.

Tolerances (relative Frobenius error against a float64 reference on the same inputs):
fp32 with TF32 products 2e-3 (TF32 keeps 10 mantissa bits), fp32 with IEEE products 1e-5,
fp16 5e-3, bf16 3e-2 (8 mantissa bits; P and dS are rounded to bf16 before the second
product), with the fast ``tanh.approx`` sigmoid (relative error about 2**-11) on fp16/bf16.
"""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

pytestmark = pytest.mark.gpu

from sciml_toolbox.nn.attention import sigmoid_attention, triton_available  # noqa: E402


@pytest.fixture(autouse=True)
def _compiled_triton():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if not triton_available("cuda"):
        pytest.skip("Triton kernels were defined in interpreter mode: run with TRITON_INTERPRET=0")


def naive(q, k, v, b=None, is_causal=False, alibi_slopes=None, window=None):
    """float64 O(N^2) formula (as in tests/nn/attention/test_attention_reference.py)."""
    q, k, v = q.double(), k.double(), v.double()
    hq, nq, d = q.shape[1], q.shape[2], q.shape[3]
    hkv, nk = k.shape[1], k.shape[2]
    k, v = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
    b = -math.log(nk) if b is None else b
    s = q @ k.transpose(-1, -2) / math.sqrt(d) + b
    i = torch.arange(nq, device=q.device)[:, None] + (nk - nq)
    j = torch.arange(nk, device=q.device)[None, :]
    if alibi_slopes is not None:
        s = s - alibi_slopes.double().reshape(-1, hq, 1, 1) * (i - j).abs()
    keep = torch.ones(nq, nk, dtype=torch.bool, device=q.device)
    if is_causal:
        keep &= j <= i
    if window is not None:
        keep &= (j >= i - window[0]) & (j <= i + window[1])
    return (torch.sigmoid(s) * keep) @ v


def rel(x, ref):
    return float((x.double() - ref).norm() / ref.norm())


TOL = {torch.float16: (5e-3, 1e-2), torch.bfloat16: (3e-2, 5e-2), torch.float32: (2e-3, 3e-3)}

CASES = [
    (2, 4, 4, 512, 512, 64, {}),
    (2, 4, 4, 513, 513, 64, {"is_causal": True}),
    (1, 8, 2, 300, 1000, 128, {"is_causal": True}),
    (1, 4, 1, 1000, 300, 128, {"is_causal": True}),
    (1, 4, 4, 257, 257, 16, {"alibi_slopes": "yes", "window": (64, 16)}),
    (1, 2, 2, 400, 400, 80, {"is_causal": True}),
    (1, 2, 2, 256, 256, 256, {}),
    (1, 2, 2, 256, 256, 32, {"bias": 0.0}),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("case", CASES)
def test_kernels_match_naive_on_gpu(case, dtype):
    batch, hq, hkv, nq, nk, d, kw = case
    kw = dict(kw)
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    q = torch.randn(batch, hq, nq, d, device=dev, generator=g).to(dtype).requires_grad_()
    k = torch.randn(batch, hkv, nk, d, device=dev, generator=g).to(dtype).requires_grad_()
    v = torch.randn(batch, hkv, nk, d, device=dev, generator=g).to(dtype).requires_grad_()
    do = torch.randn(batch, hq, nq, d, device=dev, generator=g).to(dtype)
    if kw.get("alibi_slopes") == "yes":
        kw["alibi_slopes"] = torch.linspace(0.01, 0.5, hq, device=dev)
    b = kw.pop("bias", None)
    refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = naive(*refs, b=b, **kw)
    ref.backward(do.double())
    out = sigmoid_attention(q, k, v, b, backend="triton", **kw)
    out.backward(do)
    tol_f, tol_g = TOL[dtype]
    assert torch.isfinite(out).all()
    assert rel(out, ref) < tol_f
    for mine, theirs in zip((q, k, v), refs, strict=True):
        assert rel(mine.grad, theirs.grad) < tol_g


def test_fp32_ieee_precision_is_tight():
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        q, k, v = (torch.randn(1, 2, 300, 64, device="cuda") for _ in range(3))
        out = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
        assert rel(out, naive(q, k, v, is_causal=True)) < 1e-5
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev


def test_triton_matches_torch_path_and_auto_picks_triton():
    q, k, v = (torch.randn(2, 4, 1024, 64, device="cuda", dtype=torch.float16)
               for _ in range(3))
    auto = sigmoid_attention(q, k, v, is_causal=True)
    tri = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
    assert torch.equal(auto, tri)
    ref = sigmoid_attention(q, k, v, is_causal=True, backend="torch")
    assert rel(tri, ref.double()) < 5e-3


def test_fp16_large_logits_finite_on_gpu():
    q, k, v = (torch.randn(1, 2, 256, 64, device="cuda", dtype=torch.float16) * 20
               for _ in range(3))
    q.requires_grad_()
    out = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
    out.float().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(q.grad).all()


def test_long_sequence_memory_is_linear():
    """16k tokens: the kernels allocate only O(N d) (no (N, N) buffer)."""
    q, k, v = (torch.randn(1, 16, 16384, 128, device="cuda", dtype=torch.bfloat16,
                           requires_grad=True) for _ in range(3))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
    out.backward(torch.ones_like(out))
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    n_bytes = q.numel() * q.element_size()
    # output, dO, dQ, dK, dV: a few times the size of one input, far from 16 * 16k^2 * 2 bytes
    assert extra < 8 * n_bytes
