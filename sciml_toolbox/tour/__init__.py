"""The tour run by ``sciml-toolbox demo``: one module per method, the registry and the report.

This package is the top floor of the library: it imports the method packages through their
public names, and nothing in the library imports it except :mod:`sciml_toolbox.cli`. Each
module registers one demo with :func:`register_demo`; :func:`run_tour` runs the demos, writes
``index.html`` next to their figures and returns one record per demo.
"""

from ._registry import DEMO_MODULES, Demo, get_demos, register_demo
from ._report import run_tour

__all__ = ["DEMO_MODULES", "Demo", "get_demos", "register_demo", "run_tour"]
