"""transformers integration, on a tiny randomly initialised Llama (no download)."""

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask  # noqa: E402

from sciml_toolbox.nn.attention import register_hf_attention  # noqa: E402


def _naive_hf(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Test-local O(N^2) sigmoid attention in the transformers calling convention."""
    group = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(group, 1).double()
    v = value.repeat_interleave(group, 1).double()
    nq, nk = query.shape[2], k.shape[2]
    b = module.config.sigmoid_attn_bias
    s = query.double() @ k.transpose(-1, -2) * scaling + b
    if attention_mask is None:
        i = torch.arange(nq)[:, None] + (nk - nq)
        keep = torch.arange(nk)[None, :] <= i if nq > 1 else torch.ones(1, nk, dtype=torch.bool)
    else:
        keep = attention_mask
    out = (torch.sigmoid(s) * keep) @ v
    return out.to(query.dtype).transpose(1, 2).contiguous(), None


def _model(impl, bias=-1.5, seed=0):
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64)
    cfg.sigmoid_attn_bias = bias
    cfg._attn_implementation = impl
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module", autouse=True)
def _register():
    register_hf_attention("sigmoid")
    AttentionInterface.register("naive_sigmoid_test", _naive_hf)
    AttentionMaskInterface.register("naive_sigmoid_test", sdpa_mask)


def test_hf_model_matches_naive_attention():
    ids = torch.randint(0, 97, (2, 13), generator=torch.Generator().manual_seed(1))
    mine, ref = _model("sigmoid"), _model("naive_sigmoid_test")
    with torch.no_grad():
        torch.testing.assert_close(mine(ids).logits, ref(ids).logits, rtol=1e-4, atol=1e-4)
        mask = torch.ones(2, 13, dtype=torch.long)
        mask[1, :5] = 0
        torch.testing.assert_close(mine(ids, attention_mask=mask).logits,
                                   ref(ids, attention_mask=mask).logits, rtol=1e-4, atol=1e-4)


def test_hf_left_padding_matches_unpadded_run():
    """With a fixed bias, pad tokens get weight 0 and RoPE is relative: same logits."""
    m = _model("sigmoid")
    ids = torch.randint(0, 97, (1, 9), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), ids], 1)
    mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 9, dtype=torch.long)], 1)
    with torch.no_grad():
        alone = m(ids).logits
        pad = m(padded, attention_mask=mask).logits[:, 4:]
    torch.testing.assert_close(pad, alone, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_hf_cached_decoding_matches_full_forward():
    m = _model("sigmoid")
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = m(ids).logits
        out = m(ids[:, :8], use_cache=True)
        past, steps = out.past_key_values, [out.logits[:, -1]]
        for t in range(8, 12):
            out = m(ids[:, t:t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            steps.append(out.logits[:, -1])
    torch.testing.assert_close(torch.stack(steps[:-1], 1), full[:, 7:11], rtol=1e-4, atol=1e-4)


def test_hf_default_bias_is_minus_log_n():
    m = _model("sigmoid", bias=None)
    ref = _model("naive_sigmoid_test", bias=-math.log(10))
    ids = torch.randint(0, 97, (1, 10), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(m(ids).logits, ref(ids).logits, rtol=1e-4, atol=1e-4)


def test_register_bad_name():
    with pytest.raises(TypeError, match="name"):
        register_hf_attention("")
