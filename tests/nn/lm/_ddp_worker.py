"""Worker launched by test_lm_train.py under torchrun with 2 gloo processes."""

import sys

import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, init_distributed, train


def run(out=None):
    torch.set_num_threads(1)
    rank, world = init_distributed("gloo")
    corpus = DomainCorpus.synthetic(2, n_tokens=8000, seq_len=16, random_state=1)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16))
    # SGD without clipping: unlike Adam, its update scales with the gradient, so a wrong
    # averaging over ranks would show
    hist = train(model, corpus, [0.3, 0.7], 6, batch_size=8, lr=0.5, optimizer="sgd",
                 grad_clip=None, eval_every=3,
                 eval_windows=8)
    if out is not None and rank == 0:
        torch.save({"state": model.state_dict(), "history": hist.to_dict(), "world": world},
                   out)
    return model, hist


if __name__ == "__main__":
    run(sys.argv[1])
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
