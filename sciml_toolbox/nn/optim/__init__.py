"""torch optimizers: AdEMAMix and landing on the generalized Stiefel manifold."""

from ._ademamix import (
    AdEMAMix,
    SimplifiedAdEMAMix,
    ademamix_alpha_scheduler,
    ademamix_beta3_scheduler,
)
from ._landing import LandingGeneralizedStiefel

__all__: list[str] = [
    "AdEMAMix",
    "SimplifiedAdEMAMix",
    "ademamix_alpha_scheduler",
    "ademamix_beta3_scheduler",
    "LandingGeneralizedStiefel",
]
