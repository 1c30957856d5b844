"""Small-LM workbench: domain corpora, a tiny decoder-only transformer and its trainer.

``DomainCorpus`` serves token batches for a mixture of offline domains (Python standard-library
source, ``pydoc_data.topics`` prose, synthetic Markov domains); ``TinyLM`` is a decoder-only
transformer from a config dataclass; ``train`` runs the training loop with mixture and
parameter-instantiation hooks, checkpoints and torchrun/DDP.
"""

from ._corpus import DomainCorpus
from ._distributed import init_distributed
from ._forgetting import forgetting_study, runs_to_arrays
from ._model import TinyLM, TinyLMConfig, apply_rope
from ._optimizer_study import compare_optimizers
from ._sources import (
    MarkovSource,
    bbc_news_texts,
    markov_domains,
    pydoc_topics_text,
    python_source_text,
    sample_mixture,
)
from ._specific import specific_mixture_corpus
from ._tokenizer import ByteTokenizer
from ._train import (
    Callback,
    TrainHistory,
    TrainState,
    default_loss,
    evaluate,
    lr_multiplier,
    per_sequence_loss,
    train,
)

__all__ = [
    "ByteTokenizer",
    "DomainCorpus",
    "MarkovSource",
    "markov_domains",
    "sample_mixture",
    "python_source_text",
    "pydoc_topics_text",
    "bbc_news_texts",
    "TinyLMConfig",
    "TinyLM",
    "apply_rope",
    "train",
    "evaluate",
    "default_loss",
    "per_sequence_loss",
    "lr_multiplier",
    "init_distributed",
    "Callback",
    "TrainState",
    "TrainHistory",
    "forgetting_study",
    "runs_to_arrays",
    "compare_optimizers",
    "specific_mixture_corpus",
]
