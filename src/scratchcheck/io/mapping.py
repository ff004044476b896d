"""Read-only memory maps of checkpoint files, and a way to give their pages back.

Reading a 100B-parameter checkpoint on a laptop means that a tensor is only ever a view on a
mapping: pages come in when touched. Once a streaming pass is done with a stretch of a tensor,
``drop_pages`` tells the kernel the process no longer needs it, so the resident set stays bounded
by the chunk being processed rather than growing with everything read so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import mmap
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import FormatError, NotFoundError
from .libc import libc_function

_PAGE = mmap.PAGESIZE


class MappedFile:
    """A whole file mapped read-only; arrays made from it are views, never copies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self.size = os.fstat(self._fd).st_size
            # mmap of an empty file is an error; an empty checkpoint has nothing to view anyway.
            self._mmap = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) if self.size else None
        except OSError:
            os.close(self._fd)
            raise
        self._base = np.frombuffer(self._mmap, dtype=np.uint8) if self._mmap is not None else None
        self._address = self._base.__array_interface__["data"][0] if self._base is not None else 0
        self._scattered_fd = -1  # opened by the first scattered read: see ``read_rows``
        self._direct_fd = -1  # opened by the first read of uncached rows; -2: none to be had
        self._row_seconds = 0.0  # a running average of the time a row read takes
        self._sparse = False  # whether the file has holes: see ``read_rows``
        self._lock = threading.Lock()  # reading threads share the counter and the second handle
        self.bytes_read = 0  # bytes read with pread (sampling reads are counted, page faults are not)
        _REGISTRY[self._address] = self

    def offset_of(self, view: np.ndarray) -> int:
        """File offset of ``view``'s first element (a view on this mapping)."""
        return view.__array_interface__["data"][0] - self._address

    def view(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """An array over bytes ``[offset, offset + itemsize * prod(shape))`` of the file."""
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0 or self._base is None:
            return np.zeros(shape, dtype=dtype)
        nbytes = count * np.dtype(dtype).itemsize
        return self._base[offset : offset + nbytes].view(dtype).reshape(shape)

    def drop(self, start: int, stop: int) -> None:
        """Release the resident pages of bytes ``[start, stop)`` (whole pages inside it only)."""
        if self._mmap is None:
            return
        first = -(-start // _PAGE) * _PAGE
        last = (stop // _PAGE) * _PAGE
        if last > first:
            self._mmap.madvise(mmap.MADV_DONTNEED, first, last - first)

    def read_rows(self, starts: np.ndarray, span: int, *, once: bool = False) -> np.ndarray:
        """The ``span`` bytes at each file offset in ``starts``, as rows of a ``uint8`` array, read
        without touching the mapping.

        Rows are read through a second handle advised for random access: on the first handle the
        kernel would read ahead ~128 KiB past each few-KB row (sequential streams want that, a
        sample does not). With ``once`` (the caller will not read these bytes again, as a
        fingerprint's kept rows), rows outside the page cache are read with direct I/O where the
        file system allows it: from the device into our buffer, without filling the page cache
        with gigabytes of scattered rows of a model, and without the kernel allocating and
        zero-filling cache pages for a sparse file's holes (4x the cost of the read itself here).
        Bytes read again later (a small tensor checked through the mapping) would come from the
        device twice: 0.5 -> 0.75 s for a cold 7B fingerprint when every read was direct."""
        starts = np.asarray(starts, dtype=np.int64).ravel()
        if starts.size and (int(starts.min()) < 0 or int(starts.max()) + span > self.size):
            bad = int(starts.max()) if int(starts.min()) >= 0 else int(starts.min())
            raise FormatError(
                self.path, f"byte range {bad}:{bad + span} lies outside the {self.size}-byte file"
            )
        out = np.empty((starts.size, span), dtype=np.uint8)
        fd = self._scattered()
        direct = once and self._uncached(starts, span)
        if self._row_seconds > _SLOW_ROW and starts.size > _ROWS_PER_TASK and not self._sparse:
            # Rows that wait on the device (~0.1 ms each from storage): several in flight overlap
            # the waits (20K cold 8 KB rows here: 149 us a row one at a time, 36 us with 16
            # threads). From the page cache threads only add overhead, and on a sparse file's holes
            # they contend for the kernel's page work (twice as slow on one measured here).
            groups = range(0, starts.size, _ROWS_PER_TASK)
            tasks = [
                _row_readers().submit(
                    self._fill,
                    fd,
                    out[g : g + _ROWS_PER_TASK],
                    starts[g : g + _ROWS_PER_TASK],
                    direct,
                )
                for g in groups
            ]
            seconds = max(task.result() for task in tasks)
        else:
            seconds = self._fill(fd, out, starts, direct)
        with self._lock:
            self._row_seconds = 0.8 * self._row_seconds + 0.2 * seconds
            self.bytes_read += out.nbytes
        return out

    def _fill(self, fd: int, out: np.ndarray, starts: np.ndarray, direct: bool) -> float:
        """Read rows ``starts`` into ``out``, with direct I/O where ``direct`` and the file system
        allow it; the mean seconds one row took."""
        began = time.perf_counter()
        span, flat = out.shape[1], memoryview(out.reshape(-1))
        direct_fd = self._direct() if direct else -2
        if direct_fd >= 0:
            # Direct I/O reads whole aligned blocks into page-aligned memory; the row is copied out.
            skips = starts % _PAGE
            blocks = -(-(skips + span) // _PAGE) * _PAGE
            aligned = _aligned_buffer(int(blocks.max()))
            rows = zip(starts.tolist(), skips.tolist(), blocks.tolist(), strict=True)
            for i, (start, skip, block) in enumerate(rows):
                try:
                    got = os.preadv(direct_fd, [aligned[:block]], start - skip)
                except OSError:  # the file system refuses direct reads after all (EINVAL)
                    with self._lock:
                        self._direct_fd = -2
                    return self._fill(fd, out[i:], starts[i:], False)
                row = flat[i * span : (i + 1) * span]
                if got >= skip + span:
                    row[:] = aligned[skip : skip + span]
                else:  # a short read: the buffered read finishes the row
                    self._read_rest(fd, row, start)
        else:
            for i, start in enumerate(starts.tolist()):
                row = flat[i * span : (i + 1) * span]
                if os.preadv(fd, [row], start) != span:
                    self._read_rest(fd, row, start)
        return (time.perf_counter() - began) / max(1, starts.size)

    def _uncached(self, starts: np.ndarray, span: int) -> bool:
        """Whether these rows are to be read with direct I/O: it is to be had, and a few of them,
        spread over the range, have a page outside the page cache (``mincore`` on the mapping).
        A tensor's rows are cached or not together; asking for every page of a large tensor
        would cost more (~0.1 us a page) than reading its rows."""
        mincore = _mincore()
        if mincore is None or self._direct_fd == -2 or not starts.size or span > _DIRECT_MAX:
            return False
        resident = (ctypes.c_ubyte * (span // _PAGE + 2))()
        probe = starts.tolist()
        last = len(probe) - 1
        for start in {probe[i * last // (_PROBES - 1)] for i in range(_PROBES)}:
            low = start - start % _PAGE
            length = start + span - low
            if mincore(self._address + low, length, resident) != 0:
                return False
            if not all(page & 1 for page in resident[: -(-length // _PAGE)]):
                return True
        return False

    def _read_rest(self, fd: int, view: memoryview, start: int) -> None:
        done = 0
        while done < view.nbytes:
            got = os.preadv(fd, [view[done:]], start + done)
            if got <= 0:
                raise FormatError(self.path, f"file ends at byte {start + done}, inside a tensor")
            done += got

    def _scattered(self) -> int:
        with self._lock:
            if self._scattered_fd < 0:
                fd = os.open(self.path, os.O_RDONLY)
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                self._sparse = _has_holes(fd, self.size)
                self._scattered_fd = fd
        return self._scattered_fd

    def _direct(self) -> int:
        with self._lock:
            if self._direct_fd == -1:
                try:
                    self._direct_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
                except OSError:  # EINVAL: this file system has no direct I/O (tmpfs, some FUSE)
                    self._direct_fd = -2
        return self._direct_fd

    def read_into(self, buffer: np.ndarray, offset: int) -> None:
        """Fill ``buffer`` (contiguous) with the file's bytes from ``offset``, without touching the
        mapping: the kernel copies from its cache into memory the caller reuses, where faulting the
        mapping in would cost a fault per few pages and grow the resident set."""
        view = memoryview(buffer.reshape(-1).view(np.uint8))
        self._read_rest(self._fd, view, offset)
        with self._lock:  # the streaming pass reads from several threads
            self.bytes_read += view.nbytes

    def read_ranges(self, ranges: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
        """The bytes of each ``[start, stop)`` range (sorted, coalesced by the caller), counted."""
        out = []
        for start, stop in ranges:
            if start < 0 or stop > self.size:
                raise FormatError(
                    self.path, f"byte range {start}:{stop} lies outside the {self.size}-byte file"
                )
            out.append((start, os.pread(self._fd, stop - start, start)))
            self.bytes_read += stop - start
        return out

    def close(self) -> None:
        _REGISTRY.pop(self._address, None)
        self._base = None
        if self._mmap is not None:
            # Views handed out may still be alive; the mapping then closes when the last one goes.
            with contextlib.suppress(BufferError):
                self._mmap.close()
            self._mmap = None
        for fd in (self._fd, self._scattered_fd, self._direct_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._scattered_fd = self._direct_fd = -1


_ROWS_PER_TASK = 8  # rows read by one task of ``_row_readers``
_ROW_READERS = 16
_SLOW_ROW = 50e-6  # seconds a row read takes, on average, above which rows are read in parallel
_DIRECT_MAX = 1 << 20  # rows longer than this are read through the page cache, which reads them well
_PROBES = 2  # rows of a read whose pages are looked up in the page cache
_ALIGNED = threading.local()


@functools.cache
def _row_readers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_ROW_READERS, thread_name_prefix="scratchcheck-rows")


def _aligned_buffer(nbytes: int) -> memoryview:
    """Page-aligned memory of at least ``nbytes``, kept by each thread for its next direct read."""
    if getattr(_ALIGNED, "size", 0) < nbytes:
        _ALIGNED.size, _ALIGNED.view = nbytes, memoryview(mmap.mmap(-1, nbytes))
    return _ALIGNED.view


def _mincore():
    """libc's ``mincore`` where direct I/O exists too (Linux), else None."""
    if not hasattr(os, "O_DIRECT"):
        return None
    return libc_function("mincore", ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


def _has_holes(fd: int, size: int) -> bool:
    """Whether the file has a hole (a stretch with no storage behind it) before its end."""
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE) < size
    except (OSError, AttributeError):  # no SEEK_HOLE here, or the file system cannot say
        return False


def open_mapped(path: Path) -> MappedFile:
    """Map ``path``, or say in one line why it cannot be opened."""
    try:
        return MappedFile(path)
    except FileNotFoundError:
        raise NotFoundError(path, "file not found") from None
    except OSError as exc:
        raise NotFoundError(path, f"cannot open: {exc.strerror}") from None


# address of each open mapping -> its MappedFile, so that the helpers below work from any view.
_REGISTRY: dict[int, MappedFile] = {}


def _locate(view: np.ndarray) -> tuple[MappedFile, int, int] | None:
    """The open mapping ``view`` lies in, and the byte span it covers there (strided views too)."""
    if view.size == 0:
        return None
    start = view.__array_interface__["data"][0]
    low = start + sum(min(0, s * (n - 1)) for s, n in zip(view.strides, view.shape, strict=True))
    high = (
        start
        + sum(max(0, s * (n - 1)) for s, n in zip(view.strides, view.shape, strict=True))
        + view.itemsize
    )
    for base, mapped in _REGISTRY.items():
        if base <= low and high <= base + mapped.size:
            return mapped, low - base, high - base
    return None


def locate(view: np.ndarray) -> tuple[MappedFile, int] | None:
    """The open mapping a contiguous ``view`` lies in and its file offset, or None."""
    found = _locate(view)
    if found is None or not view.flags.c_contiguous:
        return None
    return found[0], found[1]


def drop_pages(view: np.ndarray) -> None:
    """Give back the pages behind ``view`` if it lies inside an open mapping; otherwise do nothing."""
    if (found := _locate(view)) is not None:
        mapped, start, stop = found
        mapped.drop(start, stop)


# A tensor up to this many bytes per sampled element (and at least this small) is read in one call
# rather than one call per element: one call per element costs more than reading its neighbours,
# cached or not (a sequential read of the span against a seek per element).
_GATHER_WHOLE = 64 * 1024
_GATHER_WHOLE_PER_ELEMENT = 8 * 1024


def gather(view: np.ndarray, index: tuple[np.ndarray, ...]) -> np.ndarray:
    """``view[index]`` for a few scattered elements, read with ``pread`` when ``view`` is mapped.

    Touching a mapped page can map far more than the page (read-ahead, large page-cache folios:
    about 0.8 MiB a fault was seen here), so a thousand scattered samples of a 1 GiB tensor would
    pull most of it into memory. Reading the bytes directly costs one small system call each; a
    tensor of at most ``_GATHER_WHOLE_PER_ELEMENT`` bytes per element asked for is read in one.
    """
    found = _locate(view)
    if found is None or view.dtype.hasobject:
        return np.asarray(view[index])
    mapped = found[0]
    address = mapped.offset_of(view)
    count = int(np.size(index[0])) if index else 1
    if view.flags.c_contiguous and view.nbytes <= max(_GATHER_WHOLE, count * _GATHER_WHOLE_PER_ELEMENT):
        whole = mapped.read_rows(np.array([address]), view.nbytes)
        return whole.view(view.dtype).reshape(view.shape)[index].copy()
    offsets = address + sum(
        np.asarray(i, dtype=np.int64) * s for i, s in zip(index, view.strides, strict=True)
    )
    data = mapped.read_rows(offsets, view.itemsize)
    return data.view(view.dtype).reshape(np.shape(offsets))


def take_rows(view: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``view[rows]`` for a few whole rows, read with ``pread`` when ``view`` is a contiguous mapping.

    The same reason as :func:`gather`: fancy indexing a mapped array faults in a large folio per
    row, so 256 sampled rows of a freshly written 1 GiB tensor mapped about 400 MiB here.
    """
    found = _locate(view)
    if found is None or view.dtype.hasobject or not view.flags.c_contiguous or view.ndim < 1:
        return np.asarray(view[rows])
    mapped = found[0]
    start = mapped.offset_of(view)
    row_bytes = view.itemsize * math.prod(view.shape[1:])
    offsets = start + np.asarray(rows, dtype=np.int64).ravel() * row_bytes
    data = mapped.read_rows(offsets, row_bytes)
    return data.view(view.dtype).reshape((offsets.size, *view.shape[1:]))


@contextlib.contextmanager
def released(*views: np.ndarray) -> Iterator[None]:
    """Give back the pages behind ``views`` when the block ends (for checks that scan a tensor)."""
    try:
        yield
    finally:
        for view in views:
            drop_pages(view)
