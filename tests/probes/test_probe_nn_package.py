"""Probes of sciml_toolbox.nn itself: its subpackages load, and without an optional library
the import error names the extra to install."""

import importlib
import subprocess
import sys
import textwrap

import pytest

import sciml_toolbox.nn as nn_pkg

PROBED = {"sciml_toolbox.nn": {"optim", "attention", "lm", "mixing", "soup", "diffusion"},
          "sciml_toolbox": {"nn"}}


def test_top_level_nn_attribute():
    import sciml_toolbox

    assert sciml_toolbox.nn is nn_pkg


@pytest.mark.parametrize("sub", sorted(PROBED["sciml_toolbox.nn"]))
def test_subpackage_loads_and_exports_its_all(sub):
    mod = getattr(nn_pkg, sub)
    assert mod is importlib.import_module(f"sciml_toolbox.nn.{sub}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{sub}.__all__ lists {name!r}, which is missing"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no_such_thing"):
        nn_pkg.no_such_thing  # noqa: B018


def _run_blocked(blocked, code):
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails."""
    prelude = f"import sys\nsys.modules[{blocked!r}] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["sciml_toolbox.nn.optim", "sciml_toolbox.nn.lm",
                                    "sciml_toolbox.nn.diffusion"])
def test_without_torch_the_error_names_the_extra(module):
    res = _run_blocked("torch", f"""
        try:
            import {module}
        except ModuleNotFoundError as exc:
            print("ERR", exc.name, exc)
        """)
    assert "ERR torch" in res.stdout, res.stdout + res.stderr
    assert "pip install 'sciml-toolbox[torch]'" in res.stdout


def test_without_transformers_register_hf_attention_names_the_extra(monkeypatch):
    from sciml_toolbox.nn.attention import register_hf_attention

    # the import happens inside the call: blocking it in this process is enough
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"sciml-toolbox\[hf\]"):
        register_hf_attention()
