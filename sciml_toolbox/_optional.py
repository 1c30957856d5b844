"""Imports of optional dependencies that fail with the extra to install.

The optional libraries (``mne`` for the ``meg`` extra, ``transformers`` for ``hf``, ``faiss``
for ``faiss``; ``torch`` is checked once by :mod:`sciml_toolbox.nn`) are imported where they
are used, through :func:`import_optional`, so that a missing one gives a
``ModuleNotFoundError`` whose message says ``pip install 'sciml-toolbox[<extra>]'``.
"""

from __future__ import annotations

import importlib

__all__ = ["import_optional"]


def import_optional(module, extra, *, feature=None, package=None):
    """Import and return ``module``, or raise ``ModuleNotFoundError`` naming the extra.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``'mne'`` or ``'transformers.masking_utils'``.
    extra : str
        The sciml-toolbox extra that installs it (``'meg'``, ``'hf'``, ``'faiss'``, ...).
    feature : str, optional
        What needs it, for the message (default: ``'this feature'``).
    package : str, optional
        Distribution name, when it differs from the module's (``'faiss-cpu'``, ``'mne-bids'``).

    Returns
    -------
    module : module

    Raises
    ------
    ModuleNotFoundError
        When the import fails (the library is missing, too old, or broken); a subclass of
        ``ImportError``, raised from the original error. Its ``name`` is the top-level module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ModuleNotFoundError(
            f"{feature or 'this feature'} needs the optional dependency {package or top}, "
            f"which could not be imported ({exc}): pip install 'sciml-toolbox[{extra}]'",
            name=top) from exc
