"""The element-wise pass over a pair of tensors: every sum the per-pair numbers need, in one read.

Comparing two checkpoints is mostly this pass, so it is built to keep up with reading the files:

- A stretch whose raw bytes are the same on both sides (``memcmp``, before any arithmetic) needs the
  sums of one side only: converted copies and tied tensors cost half.
- Arithmetic runs in float32 (every bf16, fp16 and fp32 value is exact in it; float64 and wide
  integer tensors stay in float64) on rows of ``ROW`` elements, and the row sums are added in
  float64. Each stretch is centred on a shift near its own mean before any product is taken, and
  stretches are merged with Chan et al.'s pairwise update, so Pearson stays exact for tensors with a
  large common offset (norm gains near 1), where ``sum(ab) - n*mean(a)*mean(b)`` loses every digit.
  Error bound: docs/methods.md, "The element-wise pass".
- Tensors are cut into spans measured by a pool of threads (numpy, ``memcmp`` and ``pread`` release
  the GIL), so both cores compute, and one reads while another computes.
- A mapped tensor is read with ``pread`` into a buffer reused chunk after chunk, not faulted in
  page by page: the copy runs at the speed of reading the file and leaves the chunk in the CPU cache.

Peak memory is a few chunks per thread, whatever the tensor size.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ..io.libc import libc_function
from ..io.mapping import drop_pages, locate

CHUNK = 1 << 18  # elements per step: a float32 pair and its scratch (3 MiB) stay in the L3 cache
ROW = 256  # elements per float32 row sum, the B of the error bound
SPAN = 1 << 21  # elements per task handed to a thread
SAMPLE = 1 << 16  # elements kept for rank statistics and the shape of the difference
CENTRED = 0.25  # a chunk whose head has |mean| below this share of its RMS is summed unshifted
_SCRATCH = threading.local()


@dataclass
class Sums:
    """Running sums of one pair of streams (a span of a tensor, or all of it once merged)."""

    n: int = 0
    mean_a: float = 0.0
    mean_b: float = 0.0
    m_aa: float = 0.0  # centred second moments
    m_bb: float = 0.0
    m_ab: float = 0.0
    sum_dd: float = 0.0  # sum((a - b)^2), from the difference itself: no cancellation
    max_diff: float = 0.0
    unequal: int = 0  # NaN != NaN, so NaN pairs count as unequal
    same_bytes: bool = True
    samples_a: list[np.ndarray] = field(default_factory=list)
    samples_b: list[np.ndarray] = field(default_factory=list)

    def merge(self, o: Sums) -> None:
        """Add ``o``'s stream after this one (Chan et al.'s update of means and centred moments)."""
        n, k = self.n, o.n
        total = n + k
        if k == 0:
            return
        dma, dmb = o.mean_a - self.mean_a, o.mean_b - self.mean_b
        w = n * k / total
        self.m_aa += o.m_aa + dma * dma * w
        self.m_bb += o.m_bb + dmb * dmb * w
        self.m_ab += o.m_ab + dma * dmb * w
        self.mean_a += dma * k / total
        self.mean_b += dmb * k / total
        self.n = total
        self.sum_dd += o.sum_dd
        self.max_diff = max(self.max_diff, o.max_diff)
        self.unequal += o.unequal
        self.same_bytes = self.same_bytes and o.same_bytes
        self.samples_a += o.samples_a
        self.samples_b += o.samples_b


def stream_sums(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> Sums:
    """One pass over two same-shape arrays (any numeric dtype; views are read, not copied).

    The sample is evenly strided with a seeded random phase: SAMPLE positions, the same on both sides.
    """
    n = int(a.size)
    work = _work_dtype(a.dtype, b.dtype)
    row = int(np.prod(a.shape[1:], dtype=np.int64)) if a.ndim > 1 else 1
    # A strided view (e.g. a transposed matrix) is read in whole rows of its leading axis.
    chunk = CHUNK if a.flags.c_contiguous and b.flags.c_contiguous else max(1, CHUNK // row) * row
    span = max(1, SPAN // chunk) * chunk
    step = max(1, n // SAMPLE)
    phase = int(np.random.default_rng(seed).integers(step))
    spans = [(start, min(n, start + span)) for start in range(0, n, span)]

    def run(bounds: tuple[int, int]) -> Sums:
        return _span(a, b, *bounds, chunk=chunk, row=row, work=work, step=step, phase=phase)

    total = Sums(same_bytes=a.dtype == b.dtype)
    parts = map(run, spans) if len(spans) < 2 else _pool().map(run, spans)
    for part in parts:
        total.merge(part)
    return total


def _span(
    a: np.ndarray,
    b: np.ndarray,
    start: int,
    stop: int,
    *,
    chunk: int,
    row: int,
    work: type,
    step: int,
    phase: int,
) -> Sums:
    """Sums of elements ``[start, stop)`` of the flattened pair, one chunk at a time."""
    out = Sums()
    compare_bytes = a.dtype == b.dtype
    read_a, read_b = _reader(a, chunk, row), _reader(b, chunk, row)
    scratch = _scratch(work, chunk)
    for lo in range(start, stop, chunk):
        hi = min(stop, lo + chunk)
        raw_a, raw_b = read_a(lo, hi), read_b(lo, hi)
        fa, fb = _as_work(raw_a, scratch[0]), _as_work(raw_b, scratch[1])
        same = compare_bytes and _same_bytes(raw_a, raw_b)
        out.merge(_chunk_sums(fa, fb, same, scratch[2], scratch[3]))
        first = phase + -(-(lo - phase) // step) * step if lo > phase else phase
        # Copies: a view would pin the chunk (and the mapping's pages) in memory.
        out.samples_a.append(np.array(fa[first - lo :: step], dtype=np.float64))
        out.samples_b.append(np.array(fb[first - lo :: step], dtype=np.float64))
        drop_pages(raw_a)
        drop_pages(raw_b)
    return out


def _chunk_sums(fa: np.ndarray, fb: np.ndarray, same: bool, spare_a: np.ndarray, spare_b: np.ndarray) -> Sums:
    """The sums of one chunk; ``spare_a`` and ``spare_b`` are scratch arrays at least as long."""
    k = fa.size
    if same:
        da, shift_a, sum_a = _shifted(fa, spare_a)
        mean_a, m_aa = shift_a + sum_a / k, _dot(da, da) - sum_a * sum_a / k
        unequal = int(np.isnan(fa).sum()) if math.isnan(m_aa) else 0
        return Sums(k, mean_a, mean_a, m_aa, m_aa, m_aa, unequal=unequal)
    diff = np.subtract(fa, fb, out=spare_a[:k])
    sum_dd = _dot(diff, diff)
    np.abs(diff, out=diff)
    largest = float(diff.max())
    # |a - b| is +0.0 (all bits zero) exactly where a == b, and NaN where either is NaN; inf - inf is
    # NaN though inf == inf. Counting non-zero bits is several times faster than non-zero floats.
    if math.isfinite(sum_dd):
        unequal = np.count_nonzero(diff.view(np.uint32 if diff.itemsize == 4 else np.uint64))
    else:
        unequal = np.count_nonzero(fa != fb)
    da, shift_a, sum_a = _shifted(fa, spare_a)
    db, shift_b, sum_b = _shifted(fb, spare_b)
    return Sums(
        k,
        shift_a + sum_a / k,
        shift_b + sum_b / k,
        _dot(da, da) - sum_a * sum_a / k,
        _dot(db, db) - sum_b * sum_b / k,
        _dot(da, db) - sum_a * sum_b / k,
        sum_dd=sum_dd,
        max_diff=largest if largest > 0.0 else 0.0,  # NaN, where a NaN was met, counts as 0
        unequal=int(unequal),
        same_bytes=False,
    )


def _shifted(x: np.ndarray, spare: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``d = x - K`` for a shift ``K`` near the mean of ``x`` (its first ROW values' mean, in ``x``'s
    dtype), ``K`` and ``sum(d)``; ``K = 0`` (``x`` itself) when that mean is within CENTRED of their
    root mean square, as it is for weight matrices. ``d`` is written into ``spare``.

    Centred sums follow without cancellation: ``sum((x - mean)^2) = sum(d^2) - sum(d)^2 / k``, whose
    second term is small when ``K`` is within a few standard deviations of the mean."""
    head = x[:ROW].astype(np.float64)
    mean = float(head.mean())
    if abs(mean) <= CENTRED * math.sqrt(float(head @ head) / head.size):
        return x, 0.0, _dot(x, None)
    shift = x.dtype.type(mean)
    d = np.subtract(x, shift, out=spare[: x.size])
    return d, float(shift), _dot(d, None)


