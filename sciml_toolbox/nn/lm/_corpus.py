"""DomainCorpus: offline multi-domain token streams served as batches for a mixture."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..._validation import check_in_range, check_int, check_option, check_simplex
from ._sources import markov_domains, pydoc_topics_text, python_source_text
from ._tokenizer import ByteTokenizer

__all__ = ["DomainCorpus"]


class DomainCorpus:
    """Multi-domain token corpus serving next-token batches for a mixture of domains.

    Each domain is a 1-D token stream, split once into a training part (the first
    ``1 - val_fraction``) and a validation part (the rest). Training windows of ``seq_len + 1``
    tokens are drawn at uniformly random offsets; the domain of each sequence is drawn from the
    mixture. Sampling uses the corpus's own seeded generator, so a corpus built with the same
    arguments serves the same batches; its state is saved by :meth:`state_dict` for exact
    resumption.

    Parameters
    ----------
    domains : mapping of str to (str or array_like of int)
        Domain name to its text (encoded with ``tokenizer``) or its tokens, shape (n_tokens,).
    seq_len : int, default=128
        Context length of the served sequences.
    val_fraction : float in (0, 1), default=0.1
        Fraction of each stream held out for validation.
    max_train_tokens : int or mapping of str to int, optional
        Budget of *unique* training tokens per domain (the first ones of the training part):
        the ``D`` of data-constrained scaling laws. Repeated sampling past it counts as epochs.
    tokenizer : object with ``encode`` and ``vocab_size``, default=ByteTokenizer()
    random_state : int, default=0
        Seed of the sampling generator.

    Attributes
    ----------
    names : list of str
        Domain names, in order (mixture weights follow this order).
    unique_tokens : dict of str to int
        Training tokens available per domain.
    tokens_seen : dict of str to int
        Training tokens served so far per domain (targets, ``seq_len`` per sequence).

    Examples
    --------
    >>> corpus = DomainCorpus.synthetic(n_domains=3, similarity=0.5, seq_len=32)
    >>> x, y, d = corpus.sample([0.2, 0.3, 0.5], batch_size=8)
    >>> tuple(x.shape), tuple(d.shape)
    ((8, 32), (8,))
    """

    def __init__(self, domains, *, seq_len=128, val_fraction=0.1, max_train_tokens=None,
                 tokenizer=None, random_state=0):
        if not isinstance(domains, Mapping) or len(domains) == 0:
            raise ValueError("domains must be a non-empty mapping of name to text or tokens")
        self.seq_len = check_int(seq_len, "seq_len", min_value=1)
        self.val_fraction = check_in_range(val_fraction, "val_fraction", 0.0, 1.0,
                                           closed="neither")
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer()
        if not (callable(getattr(self.tokenizer, "encode", None))
                and hasattr(self.tokenizer, "vocab_size")):
            raise TypeError("tokenizer must have an encode method and a vocab_size, got "
                            f"{type(self.tokenizer).__name__}")
        self.vocab_size = int(self.tokenizer.vocab_size)
        self.random_state = random_state
        self.names = [str(k) for k in domains]
        self._train, self._val = {}, {}
        for name, data in domains.items():
            toks = self._as_tokens(name, data)
            n_val = int(round(len(toks) * self.val_fraction))
            train, val = toks[: len(toks) - n_val], toks[len(toks) - n_val:]
            budget = (max_train_tokens.get(name) if isinstance(max_train_tokens, Mapping)
                      else max_train_tokens)
            if budget is not None:
                budget = check_int(budget, "max_train_tokens", min_value=self.seq_len + 1)
                train = train[:budget]
            for part, label in ((train, "training"), (val, "validation")):
                if len(part) < self.seq_len + 1:
                    raise ValueError(
                        f"domain {name!r} has {len(part)} {label} tokens, fewer than "
                        f"seq_len + 1 = {self.seq_len + 1}: add data or lower seq_len")
            self._train[str(name)] = torch.from_numpy(train.astype(np.int64))
            self._val[str(name)] = torch.from_numpy(val.astype(np.int64))
        self.unique_tokens = {k: int(v.numel()) for k, v in self._train.items()}
        self.reset(random_state)

    # ------------------------------------------------------------------ construction
    def _as_tokens(self, name, data):
        if isinstance(data, str):
            toks = np.asarray(self.tokenizer.encode(data))
        else:
            toks = np.asarray(data)
            if toks.ndim != 1 or not np.issubdtype(toks.dtype, np.integer):
                raise ValueError(f"domains[{name!r}] must be a str or a 1-D integer array, "
                                 f"got dtype {toks.dtype} and shape {toks.shape}")
        if toks.size and (toks.min() < 0 or toks.max() >= self.vocab_size):
            raise ValueError(f"domains[{name!r}] has tokens outside [0, {self.vocab_size})")
        return toks

    @classmethod
    def from_stdlib(cls, domains=("code", "prose"), *, code_bytes=1_000_000, prose_bytes=None,
                    **kwargs):
        """Corpus of CPython's own text: ``'code'`` (standard-library source) and ``'prose'``
        (``pydoc_data.topics``). Any other name is read as a standard-library package, giving
        finer code domains (for example ``'email'``, ``'asyncio'``).

        Parameters
        ----------
        domains : sequence of str, default=('code', 'prose')
        code_bytes : int, default=1_000_000
            Bytes of source per code domain.
        prose_bytes : int, optional
            Bytes of prose (all of it by default, about 470k).
        **kwargs
            Passed to :class:`DomainCorpus`.
        """
        texts = {}
        for name in domains:
            if name == "code":
                texts[name] = python_source_text(code_bytes)
            elif name == "prose":
                texts[name] = pydoc_topics_text(prose_bytes)
            else:
                texts[name] = python_source_text(code_bytes, packages=[name])
        return cls(texts, **kwargs)

    @classmethod
    def synthetic(cls, n_domains=4, similarity=0.5, *, n_tokens=200_000, n_states=32,
                  concentration=0.1, source_seed=0, **kwargs):
        """Corpus of synthetic Markov domains (see :func:`markov_domains`).

        The sources are kept in ``corpus.sources`` (their entropy rates are the best
        achievable losses).

        Parameters
        ----------
        n_domains : int, default=4
        similarity : float in [0, 1], default=0.5
        n_tokens : int, default=200_000
            Tokens per domain (training + validation).
        n_states, concentration, source_seed
            Passed to :func:`markov_domains` (``source_seed`` is its random_state).
        **kwargs
            Passed to :class:`DomainCorpus`.
        """
        sources = markov_domains(n_domains, similarity, n_states=n_states,
                                 concentration=concentration, random_state=source_seed)
        data = {s.name: s.sample(n_tokens, random_state=source_seed + 1 + i)
                for i, s in enumerate(sources)}
        corpus = cls(data, **kwargs)
        corpus.sources = sources
        return corpus

    # ------------------------------------------------------------------ state
    @property
    def n_domains(self):
        """Number of domains."""
        return len(self.names)

    def reset(self, random_state=None):
        """Reseed the sampler and zero the token counters."""
        seed = self.random_state if random_state is None else random_state
        self._rng = np.random.default_rng(seed)
        self.tokens_seen = dict.fromkeys(self.names, 0)

    def state_dict(self):
        """Sampler state and counters (for checkpoints)."""
        return {"rng": self._rng.bit_generator.state, "tokens_seen": dict(self.tokens_seen)}

    def load_state_dict(self, state):
        """Restore the state returned by :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]
        self.tokens_seen = dict(state["tokens_seen"])

    def epochs_seen(self):
        """Tokens seen divided by unique tokens, per domain (dict)."""
        return {k: self.tokens_seen[k] / self.unique_tokens[k] for k in self.names}

    def domain_index(self, domain):
        """Index of a domain given its name or index."""
        if isinstance(domain, str):
            if domain not in self.names:
                raise ValueError(f"domain must be one of {self.names}, got {domain!r}")
            return self.names.index(domain)
        return check_int(domain, "domain", min_value=0, max_value=self.n_domains - 1)

    # ------------------------------------------------------------------ sampling
    def check_mixture(self, mixture):
        """Validate mixture weights and return them as float64, shape (n_domains,)."""
        w = np.asarray(mixture, dtype=float) if not hasattr(mixture, "detach") else (
            mixture.detach().cpu().double().numpy())
        w = np.asarray(check_simplex(w, "mixture", length=self.n_domains), dtype=float)
        return w / w.sum()

    def _windows(self, stream, offsets):
        idx = torch.as_tensor(offsets)[:, None] + torch.arange(self.seq_len + 1)
        return stream[idx]

    def sample(self, mixture, batch_size, *, split="train"):
        """Draw a batch: each sequence's domain from ``mixture``, offsets uniform.

        Parameters
        ----------
        mixture : array_like, shape (n_domains,)
            Domain weights on the simplex.
        batch_size : int
        split : {'train', 'val'}, default='train'

        Returns
        -------
        x : LongTensor, shape (batch_size, seq_len)
            Inputs.
        y : LongTensor, shape (batch_size, seq_len)
            Targets (``x`` shifted by one).
        domains : LongTensor, shape (batch_size,)
            Domain index of each sequence.
        """
        w = self.check_mixture(mixture)
        batch_size = check_int(batch_size, "batch_size", min_value=1)
        check_option(split, "split", ("train", "val"))
        dom = self._rng.choice(self.n_domains, size=batch_size, p=w)
        return self._gather(dom, split)

    def domain_batch(self, domain, batch_size, *, split="train"):
        """Draw a batch from one domain (name or index); same outputs as :meth:`sample`."""
        i = self.domain_index(domain)
        batch_size = check_int(batch_size, "batch_size", min_value=1)
        check_option(split, "split", ("train", "val"))
        return self._gather(np.full(batch_size, i), split)

    def _gather(self, dom, split):
        streams = self._train if split == "train" else self._val
        seqs = torch.empty((len(dom), self.seq_len + 1), dtype=torch.int64)
        u = self._rng.random(len(dom))
        for i in np.unique(dom):
            rows = np.flatnonzero(dom == i)
            stream = streams[self.names[i]]
            offsets = (u[rows] * (stream.numel() - self.seq_len)).astype(np.int64)
            seqs[torch.as_tensor(rows)] = self._windows(stream, offsets)
            if split == "train":
                self.tokens_seen[self.names[i]] += int(rows.size) * self.seq_len
        return seqs[:, :-1], seqs[:, 1:], torch.as_tensor(dom, dtype=torch.int64)

    def validation_windows(self, domain, max_windows=None):
        """Fixed, non-overlapping validation windows of one domain (deterministic).

        Parameters
        ----------
        domain : str or int
        max_windows : int, optional
            Keep this many windows, evenly spread over the validation stream.

        Returns
        -------
        x, y : LongTensor, shape (n_windows, seq_len)
        """
        stream = self._val[self.names[self.domain_index(domain)]]
        n = (stream.numel() - 1) // self.seq_len
        starts = np.arange(n) * self.seq_len
        if max_windows is not None and n > max_windows:
            pick = np.linspace(0, n - 1, check_int(max_windows, "max_windows", min_value=1))
            starts = starts[np.unique(pick.round().astype(int))]
        seqs = self._windows(stream, starts)
        return seqs[:, :-1], seqs[:, 1:]

    def __repr__(self):
        sizes = ", ".join(f"{k}: {self.unique_tokens[k]}" for k in self.names)
        return f"DomainCorpus(seq_len={self.seq_len}, unique training tokens {{{sizes}}})"
