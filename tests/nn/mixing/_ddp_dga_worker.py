"""Worker launched by test_mixing_ddp.py under torchrun with 2 gloo processes."""

import sys

import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, init_distributed, train
from sciml_toolbox.nn.mixing import DGA


def run(out=None, alignment="finite_difference"):
    torch.set_num_threads(1)
    rank, world = init_distributed("gloo")
    corpus = DomainCorpus.synthetic(3, n_tokens=8000, seq_len=16, random_state=1)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16))
    dga = DGA(2, specific="markov2", update_every=2, step_size=50.0, ema=0.5,
              alignment=alignment)
    hist = train(model, corpus, dga, 6, lr=0.5, optimizer="sgd", grad_clip=None,
                 eval_windows=8, **dga.train_kwargs(batch_size=8))
    if out is not None and rank == 0:
        torch.save({"state": model.state_dict(), "weights": dga.weights_,
                    "alignments": dga.alignment_history_, "loss": hist.train_loss,
                    "world": world}, out)
    return model, dga, hist


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
