"""Specialisation: estimate a specialist set's histogram over the generic domains."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ..._validation import check_int, check_positive
from ..lm import train

__all__ = ["DomainClassifier", "estimate_histogram", "specialize"]


def _features(windows, vocab_size, n_hash):
    """Normalised unigram + hashed bigram counts of token windows, shape (n, vocab + n_hash)."""
    w = np.asarray(windows, dtype=np.int64)
    n, length = w.shape
    uni = np.zeros((n, vocab_size))
    np.add.at(uni, (np.repeat(np.arange(n), length), w.reshape(-1)), 1.0)
    big = np.zeros((n, n_hash))
    codes = (w[:, :-1] * 1_000_003 + w[:, 1:]) % n_hash
    np.add.at(big, (np.repeat(np.arange(n), length - 1), codes.reshape(-1)), 1.0)
    feats = np.concatenate([uni / length, big / max(length - 1, 1)], axis=1)
    return np.sqrt(feats)  # Hellinger map: counts of frequent tokens dominate less


def _check_ids(t, name, vocab_size):
    """Raise unless ``t`` holds integer token ids in [0, vocab_size)."""
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {t.dtype}")
    if t.size and (t.min() < 0 or (vocab_size is not None and t.max() >= vocab_size)):
        raise ValueError(f"{name} has token ids outside [0, {vocab_size}): min {t.min()}, max "
                         f"{t.max()}")


class DomainClassifier:
    """Which generic domain does a window of tokens come from?

    A multinomial logistic regression on unigram and hashed-bigram frequencies of token
    windows, trained on windows of each generic domain of a corpus. Averaging its predicted
    probabilities over a specialist set's windows estimates the set's histogram over the
    generic domains, the input of :meth:`SoupOfExperts.instantiate` (the paper clusters
    sentence embeddings instead; Ablin et al., 2025).

    Parameters
    ----------
    windows_per_domain : int, default=200
        Training windows drawn per generic domain.
    n_hash : int, default=2048
        Buckets of the hashed bigram features.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    random_state : int, default=0

    Attributes
    ----------
    classes_ : list of str
        The generic domains, in the corpus order.
    """

    def __init__(self, *, windows_per_domain=200, n_hash=2048, C=1.0, random_state=0):
        self.windows_per_domain = check_int(windows_per_domain, "windows_per_domain",
                                            min_value=2)
        self.n_hash = check_int(n_hash, "n_hash", min_value=1)
        self.C = check_positive(C, "C")
        self.random_state = random_state

    def fit(self, corpus):
        """Fit on windows drawn from every domain of ``corpus`` (training split)."""
        if not all(hasattr(corpus, a) for a in ("names", "_train", "seq_len", "vocab_size")):
            raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
        rng = np.random.default_rng(self.random_state)
        xs, ys = [], []
        for i, name in enumerate(corpus.names):
            stream = corpus._train[name]  # noqa: SLF001 - same package family
            hi = len(stream) - corpus.seq_len
            off = rng.integers(0, hi, size=self.windows_per_domain)
            idx = off[:, None] + np.arange(corpus.seq_len)
            xs.append(np.asarray(stream)[idx])
            ys.append(np.full(self.windows_per_domain, i))
        self.vocab_size_ = corpus.vocab_size
        self.classes_ = list(corpus.names)
        x = _features(np.concatenate(xs), self.vocab_size_, self.n_hash)
        self.model_ = LogisticRegression(C=self.C, max_iter=2000).fit(x, np.concatenate(ys))
        return self

    def predict_proba(self, windows):
        """Domain probabilities of token windows.

        Parameters
        ----------
        windows : array_like of int, shape (n_windows, window_len)

        Returns
        -------
        proba : ndarray, shape (n_windows, n_domains)
        """
        if not hasattr(self, "model_"):
            raise RuntimeError("DomainClassifier is not fitted: call fit(corpus) first")
        w = np.asarray(windows.cpu() if isinstance(windows, torch.Tensor) else windows)
        if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] < 2:
            raise ValueError("windows must be a non-empty 2-D array of token ids with at "
                             f"least 2 tokens per window, got shape {w.shape}")
        _check_ids(w, "windows", self.vocab_size_)
        proba = np.zeros((w.shape[0], len(self.classes_)))
        proba[:, self.model_.classes_] = self.model_.predict_proba(
            _features(w, self.vocab_size_, self.n_hash))
        return proba


def estimate_histogram(classifier, tokens, *, window=None, hard=False):
    """Histogram of a specialist set over the generic domains.

    Parameters
    ----------
    classifier : DomainClassifier
        Fitted on the generic corpus.
    tokens : array_like of int, shape (n_tokens,) or (n_windows, window_len)
        The specialist set: one token stream (cut into windows) or windows.
    window : int, optional
        Window length for a 1-D stream (default: the classifier's training length, 64 if
        unknown).
    hard : bool, default=False
        Count arg-max predictions instead of averaging probabilities.

    Returns
    -------
    h : ndarray, shape (n_domains,)
        On the simplex.
    """
    t = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens)
    if t.size == 0:
        raise ValueError("tokens (the specialist set) is empty")
    if not hasattr(classifier, "predict_proba"):
        raise TypeError(f"classifier must be a DomainClassifier, got "
                        f"{type(classifier).__name__}")
    _check_ids(t, "tokens", getattr(classifier, "vocab_size_", None))
    if t.ndim == 1:
        window = check_int(window if window is not None else 64, "window", min_value=2)
        n = len(t) // window
        if n == 0:
            raise ValueError(f"tokens has {len(t)} tokens, fewer than one window of {window}")
        t = t[: n * window].reshape(n, window)
    proba = classifier.predict_proba(t)
    if hard:
        h = np.bincount(proba.argmax(axis=1), minlength=proba.shape[1]).astype(float)
    else:
        h = proba.sum(axis=0)
    return h / h.sum()


def specialize(soup, h, *, corpus=None, specialist=None, finetune_steps=0, **train_kwargs):
    """Instantiate the specialist for ``h`` and optionally fine-tune it.

    Parameters
    ----------
    soup : SoupOfExperts
    h : array_like, shape (n_domains,)
        Domain histogram of the specialist set (see :func:`estimate_histogram`).
    corpus : DomainCorpus, optional
        Needed when ``finetune_steps > 0``: the corpus holding the specialist data.
    specialist : str or int or array_like, optional
        What to fine-tune on: a domain of ``corpus`` (name or index) or mixture weights over
        its domains.
    finetune_steps : int, default=0
    **train_kwargs
        Passed to :func:`sciml_toolbox.nn.lm.train`.

    Returns
    -------
    model : nn.Module
        The instantiated (and possibly fine-tuned) base model.
    history : TrainHistory or None
        The fine-tuning history.
    """
    model = soup.instantiate(h)
    steps = check_int(finetune_steps, "finetune_steps", min_value=0)
    if steps == 0:
        return model, None
    if corpus is None or specialist is None:
        raise ValueError("fine-tuning needs corpus= and specialist=")
    if isinstance(specialist, (str, int, np.integer)):
        mix = np.zeros(corpus.n_domains)
        mix[corpus.domain_index(specialist)] = 1.0
    else:
        mix = specialist
    hist = train(model, corpus, mix, steps, **train_kwargs)
    return model, hist
