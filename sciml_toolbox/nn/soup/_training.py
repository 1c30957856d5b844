"""Training a Soup-of-Experts through the workbench trainer: histogram sampling and loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..._validation import check_int, check_positive
from ..lm import Callback, train

__all__ = ["DomainHistogramSampler", "soup_loss", "train_soup"]


class DomainHistogramSampler:
    """Random domain histograms ``h`` for training a soup (the meta-distribution).

    Each draw picks a support of ``support_size`` domains uniformly at random, then weights on
    it from a symmetric Dirichlet(``concentration``); the other domains get weight 0. Small
    supports teach the router specialists; ``support_size = n_domains`` with a large
    concentration gives near-uniform (generic) mixtures. The paper samples histograms from a
    meta-distribution over the simplex (Ablin et al., 2025); its exact form is not public, this
    support-then-Dirichlet form is this package's choice.

    Parameters
    ----------
    n_domains : int
    support_size : int, optional
        Domains with non-zero weight per draw (default ``min(2, n_domains)``).
    concentration : float, default=1.0
        Dirichlet concentration on the support (1 = uniform on the support's simplex).
    random_state : int, default=0

    Examples
    --------
    >>> s = DomainHistogramSampler(5, support_size=2, random_state=0)
    >>> h = s.sample()
    >>> h.shape, int((h > 0).sum()), round(float(h.sum()), 12)
    ((5,), 2, 1.0)
    """

    def __init__(self, n_domains, *, support_size=None, concentration=1.0, random_state=0):
        self.n_domains = check_int(n_domains, "n_domains", min_value=1)
        if support_size is None:
            support_size = min(2, self.n_domains)
        self.support_size = check_int(support_size, "support_size", min_value=1,
                                      max_value=self.n_domains)
        self.concentration = check_positive(concentration, "concentration")
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)

    def sample(self):
        """One histogram, shape (n_domains,), on the simplex."""
        support = self._rng.choice(self.n_domains, size=self.support_size, replace=False)
        w = self._rng.dirichlet(np.full(self.support_size, self.concentration))
        h = np.zeros(self.n_domains)
        h[support] = w
        return h

    def sample_batch(self, n):
        """``n`` histograms, shape (n, n_domains)."""
        return np.stack([self.sample() for _ in range(check_int(n, "n", min_value=1))])

    def state_dict(self):
        """Generator state (for checkpoints)."""
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        """Restore the state returned by :meth:`state_dict`."""
        self._rng.bit_generator.state = state["rng"]


class _SoupMixture(Callback):
    """Mixture hook: one fresh histogram per step, checkpointed with the sampler."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __call__(self, step):
        return self.sampler.sample()

    def state_dict(self):
        return self.sampler.state_dict()

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state)


def soup_loss(model, x, y, state=None):
    """Next-token cross-entropy of a soup instantiated at the step's mixture.

    During training ``h`` is the step's mixture (``state.mixture``); during evaluation of a
    domain it is that domain's one-hot histogram, so validation losses are the specialists'.

    Parameters
    ----------
    model : SoupOfExperts (or its DDP wrapper)
    x, y : LongTensor, shape (batch, seq_len)
    state : TrainState

    Returns
    -------
    loss : Tensor, shape ()
    """
    soup = model.module if hasattr(model, "module") else model
    if state is None or getattr(state, "mixture", None) is None and not (
            getattr(state, "mode", None) == "eval" and getattr(state, "eval_domain", None)):
        raise ValueError("soup_loss needs the trainer's state (state.mixture, the histogram h "
                         "of the step): use it as the loss_fn of train / train_soup, or call "
                         "model(x, h) directly")
    if getattr(state, "mode", None) == "eval" and state.eval_domain:
        h = np.zeros(soup.n_domains)
        h[state.corpus.domain_index(state.eval_domain)] = 1.0
    else:
        h = state.mixture
    p = next(soup.router.parameters())
    h = torch.as_tensor(np.asarray(h, dtype=np.float64), dtype=p.dtype, device=p.device)
    logits = model(x, h)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))


def train_soup(soup, corpus, steps, *, sampler=None, **train_kwargs):
    """Train a :class:`SoupOfExperts` with the workbench trainer.

    Every step draws a histogram ``h`` from ``sampler``, a batch from the corpus mixture ``h``,
    and takes a gradient step on the loss of the soup instantiated at ``h`` (shared
    parameters, experts and router together). Validation losses in the returned history are
    those of each domain's one-hot specialist. Checkpoint/resume and torchrun work as in
    :func:`sciml_toolbox.nn.lm.train` (every rank draws the same ``h``).

    Parameters
    ----------
    soup : SoupOfExperts
    corpus : DomainCorpus
        Its number of domains must equal ``soup.n_domains``.
    steps : int
    sampler : DomainHistogramSampler, optional
        Default: support of 2 domains, uniform weights on it.
    **train_kwargs
        Passed to :func:`sciml_toolbox.nn.lm.train` (``lr``, ``batch_size``, ``optimizer``,
        ``eval_every``, ``checkpoint_path``, ...).

    Returns
    -------
    history : TrainHistory
    """
    from ._soup import SoupOfExperts

    if not isinstance(soup, SoupOfExperts):
        raise TypeError(f"soup must be a SoupOfExperts, got {type(soup).__name__}")
    if not hasattr(corpus, "n_domains"):
        raise TypeError(f"corpus must be a DomainCorpus, got {type(corpus).__name__}")
    if sampler is not None and not isinstance(sampler, DomainHistogramSampler):
        raise TypeError(f"sampler must be a DomainHistogramSampler or None, got "
                        f"{type(sampler).__name__}")
    if corpus.n_domains != soup.n_domains:
        raise ValueError(f"corpus has {corpus.n_domains} domains but the soup expects "
                         f"n_domains={soup.n_domains}")
    if sampler is None:
        sampler = DomainHistogramSampler(soup.n_domains)
    elif sampler.n_domains != soup.n_domains:
        raise ValueError(f"sampler has n_domains={sampler.n_domains}, the soup "
                         f"{soup.n_domains}")
    for key in ("mixture", "loss_fn"):
        if key in train_kwargs:
            raise TypeError(f"train_soup sets {key} itself; do not pass it")
    return train(soup, corpus, _SoupMixture(sampler), steps, loss_fn=soup_loss, **train_kwargs)
