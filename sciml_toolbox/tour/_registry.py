"""Registry of the demos run by ``sciml-toolbox demo`` and ``make demo``.

Each method adds one demo: a function ``demo(out_dir, device) -> dict`` decorated with
:func:`register_demo`, living in its own module of :mod:`sciml_toolbox.tour`. A demo runs in
under a minute on a laptop CPU, saves one PNG into ``out_dir`` and returns a dict of headline
numbers (str -> float or str). The module names are listed in :data:`DEMO_MODULES`; a module
that does not exist is skipped, one that fails to import is reported as a failed demo.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Demo", "register_demo", "get_demos", "DEMO_MODULES"]

#: Modules that register demos, in the order of the tour.
DEMO_MODULES = (
    "sciml_toolbox.tour.backends",
    "sciml_toolbox.tour.multiview",
    "sciml_toolbox.tour.stiefel",
    "sciml_toolbox.tour.bilevel",
    "sciml_toolbox.tour.dynamics",
    "sciml_toolbox.tour.ademamix",
    "sciml_toolbox.tour.attention",
    "sciml_toolbox.tour.lm",
    "sciml_toolbox.tour.scaling",
    "sciml_toolbox.tour.mixing",
    "sciml_toolbox.tour.soup",
    "sciml_toolbox.tour.spell",
)


@dataclass
class Demo:
    """One registered demo.

    Attributes
    ----------
    name : str
        Short name used by ``--only``.
    title : str
        One-line description shown in the table and in index.html.
    func : callable
        ``func(out_dir: pathlib.Path, device: str) -> dict``.
    import_error : str or None
        Set when the demo's module failed to import.
    """

    name: str
    title: str
    func: Callable | None = None
    import_error: str | None = field(default=None)


_REGISTRY: dict[str, Demo] = {}


def register_demo(name, title):
    """Decorator registering ``func(out_dir, device) -> dict`` as the demo ``name``.

    Parameters
    ----------
    name : str
        Short, unique name (used by ``sciml-toolbox demo --only NAME``).
    title : str
        One-line description.
    """

    def deco(func):
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"a demo named {name!r} is already registered")
        _REGISTRY[name] = Demo(name=name, title=title, func=func)
        return func

    return deco


def get_demos():
    """Import every module of :data:`DEMO_MODULES` and return the registered demos.

    Returns
    -------
    demos : list of Demo
        In registration order; modules that failed to import appear with ``import_error`` set.
    """
    for mod in DEMO_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            # the method has not landed (or its subpackage is absent): nothing to show
            if exc.name is not None and mod.startswith(exc.name):
                continue
            _REGISTRY.setdefault(mod, Demo(mod, mod, import_error=f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # noqa: BLE001 - reported in the table, never fatal
            _REGISTRY.setdefault(mod, Demo(mod, mod, import_error=f"{type(exc).__name__}: {exc}"))
    return list(_REGISTRY.values())
