"""Every public name of every subpackage is covered by a bad-input probe (issue 17).

Each ``tests/probes/test_probe_*.py`` module declares ``PROBED = {module_path: {names}}``; this
test unions them and lists every name of a subpackage's ``__all__`` that no probe covers.
"""

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import sciml_toolbox

HERE = Path(__file__).resolve().parent
SKIPPED_PACKAGES = ("sciml_toolbox.tour",)  # the demo tour: no public API of its own


def _torch_available():
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def _load_probe_modules():
    mods = {}
    for path in sorted(HERE.glob("test_probe_*.py")):
        if path.name == Path(__file__).name:
            continue
        # under this test's package, so that the probes' relative imports (_probe_utils) work
        name = f"{__package__}.{path.stem}" if __package__ else path.stem
        if name in sys.modules:
            mods[path.name] = sys.modules[name]
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:  # e.g. a torch probe without torch: it covers nothing
            if "torch" in str(exc) and not _torch_available():
                continue
            raise
        mods[path.name] = module
    return mods


def _public_packages():
    """``{module_path: set(__all__)}`` for sciml_toolbox and its public subpackages and modules."""
    with_torch = _torch_available()
    found = {"sciml_toolbox": set(sciml_toolbox.__all__)}
    for info in pkgutil.walk_packages(sciml_toolbox.__path__, "sciml_toolbox.",
                                      onerror=lambda name: None):
        name = info.name
        if any(part.startswith("_") for part in name.split(".")):
            continue  # private modules; public modules (array_api, cli, utils) count too
        if name.startswith(SKIPPED_PACKAGES) or (
                name.startswith("sciml_toolbox.nn") and not with_torch):
            continue
        module = importlib.import_module(name)
        if hasattr(module, "__all__"):
            found[name] = set(module.__all__)
    return found


def test_every_probe_module_declares_probed():
    mods = _load_probe_modules()
    assert mods, "no probe modules found"
    bad = [n for n, m in mods.items() if not isinstance(getattr(m, "PROBED", None), dict)]
    assert not bad, f"probe modules without a PROBED dict: {bad}"


def test_probed_names_exist():
    # a probe must not claim a name the package does not export (typos would hide gaps)
    public = _public_packages()
    wrong = []
    for fname, module in _load_probe_modules().items():
        for pkg, names in module.PROBED.items():
            if pkg.startswith("sciml_toolbox.nn") and not _torch_available():
                continue
            if pkg not in public:
                wrong.append(f"{fname}: {pkg} is not a public package with __all__")
                continue
            for n in sorted(set(names) - public[pkg]):
                wrong.append(f"{fname}: {pkg}.{n} is not in __all__")
    assert not wrong, "\n".join(wrong)


def test_every_public_name_is_probed():
    probed = {}
    for module in _load_probe_modules().values():
        for pkg, names in module.PROBED.items():
            probed.setdefault(pkg, set()).update(names)
    missing = []
    for pkg, names in sorted(_public_packages().items()):
        for n in sorted(names - probed.get(pkg, set())):
            missing.append(f"{pkg}.{n}")
    if missing:
        pytest.fail(f"{len(missing)} public name(s) not covered by any tests/probes/"
                    f"test_probe_*.py PROBED dict:\n  " + "\n  ".join(missing))
