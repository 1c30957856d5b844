"""The console script: info, demo (table, index.html, failure isolation) and bench."""

import subprocess
import sys

import pytest

from sciml_toolbox import _demos, cli


def test_info_reports_backends(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("numpy", "torch", "cuda", "cupy", "triton", "mne"):
        assert f"\n{name} " in out
    pytest.importorskip("triton")
    assert "interpreted" in out or "compiled" in out


def test_demo_backends_writes_index(tmp_path, capsys):
    assert cli.main(["demo", "--only", "backends", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "backends" in out and "1 ok, 0 failed" in out
    html = (tmp_path / "index.html").read_text()
    assert "backends.png" in html
    assert (tmp_path / "backends.png").stat().st_size > 1000


def test_failing_demo_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    registry = dict(_demos._REGISTRY)

    def boom(out_dir, device):
        raise RuntimeError("deliberate failure")

    def fine(out_dir, device):
        return {"answer": 42.0}

    monkeypatch.setattr(_demos, "_REGISTRY", registry)
    _demos.register_demo("zz_boom", "fails")(boom)
    _demos.register_demo("zz_fine", "works")(fine)
    code = cli.main(["demo", "--only", "zz_boom", "zz_fine", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "zz_boom" in out and "FAILED" in out and "deliberate failure" in out
    assert "answer=42" in out
    assert "1 ok, 1 failed" in out
    assert "deliberate failure" in (tmp_path / "index.html").read_text()


def test_demo_unknown_name(tmp_path, capsys):
    assert cli.main(["demo", "--only", "no_such_demo", "--out", str(tmp_path)]) == 2
    assert "unknown demo" in capsys.readouterr().err


def test_duplicate_demo_name_rejected(monkeypatch):
    monkeypatch.setattr(_demos, "_REGISTRY", {})
    _demos.register_demo("x", "one")(lambda o, d: {})
    with pytest.raises(ValueError, match="already registered"):
        _demos.register_demo("x", "two")(lambda o, d: {})


def test_bench_unknown_name(capsys):
    assert cli.main(["bench", "no_such_benchmark"]) == 2
    assert "no benchmarks/bench_no_such_benchmark.py" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "sciml_toolbox.cli", "info"],
                         capture_output=True, text=True, check=True)
    assert "sciml-toolbox" in out.stdout


def test_import_is_lazy():
    code = "import sys, sciml_toolbox; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    import sciml_toolbox

    with pytest.raises(AttributeError):
        sciml_toolbox.no_such_subpackage  # noqa: B018
