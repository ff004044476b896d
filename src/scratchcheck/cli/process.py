"""Process-wide settings the command makes for itself: the library never changes them for a program
that imports it, but the command owns its process.

- **Freed memory is kept in the heap.** glibc's malloc maps each block of more than 128 KiB on its
  own (or, once it has raised that bound, trims the heap's free top) and gives it back when it is
  freed, so each numpy temporary of a few hundred KiB (a sample's difference, its squares) is
  page-faulted in again by the next one. On a comparison's many small tensors that costs more than
  the arithmetic: a kurtosis of 110,592 values takes 2.4 ms that way and 0.25 ms with the pages kept
  (a ``--fast`` SmolLM2 comparison, 2.5 s against 2.0 s). Elsewhere than glibc nothing changes.
- **One BLAS thread for ``--fast``.** A sample's matrices have a few hundred rows: a second OpenBLAS
  thread saves nothing on them, and on a machine with other work it spins waiting for a core (the
  same comparison took 5.2-5.5 s with two threads and 2.5-2.9 s with one, in the same minutes, at a
  load average of 2 on 2 cores). It has to be set before numpy loads, which the lazy imports allow.
- **No teardown.** Once a command has finished and its output is flushed, the process ends without
  the interpreter freeing every module and object one by one (0.05-0.1 s of a 0.4 s command):
  every file was written and closed inside the command. Not where a library that shuts down in an
  exit hook is loaded (Ray's local cluster), nor when a stream cannot be flushed (a closed pipe):
  then the ordinary exit runs.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
TRIM_THRESHOLD = 64 << 20  # bytes of free heap kept
MMAP_THRESHOLD = 32 << 20  # larger blocks are mapped, and unmapped when freed, as before
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks in the heap; True where it took both settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.restype = ctypes.c_int
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def one_blas_thread() -> None:
    """One BLAS thread from here on, unless the user chose a number (any of ``BLAS_THREADS`` set);
    no effect once numpy is loaded."""
    if not any(name in os.environ for name in BLAS_THREADS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def end_now() -> None:
    """End the process with status 0 here, skipping the interpreter's teardown (see above)."""
    if "ray" in sys.modules:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(0)
