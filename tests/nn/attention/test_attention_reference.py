"""Independent checks of sigmoid attention against the naive formula.

The naive reference below is written from the formula of Ramapuram et al. (2024), "Theory,
Analysis, and Best Practices for Sigmoid Self-Attention" (arXiv:2409.04431):

    O = sigmoid(Q K^T * scale + b) V,    masked entries contribute 0,

with ALiBi as the true bias ``-slope * |i - j|`` and causal / window masks aligned bottom-right
(query ``i`` sits at position ``i + N_k - N_q``, as in FlashAttention-2). It materialises the
full (N_q, N_k) matrix in float64 and shares no code with the package. Gradients of the
reference come from torch autograd through this formula.

Documented tolerances (relative Frobenius error ||x - ref|| / ||ref||):

* torch chunked path, float64: 1e-12 (same arithmetic, different summation order);
* torch chunked path, float32: 1e-5;
* Triton kernels under TRITON_INTERPRET=1, float32: 1e-5 (NumPy float32 dot products);
* Triton kernels, float16 inputs: 5e-3 forward, 1e-2 gradients (fp16 has a 2**-11 unit
  roundoff; P and dS are rounded to fp16 before the second matrix product, as on the GPU).
"""

import math

import pytest

torch = pytest.importorskip("torch")

from sciml_toolbox.nn.attention import sigmoid_attention  # noqa: E402


