"""Keep torch single-threaded in this area's tests: on a loaded shared machine torch's intra-op
thread pool oversubscribes the cores and small products become 100x slower."""

import pytest


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
