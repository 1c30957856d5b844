"""API behaviour of ``sigmoid_attention``: argument checks, dtypes, dispatch, no in-place edits."""

import pytest

torch = pytest.importorskip("torch")

from sciml_toolbox.nn.attention import sigmoid_attention, triton_available  # noqa: E402


def _qkv(batch=1, hq=2, hkv=2, nq=8, nk=8, d=16, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, hq, nq, d, generator=g, dtype=dtype),
            torch.randn(batch, hkv, nk, d, generator=g, dtype=dtype),
            torch.randn(batch, hkv, nk, d, generator=g, dtype=dtype))


def test_mismatched_head_dim():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="k head dim"):
        sigmoid_attention(q, k[..., :8], v)
    if triton_available("cpu"):
        with pytest.raises(ValueError, match="v head dim"):
            sigmoid_attention(q, k, v[..., :8], backend="triton")


def test_value_head_dim_may_differ_on_torch_path():
    q, k, v = _qkv()
    v = torch.randn(1, 2, 8, 5, dtype=torch.float64)
    q, k = q.double(), k.double()
    out = sigmoid_attention(q, k, v, is_causal=True)
    assert out.shape == (1, 2, 8, 5)
    s = torch.sigmoid(q @ k.transpose(-1, -2) / 4.0 - torch.log(torch.tensor(8.0)))
    torch.testing.assert_close(out, (s * torch.ones(8, 8).tril()) @ v)


def test_query_heads_not_multiple_of_key_heads():
    q, _, _ = _qkv(hq=3)
    _, k, v = _qkv(hkv=2)
    with pytest.raises(ValueError, match="multiple of the number of k/v heads"):
        sigmoid_attention(q, k, v)


def test_dtype_mismatch():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="one dtype"):
        sigmoid_attention(q, k.double(), v)


def test_unsupported_dtype():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="q must be float16"):
        sigmoid_attention(q.int(), k.int(), v.int())


def test_device_mismatch():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="one device"):
        sigmoid_attention(q, k.to("meta"), v)


def test_wrong_ndim():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="q must have shape"):
        sigmoid_attention(q[0], k, v)


def test_not_a_tensor():
    _, k, v = _qkv()
    with pytest.raises(TypeError, match="q must be a torch.Tensor"):
        sigmoid_attention([[1.0]], k, v)


def test_kv_shapes_differ():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="k and v must have the same"):
        sigmoid_attention(q, k, v[:, :, :5])


def test_batch_mismatch():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="k batch size"):
        sigmoid_attention(q, torch.cat([k, k]), torch.cat([v, v]))


def test_bad_backend():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="backend"):
        sigmoid_attention(q, k, v, backend="flash")


def test_bad_scale():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="scale"):
        sigmoid_attention(q, k, v, scale=-1.0)


def test_bad_bias():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="bias"):
        sigmoid_attention(q, k, v, float("nan"))
    with pytest.raises(TypeError, match="bias"):
        sigmoid_attention(q, k, v, "zero")


def test_bad_window():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="window"):
        sigmoid_attention(q, k, v, window=-1)
    with pytest.raises(TypeError, match="window"):
        sigmoid_attention(q, k, v, window=(1, 2, 3))


def test_bad_is_causal():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="is_causal"):
        sigmoid_attention(q, k, v, is_causal=1)


def test_bad_alibi_slopes_shape():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="alibi_slopes must have shape"):
        sigmoid_attention(q, k, v, alibi_slopes=torch.ones(3))


def test_bad_alibi_slopes_type():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="alibi_slopes"):
        sigmoid_attention(q, k, v, alibi_slopes=[0.5, 0.25])


def test_bad_chunk_size():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="chunk_size"):
        sigmoid_attention(q, k, v, chunk_size=0)


def test_triton_rejects_float64():
    pytest.importorskip("triton")
    q, k, v = _qkv(dtype=torch.float64)
    with pytest.raises((TypeError, ValueError), match="triton"):
        sigmoid_attention(q, k, v, backend="triton")


def test_triton_rejects_small_head_dim():
    pytest.importorskip("triton")
    if not triton_available("cpu"):
        pytest.skip("Triton not in interpreter mode")
    q, k, v = _qkv(d=8)
    with pytest.raises(ValueError, match="head dims 16 to 256"):
        sigmoid_attention(q, k, v, backend="triton")


def test_triton_interpreter_rejects_bfloat16():
    pytest.importorskip("triton")
    if not triton_available("cpu"):
        pytest.skip("Triton not in interpreter mode")
    q, k, v = _qkv(dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="bfloat16"):
        sigmoid_attention(q, k, v, backend="triton")


def test_auto_on_cpu_is_torch_and_matches_triton():
    q, k, v = _qkv(nq=20, nk=20)
    out = sigmoid_attention(q, k, v, is_causal=True)
    ref = sigmoid_attention(q, k, v, is_causal=True, backend="torch", chunk_size=3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_path_dtypes(dtype):
    q, k, v = _qkv(dtype=dtype)
    out = sigmoid_attention(q, k, v, backend="torch")
    assert out.dtype == dtype and out.shape == q.shape
    ref = sigmoid_attention(q.double(), k.double(), v.double(), backend="torch")
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-5)
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_inputs_not_modified_and_non_contiguous(backend):
    if backend == "triton":
        pytest.importorskip("triton")
        if not triton_available("cpu"):
            pytest.skip("Triton not in interpreter mode")
    g = torch.Generator().manual_seed(3)
    # (B, N, H, d) layout transposed to (B, H, N, d): non-contiguous views, as in most models
    q = torch.randn(2, 19, 4, 16, generator=g).transpose(1, 2)
    k = torch.randn(2, 23, 2, 16, generator=g).transpose(1, 2)
    v = torch.randn(2, 23, 2, 16, generator=g).transpose(1, 2)
    copies = [t.clone() for t in (q, k, v)]
    out = sigmoid_attention(q, k, v, is_causal=True, backend=backend)
    for t, c in zip((q, k, v), copies, strict=True):
        assert torch.equal(t, c)
    ref = sigmoid_attention(q.contiguous(), k.contiguous(), v.contiguous(), is_causal=True,
                            backend="torch")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
