"""Probes of the top-level ``sciml_toolbox`` package: its ``__all__`` (the version and the lazily
imported subpackages) and unknown attributes."""

import importlib

import pytest

import sciml_toolbox

PROBED = {"sciml_toolbox": {"__version__", "multiview", "stiefel", "bilevel", "dynamics",
                            "scaling", "nn", "datasets", "array_api"}}


def test_version_is_a_pep440_string():
    from packaging.version import Version

    assert isinstance(sciml_toolbox.__version__, str)
    Version(sciml_toolbox.__version__)  # raises InvalidVersion otherwise


@pytest.mark.parametrize("name", sorted(PROBED["sciml_toolbox"] - {"__version__"}))
def test_subpackages_resolve_lazily(name):
    if name == "nn":
        pytest.importorskip("torch")
    module = getattr(sciml_toolbox, name)
    assert module is importlib.import_module(f"sciml_toolbox.{name}")
    assert isinstance(module.__all__, (list, tuple))
    for public in module.__all__:  # every listed name exists
        assert hasattr(module, public), f"sciml_toolbox.{name}.{public} is in __all__ only"


def test_unknown_attribute_is_a_clear_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_subpackage'"):
        sciml_toolbox.not_a_subpackage  # noqa: B018
    assert sorted(dir(sciml_toolbox)) == sorted(sciml_toolbox.__all__)

