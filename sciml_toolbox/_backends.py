"""Report which array and deep-learning backends work on this machine."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys

__all__ = ["backend_report", "machine_description"]


def _version(mod):
    try:
        return importlib.import_module(mod).__version__
    except Exception:  # noqa: BLE001 - absence is the answer
        return None


def _triton_mode():
    """'compiled' when Triton can compile for a CUDA device, 'interpreted' when it imports and
    TRITON_INTERPRET=1 can run kernels on the CPU, None when it is not installed."""
    ver = _version("triton")
    if ver is None:
        return None, None
    try:
        import torch

        if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") != "1":
            return ver, "compiled"
    except Exception:  # noqa: BLE001
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
