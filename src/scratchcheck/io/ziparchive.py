"""Zip archives (torch checkpoints, npz): opening, locating stored members, reading compressed ones
within the decompression budget of ``limits``. Every zip failure becomes one line naming the file."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import FormatError, UnsupportedError
from .limits import check_inflated
from .mapping import MappedFile

# What zipfile raises for damaged archives besides BadZipFile: a truncated stream, a name that is
# not UTF-8 (ValueError), a feature it does not read (NotImplementedError), a corrupt deflate stream.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    zlib.error,
    struct.error,
)


def open_archive(path: Path, mapped: MappedFile) -> zipfile.ZipFile:
    """``path`` as a zip archive, or a FormatError saying why it is not one."""
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise FormatError(path, zip_problem(mapped, exc)) from None


def check_member(path: Path, info: zipfile.ZipInfo, limit: int | None = None) -> None:
    """Refuse a member that cannot be read safely: encrypted, or inflating beyond the budget."""
    if info.flag_bits & 0x1:
        raise UnsupportedError(path, f"zip member {info.filename} is encrypted")
    if info.compress_type != zipfile.ZIP_STORED:
        check_inflated(path, info.filename, info.compress_size, info.file_size, limit)


def read_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int | None = None
) -> bytes:
    """The inflated bytes of one member (zipfile stops at the size the directory declares)."""
    check_member(path, info, limit)
    try:
        return archive.read(info)
    except (*ZIP_ERRORS, RuntimeError) as exc:
        raise FormatError(path, f"zip member {info.filename}: {exc}".splitlines()[0]) from None


def member_data_offset(mapped: MappedFile, path: Path, info: zipfile.ZipInfo) -> int:
    """Where the bytes of a stored zip member begin, from its local header; checked against the file."""
    start = info.header_offset
    if start + 30 > mapped.size:
        raise FormatError(
            path, f"truncated: zip member {info.filename} has its header past the end of the file"
        )
    header = mapped.view(start, np.dtype(np.uint8), (30,)).tobytes()
    if header[:4] != b"PK\x03\x04":
        raise FormatError(path, f"zip member {info.filename}: no local file header at offset {start}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    offset = start + 30 + name_len + extra_len
    if offset + info.compress_size > mapped.size:
        raise FormatError(
            path,
            f"truncated: zip member {info.filename} needs bytes up to {offset + info.compress_size}, the file has {mapped.size}",
        )
    return offset


def zip_problem(mapped: MappedFile, exc: Exception) -> str:
    """Why zipfile could not open an archive, in a user's words: a zip's index (the central directory)
    is at its end, so a file that starts like a zip but has none was most likely cut short."""
    starts_like_zip = mapped.size >= 4 and mapped.view(0, np.dtype(np.uint8), (4,)).tobytes() == b"PK\x03\x04"
    what = "truncated or damaged zip archive" if starts_like_zip else "not a readable zip archive"
    return f"{what} ({exc})".splitlines()[0]
