"""sciml-toolbox: recent machine-learning research methods, numpy/scipy style, with GPU backends.

Subpackages
-----------
multiview
    MVICA, MVICAD, MVICAD2: multi-subject ICA with delays and dilations.
stiefel
    Landing on the (random) generalized Stiefel manifold: stochastic CCA, ICA, GEVP.
bilevel
    Hypergradients by the implicit function theorem, preconditioned or reparameterized.
dynamics
    Transformer PDE: attention particle systems and the Gaussian-measure ODE.
scaling
    Scaling-law estimators and robust fitting.
nn
    Everything that needs torch: optimizers, attention, small LMs, data mixing, diffusion.
datasets
    Simulated and shipped data.
array_api
    The array-API helpers every method is written with (namespaces, devices, random numbers,
    linear algebra and FFTs on NumPy, CuPy and torch).

Subpackages are imported lazily: ``import sciml_toolbox`` stays cheap and never imports torch.
"""

import importlib

__version__ = "0.1.0.dev0"

_SUBPACKAGES = ("multiview", "stiefel", "bilevel", "dynamics", "scaling", "nn", "datasets",
                "array_api")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
