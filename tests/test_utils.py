"""sciml_toolbox.utils.set_threads: torch, BLAS and the environment of child processes."""

import ast
import subprocess
import sys

import pytest

from sciml_toolbox.utils import set_threads

CHECK = """
import os, sys
from threadpoolctl import threadpool_info
from sciml_toolbox.utils import set_threads
set_threads({n})
import numpy as np  # BLAS is loaded by now
import torch        # imported after the call: started with n threads
blas = {{p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}}
print(torch.get_num_threads(), sorted(blas), os.environ["OMP_NUM_THREADS"])
"""


@pytest.mark.parametrize("n", [1, 2])
def test_set_threads_limits_torch_blas_and_children(n):
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", CHECK.format(n=n)], capture_output=True,
                         text=True, check=True)
    torch_threads, blas, env = out.stdout.split(maxsplit=2)
    assert int(torch_threads) == n
    assert ast.literal_eval(blas) in ([n], [])
    assert env.strip() == str(n)


def test_set_threads_after_torch_import():
    torch = pytest.importorskip("torch")
    code = ("import torch; torch.set_num_threads(2); from sciml_toolbox.utils import "
            "set_threads; set_threads(1); print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"
    assert torch.get_num_threads() >= 1  # this process is untouched


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                      ("2", TypeError), (True, TypeError)])
def test_set_threads_rejects_bad_counts(bad, exc):
    with pytest.raises(exc, match="n must"):
        set_threads(bad)
