"""Without an optional library, the error names the sciml-toolbox extra to install (issue 17,
finding 11): mne and mne-bids (``meg``), faiss (``faiss``), transformers (``hf``); torch is
tested in tests/probes/test_probe_nn_package.py."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sciml_toolbox._optional import import_optional


def _run_blocked(blocked, code):
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails."""
    prelude = f"import sys\nsys.modules[{blocked!r}] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_import_optional_returns_the_module_or_names_the_extra(monkeypatch):
    assert import_optional("numpy.linalg", "never") is np.linalg
    monkeypatch.setitem(sys.modules, "json", None)
    with pytest.raises(ModuleNotFoundError) as info:
        import_optional("json", "demo", feature="the demo", package="json-dist")
    assert info.value.name == "json"
    msg = str(info.value)
    assert msg.startswith("the demo needs the optional dependency json-dist")
    assert msg.endswith("pip install 'sciml-toolbox[demo]'")
    assert isinstance(info.value.__cause__, ImportError)


def test_without_mne_the_meg_functions_name_the_extra():
    # the packages import without mne; each public entry point that needs it says what to do
    res = _run_blocked("mne", """
        import sciml_toolbox.datasets as ds
        import sciml_toolbox.multiview as mv
        from sciml_toolbox.multiview._mne import data_picks
        calls = {
            "simulate_meg_group_study": lambda: ds.simulate_meg_group_study(),
            "preprocess_meg_raw": lambda: ds.preprocess_meg_raw(None),
            "data_picks": lambda: data_picks(None),
            "sources_to_mne": lambda: mv.sources_to_mne(mv.MVICA()),
            "plot_mixing_topomaps": lambda: mv.plot_mixing_topomaps(mv.MVICA()),
            "get_sources": lambda: mv.MVICA().get_sources([]),
        }
        for name, call in calls.items():
            try:
                call()
            except ModuleNotFoundError as exc:
                print("ERR", name, exc.name, "|", exc)
            else:
                print("PASSED", name)
        """)
    lines = [line for line in res.stdout.splitlines() if line.startswith(("ERR", "PASSED"))]
    assert len(lines) == 6, res.stdout + res.stderr
    for line in lines:
        assert line.startswith("ERR") and " mne |" in line, line
        name = line.split()[1]
        assert f"{name} needs the optional dependency mne" in line, line
        assert line.endswith("pip install 'sciml-toolbox[meg]'"), line


def test_without_mne_bids_load_camcan_names_the_extra(monkeypatch, tmp_path):
    pytest.importorskip("mne")
    from sciml_toolbox.datasets import load_camcan

    monkeypatch.setitem(sys.modules, "mne_bids", None)
    with pytest.raises(ModuleNotFoundError, match=r"mne-bids.*sciml-toolbox\[meg\]") as info:
        load_camcan(tmp_path)
    assert info.value.name == "mne_bids"


def test_without_faiss_the_faiss_index_names_the_extra(monkeypatch):
    pytest.importorskip("torch")
    from sciml_toolbox.nn.diffusion import SparseRepellency

    monkeypatch.setitem(sys.modules, "faiss", None)
    z = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    spell = SparseRepellency(z, radius=1.0, index="faiss")
    with pytest.raises(ImportError, match=r"faiss-cpu.*pip install 'sciml-toolbox\[faiss\]'"):
        spell.correction(z[:2])


@pytest.mark.parametrize("blocked", ["transformers", "transformers.masking_utils"])
def test_without_transformers_register_hf_attention_names_the_extra(monkeypatch, blocked):
    pytest.importorskip("torch")
    from sciml_toolbox.nn.attention import register_hf_attention

    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(ModuleNotFoundError, match=r"^register_hf_attention needs .*transformers"
                       r".*pip install 'sciml-toolbox\[hf\]'$"):
        register_hf_attention("sigmoid_probe_blocked")
