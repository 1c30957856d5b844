"""Process-wide settings shared by the demos, examples and benchmarks.

:func:`set_threads` is the one place where a script chooses how many CPU threads BLAS, OpenMP
and torch use.
"""

from ._backends import set_threads

__all__ = ["set_threads"]
