"""NumPy ``.npz`` archives: a zip of ``.npy`` files, one array each, never unpickled.

``np.load`` would copy every member into memory. Members of ``np.savez`` are stored uncompressed, so
we parse each ``.npy`` header ourselves and map the array in place; members of ``np.savez_compressed``
are inflated on demand. Object arrays would need pickle and are refused.
"""

from __future__ import annotations

import io
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError, UnsafePickleError, UnsupportedError
from .base import TensorFile, TensorInfo
from .dtypes import SAFETENSORS_DTYPES, dtype_name
from .limits import tensor_bytes
from .mapping import open_mapped
from .ziparchive import ZIP_ERRORS, check_member, member_data_offset, open_archive, read_member

_MAX_HEADER = 1 << 20  # npy headers are a few hundred bytes; numpy itself caps them at 10 kB by default


@dataclass(frozen=True)
class _Member:
    info: TensorInfo
    member: zipfile.ZipInfo
    offset: int  # of the array data: in the file when stored, in the inflated member otherwise
    dtype: np.dtype
    fortran: bool


class NpzFile(TensorFile):
    """One ``.npz``; arrays of stored members are read-only views on the file's mapping."""

    format = "npz"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = open_mapped(path)
        with open_archive(path, self._map) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            self._members = [self._header(archive, member) for member in members]
        self._by_name = {m.info.name: m for m in self._members}

    def _header(self, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> _Member:
        name = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
        check_member(self.path, member)
        try:
            with archive.open(member) as handle:
                head = io.BytesIO(handle.read(_MAX_HEADER))
        except ZIP_ERRORS as exc:
            raise FormatError(self.path, f"member {member.filename}: {exc}".splitlines()[0]) from None
        try:
            version = np.lib.format.read_magic(head)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(head, max_header_size=_MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(head, max_header_size=_MAX_HEADER)
            else:
                raise UnsupportedError(self.path, f"member {member.filename}: .npy format version {version}")
        # numpy parses the header dict with tokenize and ast.literal_eval, which raise these for garbage.
        except (ValueError, SyntaxError, TypeError, tokenize.TokenError, RecursionError) as exc:
            raise FormatError(
                self.path, f"member {member.filename}: bad .npy header ({exc})".splitlines()[0]
            ) from None
        if dtype.hasobject:
            raise UnsafePickleError(
                self.path, f"member {member.filename} is an object array, which needs pickle; not loaded"
            )
        if dtype.newbyteorder("=") not in SAFETENSORS_DTYPES.values():
            raise UnsupportedError(
                self.path, f"member {member.filename}: dtype {dtype} is not a plain numeric array"
            )
        data_start = head.tell()
        nbytes = tensor_bytes(self.path, name, shape, dtype.itemsize)
        if data_start + nbytes != member.file_size:
            raise FormatError(
                self.path,
                f"member {member.filename}: {member.file_size - data_start} data bytes for shape {shape} {dtype}, which needs {nbytes}",
            )
        offset = data_start
        if member.compress_type == zipfile.ZIP_STORED:
            offset += member_data_offset(self._map, self.path, member)
        info = TensorInfo(name, tuple(shape), dtype_name(dtype.newbyteorder("=")), nbytes, self.path)
        return _Member(info, member, offset, dtype, fortran)

    def infos(self) -> list[TensorInfo]:
        return [m.info for m in self._members]

    def read(self, name: str) -> np.ndarray:
        entry = self._by_name[name]
        # Fortran-ordered arrays are the transpose of a C array of the reversed shape: still a view.
        shape = entry.info.shape[::-1] if entry.fortran else entry.info.shape
        if entry.member.compress_type == zipfile.ZIP_STORED:
            array = self._map.view(entry.offset, entry.dtype, shape)
        else:
            with open_archive(self.path, self._map) as archive:
                raw = read_member(self.path, archive, entry.member)
            count = int(np.prod(shape, dtype=np.int64))
            array = np.frombuffer(raw, dtype=entry.dtype, count=count, offset=entry.offset).reshape(shape)
        return array.T if entry.fortran else array

    def close(self) -> None:
        self._map.close()
