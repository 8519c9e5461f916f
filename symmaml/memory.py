"""Keeping freed memory in the process, for simulators that allocate megabyte-sized arrays per run.

glibc's ``malloc`` serves an allocation above its (adaptive) mmap threshold with a fresh ``mmap`` and
hands the top of the heap back to the system once more than its trim threshold is free.  A Monte Carlo
run of the kernel-limit simulator (:mod:`symmaml.nonlinear.ntk_sim`) allocates and frees a few
megabytes of NumPy temporaries, so each run would page the same memory back in: on the 2-core
virtual machine of the README's benchmarks that costs about a third of the run time, and page faults
serialise the threads of a simulation (they take the process's memory-map lock).

:func:`keep_freed_memory` raises both thresholds with ``mallopt`` (mmap above 32 MiB only, trim above
256 MiB): freed memory stays in the process and is reused.  It is process-wide and permanent (the
process keeps its peak heap, tens of megabytes for the simulators here), done once, on glibc only,
and does nothing when ``SYMMAML_MALLOPT=0`` or elsewhere.  Results do not depend on it.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20  # glibc's largest accepted value on 64-bit systems
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>

_state: dict = {}


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (see the module's docstring); ``True`` if done.

    Idempotent; returns ``False`` (and changes nothing) off glibc or with ``SYMMAML_MALLOPT=0``."""
    if "done" in _state:
        return _state["done"]
    done = False
    if os.environ.get("SYMMAML_MALLOPT", "1") != "0" and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None)
            if hasattr(libc, "gnu_get_libc_version"):  # glibc (musl's mallopt does nothing)
                mallopt = libc.mallopt
                mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
                done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):
            done = False
    _state["done"] = done
    return done