def _scratch(work: type, size: int) -> list[np.ndarray]:
    """Four arrays of ``size`` elements of ``work``, kept by each thread for the next chunk.

    A fresh array per chunk was page-faulted in each time: glibc gives freed blocks of this size
    back to the system (a thread's heap is trimmed), ~120 faults per chunk."""
    key = (np.dtype(work), size)
    if getattr(_SCRATCH, "key", None) != key:
        _SCRATCH.key, _SCRATCH.arrays = key, [np.empty(size, dtype=work) for _ in range(4)]
    return _SCRATCH.arrays


def _as_work(raw: np.ndarray, spare: np.ndarray) -> np.ndarray:
    """``raw`` in the work dtype: itself when it is already, else converted into ``spare``."""
    if raw.dtype == spare.dtype:
        return raw
    out = spare[: raw.size]
    np.copyto(out, raw, casting="unsafe")
    return out


def _dot(x: np.ndarray, y: np.ndarray | None) -> float:
    """``sum(x * y)`` (``sum(x)`` for ``y`` None): summed in ``x``'s dtype over rows of ROW elements,
    the row sums in float64."""
    whole = x.size - x.size % ROW
    rows = x[:whole].reshape(-1, ROW)
    head = np.einsum("ij->i", rows) if y is None else np.einsum("ij,ij->i", rows, y[:whole].reshape(-1, ROW))
    total = float(head.sum(dtype=np.float64))
    if whole < x.size:
        tail = x[whole:].astype(np.float64)
        total += float(tail.sum() if y is None else tail @ y[whole:].astype(np.float64))
    return total