def naive_sigmoid_attention(q, k, v, b=None, scale=None, is_causal=False, alibi_slopes=None,
                            window=None):
    """sigmoid(q k^T scale + b) v with masks, ALiBi and GQA, in float64, O(N^2) memory."""
    q, k, v = q.double(), k.double(), v.double()
    batch, hq, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    k = k.repeat_interleave(hq // hkv, dim=1)
    v = v.repeat_interleave(hq // hkv, dim=1)
    scale = d ** -0.5 if scale is None else scale
    b = -math.log(nk) if b is None else b
    s = q @ k.transpose(-1, -2) * scale + b
    i = torch.arange(nq)[:, None] + (nk - nq)
    j = torch.arange(nk)[None, :]
    if alibi_slopes is not None:
        slopes = alibi_slopes.double().reshape(-1, hq, 1, 1)
        s = s - slopes * (i - j).abs()
    keep = torch.ones(nq, nk, dtype=torch.bool)
    if is_causal:
        keep &= j <= i
    if window is not None:
        left, right = (window, window) if isinstance(window, int) else window
        if left is not None:
            keep &= j >= i - left
        if right is not None:
            keep &= j <= i + right
    return (torch.sigmoid(s) * keep) @ v


def rel_err(x, ref):
    x, ref = x.detach().double(), ref.detach().double()
    return float((x - ref).norm() / ref.norm().clamp_min(1e-300))


def _inputs(batch, hq, hkv, nq, nk, d, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = (torch.randn(batch, hq, nq, d, generator=g) * scale).to(dtype)
    k = (torch.randn(batch, hkv, nk, d, generator=g) * scale).to(dtype)
    v = torch.randn(batch, hkv, nk, d, generator=g).to(dtype)
    do = torch.randn(batch, hq, nq, d, generator=g).to(dtype)
    return q, k, v, do


def _check(backend, case, dtype, tol_fwd, tol_grad, **extra):
    batch, hq, hkv, nq, nk, d, kwargs = case
    kwargs = {**kwargs, **extra}
    q, k, v, do = _inputs(batch, hq, hkv, nq, nk, d, dtype)
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_kwargs = {key: val for key, val in kwargs.items() if key not in ("chunk_size",)}
    if "bias" in ref_kwargs:
        ref_kwargs["b"] = ref_kwargs.pop("bias")
    ref = naive_sigmoid_attention(*ref_inputs, **ref_kwargs)
    ref.backward(do.double())

    inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = sigmoid_attention(*inputs, backend=backend, **kwargs)
    assert out.dtype == dtype and out.shape == (batch, hq, nq, d)
    out.backward(do)
    assert rel_err(out, ref) < tol_fwd
    for name, mine, theirs in zip("qkv", inputs, ref_inputs, strict=True):
        assert mine.grad.dtype == dtype
        err = rel_err(mine.grad, theirs.grad)
        assert err < tol_grad, f"d{name}: {err}"


# (batch, query heads, kv heads, N_q, N_k, head dim, options)
CASES = [
    (1, 2, 2, 37, 37, 16, {}),
    (1, 2, 2, 37, 37, 16, {"is_causal": True}),
    (1, 4, 2, 21, 45, 64, {"is_causal": True}),  # GQA, N_q < N_k
    (1, 2, 1, 45, 19, 64, {"is_causal": True}),  # MQA, N_q > N_k: leading rows see nothing
    (1, 2, 2, 33, 33, 128, {"bias": 0.0}),
    (2, 2, 2, 40, 40, 16, {"bias": -2.5, "alibi_slopes": torch.tensor([0.5, 0.125])}),
    (1, 2, 2, 40, 40, 16, {"is_causal": True, "window": 9,
                           "alibi_slopes": torch.tensor([[0.25, 0.0625]])}),
    (1, 2, 2, 30, 50, 16, {"window": (5, 3)}),
    (1, 2, 2, 24, 24, 80, {"scale": 0.3}),  # head dim not a power of two
    # wide window: masked, unmasked and masked tile ranges in one row of tiles
    (1, 2, 2, 80, 80, 16, {"window": (40, 3)}),
]
IDS = ["plain", "causal", "gqa-causal-nq<nk", "mqa-causal-nq>nk", "d128-b0", "alibi",
       "causal-window-alibi", "window-lr", "d80-scale", "wide-window"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_path_matches_naive_fp64(case):
    _check("torch", case, torch.float64, 1e-12, 1e-12, chunk_size=16)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch_path_matches_naive_fp32(case):
    _check("torch", case, torch.float32, 1e-5, 1e-5, chunk_size=8)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_triton_interpreter_matches_naive_fp32(case):
    pytest.importorskip("triton")
    _check("triton", case, torch.float32, 1e-5, 1e-5)


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[5]], ids=[IDS[1], IDS[2], IDS[5]])
def test_triton_interpreter_matches_naive_fp16(case):
    pytest.importorskip("triton")
    _check("triton", case, torch.float16, 5e-3, 1e-2)


def test_single_key_closed_form():
    """With one key, o_i = sigmoid(q_i . k * scale + b) v: no normalisation, unlike softmax."""
    q, k, v, _ = _inputs(1, 1, 1, 5, 1, 16, torch.float64)
    expected = torch.sigmoid((q @ k.transpose(-1, -2)) / 4.0 - 0.7) * v
    for backend in ("torch", "triton"):
        if backend == "triton":
            pytest.importorskip("triton")
            q32, k32, v32 = q.float(), k.float(), v.float()
            out = sigmoid_attention(q32, k32, v32, -0.7, backend=backend)
        else:
            out = sigmoid_attention(q, k, v, -0.7, backend=backend)
        assert rel_err(out, expected) < 1e-6
    # default bias is -log(N_k) = 0 for one key
    out = sigmoid_attention(q, k, v, backend="torch")
    assert rel_err(out, torch.sigmoid(q @ k.transpose(-1, -2) / 4.0) * v) < 1e-12


def test_alibi_is_the_true_distance_bias():
    """Row i of a causal ALiBi attention with unit values sums sigmoid(b - m (i - j)) over j <= i.

    Sigmoid is not shift invariant, so a column-only bias (the softmax trick) would give a
    different number; this closed form tells the two apart.
    """
    n, slope, b = 9, 0.7, -1.0
    q = torch.zeros(1, 1, n, 16, dtype=torch.float64)
    k = torch.zeros(1, 1, n, 16, dtype=torch.float64)
    v = torch.ones(1, 1, n, 16, dtype=torch.float64)
    slopes = torch.tensor([slope], dtype=torch.float64)
    i = torch.arange(n, dtype=torch.float64)
    expected = torch.stack([torch.sigmoid(b - slope * (i[r] - i[: r + 1])).sum() for r in range(n)])
    for backend in ("torch", "triton"):
        if backend == "triton":
            pytest.importorskip("triton")
            out = sigmoid_attention(q.float(), k.float(), v.float(), b, is_causal=True,
                                    alibi_slopes=slopes.float(), backend=backend)
        else:
            out = sigmoid_attention(q, k, v, b, is_causal=True, alibi_slopes=slopes,
                                    backend=backend)
        torch.testing.assert_close(out[0, 0, :, 0].double(), expected, rtol=1e-6, atol=1e-6)


def test_gradcheck_torch_path_float64():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 4, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.randn(1, 2, 7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    v = torch.randn(1, 2, 7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    slopes = torch.tensor([0.3, 0.1, 0.05, 0.0], dtype=torch.float64)

    def f(q, k, v):
        return sigmoid_attention(q, k, v, 0.2, is_causal=True, alibi_slopes=slopes,
                                 window=(3, None), backend="torch", chunk_size=3)

    assert torch.autograd.gradcheck(f, (q, k, v), fast_mode=True)

    def f2(q, k, v):
        return sigmoid_attention(q, k, v, backend="torch", chunk_size=2)

    assert torch.autograd.gradcheck(f2, (q, k, v), fast_mode=True)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_fp16_large_logits_stay_finite(backend):
    if backend == "triton":
        pytest.importorskip("triton")
    # logits of order 1e4 overflow fp16 (max 65504) if formed in half precision
    q, k, v, do = _inputs(1, 2, 2, 20, 20, 64, torch.float16, scale=12.0)
    q.requires_grad_()
    k.requires_grad_()
    v.requires_grad_()
    out = sigmoid_attention(q, k, v, is_causal=True, backend=backend)
    out.backward(do)
    for t in (out, q.grad, k.grad, v.grad):
        assert torch.isfinite(t).all()
    ref = naive_sigmoid_attention(q.detach(), k.detach(), v.detach(), is_causal=True)
    assert rel_err(out, ref) < 5e-3


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_rows_without_visible_keys_are_zero(backend):
    if backend == "triton":
        pytest.importorskip("triton")
    q, k, v, _ = _inputs(1, 1, 1, 30, 10, 16, torch.float32)
    out = sigmoid_attention(q, k, v, is_causal=True, backend=backend)
    # N_q - N_k = 20 leading queries sit before the first key (bottom-right alignment)
    assert torch.equal(out[0, 0, :20], torch.zeros_like(out[0, 0, :20]))
    assert torch.isfinite(out).all() and out[0, 0, 20:].abs().sum() > 0


def _random_cases(n, seed):
    rng = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=rng))]

    cases = []
    for _ in range(n):
        hkv = pick([1, 2])
        hq = hkv * pick([1, 2, 3])
        nq, nk = pick([1, 5, 16, 17, 33, 48]), pick([1, 7, 16, 31, 40])
        d = pick([16, 32, 48])
        kw = {"is_causal": pick([False, True]), "bias": pick([None, 0.0, -1.0])}
        if pick([False, True]):
            kw["window"] = (pick([None, 0, 3, 12]), pick([None, 0, 5]))
        if pick([False, True]):
            kw["alibi_slopes"] = torch.rand(hq, generator=rng)
        cases.append((pick([1, 2]), hq, hkv, nq, nk, d, kw))
    return cases


@pytest.mark.parametrize("case", _random_cases(6, seed=11))
def test_random_configurations_triton_and_torch(case):
    """Random shapes and options (fixed seed): both backends against the naive formula."""
    pytest.importorskip("triton")
    kw = {k: v for k, v in case[-1].items() if not (k == "bias" and v is None)}
    case = (*case[:-1], kw)
    _check("torch", case, torch.float64, 1e-12, 1e-12, chunk_size=8)
    _check("triton", case, torch.float32, 1e-5, 1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("case", _random_cases(40, seed=12))
def test_random_configurations_triton_and_torch_many(case):
    pytest.importorskip("triton")
    kw = {k: v for k, v in case[-1].items() if not (k == "bias" and v is None)}
    case = (*case[:-1], kw)
    _check("torch", case, torch.float64, 1e-12, 1e-12, chunk_size=8)
    _check("triton", case, torch.float32, 1e-5, 1e-5)
