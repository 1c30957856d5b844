"""CUDA checks of the small-LM workbench (skipped without a GPU)."""

import pytest
import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, evaluate, train


@pytest.mark.gpu
def test_tinylm_cuda_forward_matches_cpu():
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(d_model=64, n_layers=2, n_heads=4, max_seq_len=64))
    idx = torch.randint(0, 256, (2, 64))
    with torch.no_grad():
        ref = model(idx)
        got = model.cuda()(idx.cuda()).cpu()
    torch.testing.assert_close(got, ref, atol=2e-4, rtol=1e-3)


@pytest.mark.gpu
def test_train_on_cuda_and_evaluate():
    corpus = DomainCorpus.synthetic(2, n_tokens=20_000, seq_len=32)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(d_model=32, n_layers=1, n_heads=2, max_seq_len=32))
    hist = train(model, corpus, [0.5, 0.5], 50, lr=1e-2, batch_size=16, device="cuda",
                 eval_every=25, eval_windows=8)
    assert next(model.parameters()).is_cuda
    assert hist.val_loss["markov0"][-1] < hist.val_loss["markov0"][0]
    cpu = evaluate(model.cpu(), corpus, max_windows=8)
    assert cpu["markov0"] == pytest.approx(hist.val_loss["markov0"][-1], rel=1e-3)
