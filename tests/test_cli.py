"""The console script: info, demo (table, index.html, failure isolation) and bench."""

import subprocess
import sys

import pytest

from sciml_toolbox import cli
from sciml_toolbox.tour import _registry as _demos


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
    # register the real demos first: modules imported while the registry is patched would not
    # register again in the real one afterwards (tests after this one would see no demo)
    _demos.get_demos()
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
    out = tmp_path / "not_yet"
    assert cli.main(["demo", "--only", "no_such_demo", "--out", str(out)]) == 2
    assert "unknown demo" in capsys.readouterr().err
    assert not out.exists()  # rejected before anything is created


def test_demo_unwritable_out_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    # a folder cannot be created below a regular file, whatever the user's permissions
    code = cli.main(["demo", "--only", "backends", "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write to --out" in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


def test_demo_cuda_without_cuda_fails_up_front(tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert cli.main(["demo", "--only", "attention", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no CUDA device" in err
    assert not out.exists()


def test_duplicate_demo_name_rejected(monkeypatch):
    _demos.get_demos()  # see test_failing_demo_does_not_stop_the_others
    monkeypatch.setattr(_demos, "_REGISTRY", {})
    _demos.register_demo("x", "one")(lambda o, d: {})
    with pytest.raises(ValueError, match="already registered"):
        _demos.register_demo("x", "two")(lambda o, d: {})


def test_bench_unknown_name(capsys):
    assert cli.main(["bench", "no_such_benchmark"]) == 2
    err = capsys.readouterr().err
    assert "no benchmarks/bench_no_such_benchmark.py" in err and "bilevel" in err


def test_bench_outside_a_checkout_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    installed = tmp_path / "site-packages" / "sciml_toolbox" / "cli.py"
    monkeypatch.setattr(cli, "__file__", str(installed))
    assert cli.main(["bench", "bilevel"]) == 2
    err = capsys.readouterr().err
    assert "source checkout" in err and "Traceback" not in err


def test_bench_script_finds_its_helpers(tmp_path, capsys, monkeypatch):
    """The scripts import ``_common`` from their folder; run one through the CLI from elsewhere
    (a copy of the benchmarks folder with a tiny script, so the test stays fast)."""
    import shutil

    bench = tmp_path / "checkout" / "benchmarks"
    bench.mkdir(parents=True)
    shutil.copy(cli._find_benchmarks() / "_common.py", bench / "_common.py")
    (bench / "bench_tiny.py").write_text(
        "from _common import parse_args, write_result\n"
        "args = parse_args('tiny')\n"
        "write_result('tiny', {'x': 1.0}, mode='full' if args.full else 'quick', out=args.out)\n"
    )
    monkeypatch.chdir(tmp_path / "checkout")
    assert cli.main(["bench", "tiny"]) == 0
    assert (bench / "results" / "tiny.json").is_file()


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


@pytest.mark.parametrize("command", [["demo", "--only", "backends"], ["bench", "bilevel"]])
def test_bad_thread_count_is_refused_up_front(command, tmp_path, capsys):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command[0] == "demo" else []
    assert cli.main([*command, "--threads", "0", *extra]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert not out.exists()
