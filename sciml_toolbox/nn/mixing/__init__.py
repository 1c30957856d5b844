"""Online data mixing: Dynamic Gradient Alignment and its baselines.

Mixing methods are passed as the ``mixture`` of :func:`sciml_toolbox.nn.lm.train` (Fan,
Grangier, Ablin, 2024, "Dynamic Gradient Alignment for Online Data Mixing").
"""

from ._dga import (
    DGA,
    DoGE,
    ImportanceSampling,
    MixingMethod,
    UniformMixture,
    exponentiated_gradient_step,
)

__all__ = [
    "DGA",
    "DoGE",
    "ImportanceSampling",
    "UniformMixture",
    "MixingMethod",
    "exponentiated_gradient_step",
]
