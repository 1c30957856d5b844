"""Library layout (DESIGN.md): method packages hold methods only, and the tour sits on top."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sciml_toolbox"
METHOD_PACKAGES = ("multiview", "stiefel", "bilevel", "dynamics", "scaling", "datasets", "nn")


def _modules_after(code):
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(sorted(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))


def test_optim_does_not_import_lm():
    pytest.importorskip("torch")
    mods = _modules_after("import sciml_toolbox.nn.optim")
    assert "sciml_toolbox.nn.optim" in mods
    assert "sciml_toolbox.nn.lm" not in mods


def test_method_packages_do_not_import_the_tour():
    pytest.importorskip("torch")
    code = "; ".join(f"import sciml_toolbox.{p}" for p in METHOD_PACKAGES)
    code += "; import sciml_toolbox.nn.optim, sciml_toolbox.nn.attention, sciml_toolbox.nn.lm"
    code += "; import sciml_toolbox.nn.mixing, sciml_toolbox.nn.soup, sciml_toolbox.nn.diffusion"
    mods = _modules_after(code)
    assert "sciml_toolbox.nn.diffusion" in mods
    assert not any(m.startswith("sciml_toolbox.tour") for m in mods)


def _imports(path):
    """(module, names) of every ``import`` / ``from ... import`` in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def test_no_experiments_inside_method_packages():
    for pkg in METHOD_PACKAGES:
        for path in (PACKAGE / pkg).rglob("*.py"):
            assert path.stem not in ("_demo", "_study"), path
            src = path.read_text()
            assert "sciml_toolbox.tour" not in src and "register_demo" not in src, path


def test_only_cli_imports_the_tour():
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "tour" or path.name == "cli.py":
            continue
        for mod, _ in _imports(path):
            assert not mod.startswith("sciml_toolbox.tour"), path


@pytest.mark.parametrize("path", sorted((ROOT / "examples").rglob("*.py")), ids=lambda p: p.name)
def test_examples_use_public_names_only(path):
    for mod, names in _imports(path):
        if not mod.startswith("sciml_toolbox"):
            continue
        private = [p for p in mod.split(".") + names if p.startswith("_")]
        assert not private, f"{path.name} imports private {mod} {names}"
        assert not mod.startswith("sciml_toolbox.tour"), f"{path.name} imports the tour"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").rglob("*.py")), ids=lambda p: p.name)
def test_examples_set_their_threads(path):
    names = {n for mod, ns in _imports(path) if mod == "sciml_toolbox.utils" for n in ns}
    assert "set_threads" in names and "set_threads(1)" in path.read_text(), path.name


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("bench_*.py")),
                         ids=lambda p: p.name)
def test_benchmarks_parse_arguments_through_common(path):
    """One parser (``_common.parse_args``: --full, --out, --threads) sets every benchmark's
    threads; a script adds only its own flags."""
    src = path.read_text()
    assert "ArgumentParser(" not in src, path.name
    assert "parse_args(__doc__" in src, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("bench_*.py")),
                         ids=lambda p: p.name)
def test_benchmark_help_shows_the_common_flags(path):
    out = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "--threads" in out.stdout and "--full" in out.stdout
