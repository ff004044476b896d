"""A pickle's opcodes checked before the unpickler acts on them: size, lengths and memo indices.

The C unpickler allocates what a length field asks for before reading the bytes, and grows its memo
to whatever index a PUT names, so a 363-byte ``.pt`` can ask for gigabytes. ``pickletools.genops``
only reads the opcodes, from a window no larger than ``MAX_PICKLE_BYTES``: every length is then
bounded by bytes actually present, and a memo index by the number of opcodes before it.
"""

from __future__ import annotations

import io
import pickletools
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .limits import MAX_PICKLE_BYTES
from .mapping import MappedFile

_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_LINE_CHUNK = 1 << 16


class MappedWindow(io.RawIOBase):
    """Bytes ``[start, stop)`` of a mapped file as a read-only stream; reads never pass ``stop``."""

    def __init__(self, mapped: MappedFile, start: int, stop: int) -> None:
        super().__init__()
        self._mapped, self._position, self._stop = mapped, start, min(stop, mapped.size)

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        available = max(0, self._stop - self._position)
        count = available if size is None or size < 0 else min(size, available)
        data = self._mapped.view(self._position, np.dtype(np.uint8), (count,)).tobytes()
        self._position += count
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = b""
        while self._position < self._stop:
            chunk = self._mapped.view(
                self._position, np.dtype(np.uint8), (min(_LINE_CHUNK, self._stop - self._position),)
            )
            newline = np.flatnonzero(chunk == ord("\n"))
            count = int(newline[0]) + 1 if newline.size else chunk.size
            line += self.read(count)
            if newline.size:
                break
        return line


def pickle_length(stream: io.IOBase, path: Path) -> int:
    """Bytes of the pickle starting at ``stream``'s position, once every opcode has been checked."""
    start = stream.tell()
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(stream):
            count += 1
            if opcode.name in _MEMO_PUTS and arg >= count:
                raise FormatError(path, f"corrupt pickle (memo index {arg} after {count} opcodes)")
            if opcode.name == "FRAME" and arg > MAX_PICKLE_BYTES:
                raise FormatError(path, f"corrupt pickle (a frame of {arg} bytes)")
    except (ValueError, EOFError) as exc:  # truncated arguments, unknown opcodes, no STOP
        length = stream.tell() - start
        if length >= MAX_PICKLE_BYTES:
            raise FormatError(path, f"pickle is larger than the {MAX_PICKLE_BYTES}-byte limit") from None
        raise FormatError(path, f"corrupt pickle ({exc})".splitlines()[0]) from None
    return stream.tell() - start
