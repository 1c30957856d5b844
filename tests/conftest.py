"""Shared fixtures: every array-API test runs on numpy, array_api_strict and torch (CPU)."""

import os

# Triton kernels must see this before they are defined; harmless when triton is absent.
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import importlib

import numpy as np
import pytest

# One BLAS / OpenMP thread per test process: with xdist workers (or other jobs) on a small
# machine, more threads oversubscribe the cores and small products and tiny models slow down by
# one to two orders of magnitude. Tests that need threads set them themselves.
from threadpoolctl import threadpool_limits

threadpool_limits(1)
try:
    import torch

    torch.set_num_threads(1)
except ImportError:
    pass

NAMESPACES = ["numpy", "array_api_strict", "torch"]


def _load(name):
    if name == "numpy":
        import array_api_compat.numpy as xp

        return xp
    if name == "torch":
        pytest.importorskip("torch")
        import array_api_compat.torch as xp

        return xp
    return pytest.importorskip(name)


@pytest.fixture(params=NAMESPACES)
def xp(request):
    """An array namespace: numpy (through array_api_compat), array_api_strict or torch-CPU."""
    return _load(request.param)


@pytest.fixture
def np_rng():
    """A seeded NumPy generator."""
    return np.random.default_rng(0)


def cuda_available():
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
