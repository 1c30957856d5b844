"""Soup-of-Experts: specialist models instantiated by averaging parameters.

A soup holds shared parameters, a bank of experts of the same shapes and a router from domain
weights to expert coefficients (Ablin, Katharopoulos, Seto, Grangier, ICML 2025).
"""

from ._evaluate import specialist_losses
from ._soup import SoupOfExperts, load_model, save_model
from ._specialize import DomainClassifier, estimate_histogram, specialize
from ._training import DomainHistogramSampler, soup_loss, train_soup

__all__ = [
    "SoupOfExperts",
    "DomainHistogramSampler",
    "train_soup",
    "soup_loss",
    "DomainClassifier",
    "estimate_histogram",
    "specialize",
    "save_model",
    "load_model",
    "specialist_losses",
]
