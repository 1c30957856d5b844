"""Report which array and deep-learning backends work on this machine."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys

__all__ = [
    "backend_report",
    "machine_description",
    "set_threads",
    "triton_available",
    "triton_installed",
    "triton_interpret",
]


def _version(mod):
    try:
        return importlib.import_module(mod).__version__
    except Exception:  # noqa: BLE001 - absence is the answer
        return None


def triton_interpret():
    """Whether Triton runs its kernels in the interpreter (``TRITON_INTERPRET=1``).

    Triton reads the variable when a kernel is defined: set it before the kernel modules are
    imported. Interpreted kernels run on CPU tensors (slowly, for tests); compiled ones need a
    CUDA device.

    Returns
    -------
    interpret : bool
    """
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_installed():
    """Whether the ``triton`` package imports.

    Returns
    -------
    installed : bool
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_available(device="cuda", *, interpret=None):
    """Whether Triton kernels can run on tensors of ``device``: the one check of the toolbox.

    Parameters
    ----------
    device : str or torch.device, default='cuda'
    interpret : bool, optional
        The mode the kernels were defined in (a kernel module records
        :func:`triton_interpret` when it is imported). Default: the current mode.

    Returns
    -------
    available : bool
        True on a CUDA device when Triton is installed and compiles (not in interpreter mode)
        and CUDA is available; on any other device when Triton is installed and interprets.

    Raises
    ------
    ValueError
        If ``device`` is not a torch device or its name.
    """
    import torch

    try:
        is_cuda = torch.device(device).type == "cuda"
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device or its name, got {device!r}") from exc
    if not triton_installed():
        return False
    interpret = triton_interpret() if interpret is None else bool(interpret)
    if is_cuda:
        return (not interpret) and torch.cuda.is_available()
    return interpret


def _triton_mode():
    """'compiled' when Triton can compile for a CUDA device, 'interpreted' when it imports and
    TRITON_INTERPRET=1 can run kernels on the CPU, None when it is not installed."""
    ver = _version("triton")
    if ver is None:
        return None, None
    try:
        if triton_available("cuda"):
            return ver, "compiled"
    except Exception:  # noqa: BLE001 - torch missing or broken: not compiled
        pass
    return ver, "interpreted"


def _torch_info():
    try:
        import torch
    except Exception:  # noqa: BLE001
        return None, False, None
    cuda = bool(torch.cuda.is_available())
    name = torch.cuda.get_device_name(0) if cuda else None
    return torch.__version__, cuda, name


def _cupy_works():
    try:
        import cupy

        cupy.arange(3).sum().item()
        return cupy.__version__
    except Exception:  # noqa: BLE001
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description():
    """A dict describing this machine, for benchmark JSON files.

    Returns
    -------
    info : dict
        CPU model, core count, memory, OS, Python, and library versions; GPU name when present.
    """
    import numpy
    import scipy

    torch_ver, cuda, gpu = _torch_info()
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024**2
    except (OSError, ValueError, IndexError):
        pass
    info = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "sklearn": _version("sklearn"),
        "torch": torch_ver,
        "triton": _version("triton"),
        "cuda": cuda,
        "gpu": gpu,
    }
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        info["commit"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def backend_report():
    """Which backends are installed and usable here.

    Returns
    -------
    rows : list of (str, str, str)
        (backend, version or '-', status) rows: status is 'ok', 'missing', a device name, or the
        Triton mode ('compiled' or 'interpreted').
    """
    import numpy

    import sciml_toolbox

    rows = [("sciml-toolbox", sciml_toolbox.__version__, "ok")]
    rows.append(("numpy", numpy.__version__, "ok"))
    for mod in ("scipy", "sklearn", "array_api_compat", "array_api_strict"):
        v = _version(mod)
        rows.append((mod, v or "-", "ok" if v else "missing"))
    torch_ver, cuda, gpu = _torch_info()
    rows.append(("torch", torch_ver or "-", "cpu" if torch_ver else "missing"))
    rows.append(("cuda", "-", gpu if cuda else "not available"))
    cupy_ver = _cupy_works()
    rows.append(("cupy", cupy_ver or "-", "ok" if cupy_ver else "not available"))
    tver, mode = _triton_mode()
    rows.append(("triton", tver or "-", mode or "missing"))
    for mod in ("mne", "diffusers", "transformers", "faiss"):
        v = _version(mod)
        rows.append((mod, v or "-", "ok" if v else "missing"))
    return rows


#: Environment variables read by the BLAS and OpenMP runtimes when they start.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def set_threads(n=1):
    """Use ``n`` CPU threads for BLAS, OpenMP and torch, in this process and its children.

    The demos, the gallery examples and the documentation build call ``set_threads(1)``: their
    models are small, and on a shared or small machine extra threads cost more in
    synchronisation than they give (and make timings noisy). The benchmarks call it through
    ``benchmarks/_common.py`` with their ``--threads`` flag (default 1). Call it at the top of a
    script, before the heavy work starts.

    What it sets: the thread pools of the BLAS / OpenMP libraries already loaded (through
    ``threadpoolctl``), ``torch.set_num_threads(n)`` when torch is imported, and the
    ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` environment variables,
    so that libraries loaded later (torch included) and subprocesses start with ``n`` threads.

    Parameters
    ----------
    n : int, default=1
        Number of threads, at least 1.

    Examples
    --------
    >>> from sciml_toolbox.utils import set_threads
    >>> set_threads(1)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int (number of threads), got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1 (number of threads), got {n}")
    for var in _THREAD_ENV:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # applies now and stays (no context manager)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
