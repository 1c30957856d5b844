"""Keep torch and BLAS single-threaded in this area's tests.

On a loaded shared machine the intra-op thread pools oversubscribe the cores and small
products become up to 100x slower."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _blas_one_thread():
    """Same for OpenBLAS: single-threaded BLAS keeps small products fast on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
