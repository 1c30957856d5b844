"""A synthetic specialisation problem: generic Markov domains and a specific set of known mix."""

from __future__ import annotations

import numpy as np

from ..._validation import check_int, check_simplex
from ._corpus import DomainCorpus
from ._sources import markov_domains, sample_mixture

__all__ = ["specific_mixture_corpus"]


def specific_mixture_corpus(target, *, similarity=0.5, n_states=24, n_tokens=30_000,
                            generic_tokens=2_000, specific_tokens=10_000, seq_len=32,
                            val_fraction=0.2, chunk_len=64, random_state=0,
                            specific_random_state=None):
    """Generic Markov domains plus a ``'specific'`` domain drawn from a known mixture of them.

    The set-up of data-mixing experiments (Fan, Grangier & Ablin, 2024): a model is to be good
    on a small *specific* set and trains on generic domains mixed by a method such as DGA or
    importance sampling. Here the specific set is drawn, in chunks of ``chunk_len`` tokens, from
    the generic domains with probabilities ``target`` (:func:`sample_mixture`), so ``target``
    is the best fixed mixture. ``generic_tokens`` and ``specific_tokens`` cap the unique
    training tokens of each stream: a small ``generic_tokens`` makes the generic data scarce
    (repeated for many epochs), a small ``specific_tokens`` makes the specific set scarce.

    Parameters
    ----------
    target : array-like, shape (n_domains,)
        Mixture of the specific set over the generic domains (on the simplex); its length sets
        the number of generic domains.
    similarity : float in [0, 1], default=0.5
        Shared part of the Markov chains (:func:`markov_domains`).
    n_states : int, default=24
        States of each Markov chain.
    n_tokens : int, default=30_000
        Tokens drawn per stream (training + validation).
    generic_tokens, specific_tokens : int, default=2_000 and 10_000
        Unique training tokens kept per generic domain and for the specific set.
    seq_len : int, default=32
    val_fraction : float, default=0.2
        Held-out share of every stream.
    chunk_len : int, default=64
        Chunk length of the specific set's mixture.
    random_state : int, default=0
        Seed of the chains; generic domain ``i`` is sampled with seed ``random_state + i``.
    specific_random_state : int, optional
        Seed of the specific set (default: ``random_state + 9``).

    Returns
    -------
    corpus : DomainCorpus
        Domains ``corpus.sources[i].name`` for the generic domains, then ``'specific'``; the
        chains are kept in ``corpus.sources`` (their entropy rates are the best losses).
    """
    target = np.asarray(target, dtype=float)
    if target.ndim != 1 or target.size < 1:
        raise ValueError(f"target must be a 1-D mixture over the generic domains, got shape "
                         f"{target.shape}")
    check_simplex(target, "target")
    random_state = check_int(random_state, "random_state", min_value=0)
    if specific_random_state is None:
        specific_random_state = random_state + 9
    n_tokens = check_int(n_tokens, "n_tokens", min_value=1)
    sources = markov_domains(target.size, similarity=similarity, n_states=n_states,
                             random_state=random_state)
    data = {s.name: s.sample(n_tokens, random_state=random_state + i)
            for i, s in enumerate(sources)}
    data["specific"] = sample_mixture(sources, target, n_tokens, chunk_len=chunk_len,
                                      random_state=specific_random_state)
    budgets = dict.fromkeys(data, check_int(generic_tokens, "generic_tokens", min_value=1))
    budgets["specific"] = check_int(specific_tokens, "specific_tokens", min_value=1)
    corpus = DomainCorpus(data, seq_len=seq_len, val_fraction=val_fraction,
                          max_train_tokens=budgets)
    corpus.sources = sources
    return corpus
