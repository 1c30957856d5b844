"""Deep-learning pieces of the toolbox (everything that imports torch lives below here).

Subpackages: ``optim`` (AdEMAMix, landing optimizer), ``attention`` (sigmoid attention),
``lm`` (small-LM workbench), ``mixing`` (DGA), ``soup`` (Soup-of-Experts), ``diffusion`` (SPELL).
They are imported lazily.
"""

import importlib

try:
    import torch  # noqa: F401  (every subpackage needs it: fail here, with the fix)
except ModuleNotFoundError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ModuleNotFoundError(
        "sciml_toolbox.nn needs PyTorch, which is not installed: "
        "pip install 'sciml-toolbox[torch]'", name="torch") from exc

_SUBPACKAGES = ("optim", "attention", "lm", "mixing", "soup", "diffusion")

__all__ = list(_SUBPACKAGES)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
