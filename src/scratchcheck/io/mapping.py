"""Read-only memory maps of checkpoint files, and a way to give their pages back.

Reading a 100B-parameter checkpoint on a laptop means that a tensor is only ever a view on a
mapping: pages come in when touched. Once a streaming pass is done with a stretch of a tensor,
``drop_pages`` tells the kernel the process no longer needs it, so the resident set stays bounded
by the chunk being processed rather than growing with everything read so far.
"""

from __future__ import annotations

import contextlib
import mmap
from pathlib import Path

import numpy as np

_PAGE = mmap.PAGESIZE


class MappedFile:
    """A whole file mapped read-only; arrays made from it are views, never copies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as handle:
            self.size = handle.seek(0, 2)
            # mmap of an empty file is an error; an empty checkpoint has nothing to view anyway.
            self._mmap = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        self._base = np.frombuffer(self._mmap, dtype=np.uint8) if self._mmap is not None else None
        _REGISTRY[self._address()] = self

    def _address(self) -> int:
        return self._base.__array_interface__["data"][0] if self._base is not None else 0

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

    def close(self) -> None:
        _REGISTRY.pop(self._address(), None)
        self._base = None
        if self._mmap is not None:
            # Views handed out may still be alive; the mapping then closes when the last one goes.
            with contextlib.suppress(BufferError):
                self._mmap.close()
            self._mmap = None


# address of each open mapping -> its MappedFile, so that drop_pages can work from any view.
_REGISTRY: dict[int, MappedFile] = {}


def drop_pages(view: np.ndarray) -> None:
    """Give back the pages behind ``view`` if it lies inside an open mapping; otherwise do nothing."""
    if view.size == 0 or not view.flags.c_contiguous:
        return
    start = view.__array_interface__["data"][0]
    stop = start + view.nbytes
    for base, mapped in _REGISTRY.items():
        if base <= start and stop <= base + mapped.size:
            mapped.drop(start - base, stop - base)
            return
