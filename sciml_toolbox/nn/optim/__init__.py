"""torch optimizers: AdEMAMix and landing on the generalized Stiefel manifold."""

__all__: list[str] = []
