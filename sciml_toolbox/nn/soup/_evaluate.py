"""The specialist loss of a model on domain mixtures, the evaluation of Soup-of-Experts."""

from __future__ import annotations

import numpy as np
from torch import nn

from ..._validation import check_simplex
from ..lm import evaluate
from ._soup import SoupOfExperts

__all__ = ["specialist_losses"]


def specialist_losses(model, corpus, mixtures, *, max_windows=32):
    r"""Specialist loss :math:`\sum_i h_i L_i` of a model for each domain mixture ``h``.

    :math:`L_i` is the validation loss of domain i (:func:`sciml_toolbox.nn.lm.evaluate`). A
    :class:`SoupOfExperts` is instantiated at each ``h`` first (the specialist it gives for
    that mixture, Ablin et al., 2025); any other model is evaluated once and its losses are
    weighted by each ``h`` (a generic model is the same for every mixture). Comparing the two
    on held-out mixtures is the paper's measure of what the soup buys at equal deployed size.

    Parameters
    ----------
    model : SoupOfExperts or torch.nn.Module
    corpus : DomainCorpus
        Its domains, in order, are the coordinates of ``h``.
    mixtures : array-like, shape (n_mixtures, n_domains)
        Each row on the simplex.
    max_windows : int, default=32
        Validation windows per domain.

    Returns
    -------
    losses : ndarray, shape (n_mixtures,)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a SoupOfExperts or a torch.nn.Module, got "
                        f"{type(model).__name__}")
    H = np.asarray(mixtures, dtype=float)
    n_domains = len(getattr(corpus, "names", ()))
    if H.ndim != 2 or H.shape[1] != n_domains:
        raise ValueError(f"mixtures must have shape (n_mixtures, {n_domains}) (one weight per "
                         f"domain of corpus), got {H.shape}")
    for j, h in enumerate(H):
        check_simplex(h, f"mixtures[{j}]")
    if isinstance(model, SoupOfExperts):
        return np.array([h @ np.array(list(evaluate(model.instantiate(h), corpus,
                                                    max_windows=max_windows).values()))
                         for h in H])
    losses = np.array(list(evaluate(model, corpus, max_windows=max_windows).values()))
    return np.array([h @ losses for h in H])