def _reader(x: np.ndarray, chunk: int, row: int):
    """``read(lo, hi)``: elements ``[lo, hi)`` of ``x`` flattened. A contiguous tensor in a mapped
    file is copied with ``pread`` into one buffer reused for every chunk (the copy leaves the chunk in
    the CPU cache for the sums that follow); an array in memory is sliced (a view); a strided view
    (e.g. a transposed matrix) is copied in whole rows of its leading axis."""
    located = locate(x) if x.flags.c_contiguous and x.size > chunk else None
    if located is not None:
        mapped, offset = located
        buffer = np.empty(chunk, dtype=x.dtype)

        def from_file(lo: int, hi: int) -> np.ndarray:
            part = buffer[: hi - lo]
            mapped.read_into(part, offset + lo * x.itemsize)
            return part

        return from_file
    if x.flags.c_contiguous:
        flat = x.reshape(-1)
        return lambda lo, hi: flat[lo:hi]
    return lambda lo, hi: np.ascontiguousarray(x[lo // row : hi // row]).reshape(-1)


def _work_dtype(*dtypes: np.dtype) -> type:
    """float32 where every value is exact in it (floats up to 32 bits, small integers), else float64."""
    for dt in dtypes:
        if dt.itemsize > 4 or (dt.kind in "iu" and dt.itemsize > 2):
            return np.float64
    return np.float32


def _same_bytes(x: np.ndarray, y: np.ndarray) -> bool:
    memcmp = libc_function("memcmp", ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    if memcmp is None:
        return np.array_equal(x.view(np.uint8), y.view(np.uint8))
    return memcmp(x.ctypes.data, y.ctypes.data, x.nbytes) == 0


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="scratchcheck")
