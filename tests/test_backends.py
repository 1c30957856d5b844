"""The one Triton availability check (sciml_toolbox._backends) against what the machine has."""

import importlib.util

import pytest

from sciml_toolbox._backends import triton_available, triton_installed, triton_interpret

torch = pytest.importorskip("torch")

HAS_TRITON = importlib.util.find_spec("triton") is not None


def test_triton_installed_and_interpret(monkeypatch):
    assert triton_installed() is HAS_TRITON
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert triton_interpret() is True
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert triton_interpret() is False
    monkeypatch.delenv("TRITON_INTERPRET")
    assert triton_interpret() is False


@pytest.mark.parametrize("interpret", [True, False])
def test_triton_available_by_device_and_mode(interpret):
    cuda = torch.cuda.is_available()
    assert triton_available("cpu", interpret=interpret) is (HAS_TRITON and interpret)
    assert triton_available(torch.device("cpu"), interpret=interpret) is (HAS_TRITON and interpret)
    assert triton_available("cuda", interpret=interpret) is (HAS_TRITON and not interpret and cuda)


def test_triton_available_follows_the_environment(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert triton_available("cpu") is HAS_TRITON
    assert triton_available("cuda") is False
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert triton_available("cpu") is False


def test_attention_uses_the_mode_its_kernels_were_defined_in():
    from sciml_toolbox.nn.attention import triton_available as attention_available

    if not HAS_TRITON:
        assert attention_available("cpu") is False
        return
    from sciml_toolbox.nn.attention import _triton

    assert attention_available("cpu") is _triton.INTERPRET
    assert attention_available("cpu") is triton_available("cpu", interpret=_triton.INTERPRET)


def test_triton_available_bad_device():
    with pytest.raises(ValueError, match="device"):
        triton_available("not-a-device")
