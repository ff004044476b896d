"""A validating, memory-mapping reader for safetensors files (single file or sharded).

Layout: 8-byte little-endian header length N, N bytes of JSON, then the data buffer. Like the
reference implementation we check everything before touching data: the header fits the file, every
dtype is known, every byte range matches its shape, and the ranges tile the buffer exactly with no
gap or overlap. The ``safetensors`` package cannot map FP8 or keep tensors mapped, hence our own.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import FormatError, NotFoundError
from .base import TensorFile, TensorInfo
from .dtypes import SAFETENSORS_DTYPES
from .limits import MAX_HEADER_BYTES, tensor_bytes
from .mapping import MappedFile, open_mapped
from .paths import contained
from .safejson import parse_json, read_json_file


class SafetensorsFile(TensorFile):
    format = "safetensors"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = open_mapped(path)
        self._infos, self._offsets = self._parse_header()
        self._by_name = {info.name: info for info in self._infos}

    def _parse_header(self) -> tuple[list[TensorInfo], dict[str, int]]:
        size = self._map.size
        if size < 8:
            raise FormatError(self.path, f"truncated: {size} bytes, too short for a safetensors header")
        raw = self._map.view(0, np.dtype(np.uint8), (8,)).tobytes()
        (header_len,) = struct.unpack("<Q", raw)
        if header_len > MAX_HEADER_BYTES:
            raise FormatError(
                self.path, f"header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit"
            )
        if 8 + header_len > size:
            raise FormatError(
                self.path,
                f"truncated: header claims {header_len} bytes but the file has {size - 8} after the length",
            )
        header_bytes = self._map.view(8, np.dtype(np.uint8), (header_len,)).tobytes()
        header = parse_json(header_bytes, self.path, "header")
        if not isinstance(header, dict):
            raise FormatError(self.path, "header is not a JSON object")
        metadata = header.pop("__metadata__", None)
        if metadata is not None and not isinstance(metadata, dict):
            raise FormatError(self.path, "__metadata__ is not a JSON object")
        self.header_metadata: dict[str, str] = {str(k): str(v) for k, v in (metadata or {}).items()}
        data_start = 8 + header_len
        buffer_len = size - data_start

        entries = []
        for name, entry in header.items():
            entries.append((name, *self._check_entry(name, entry)))
        # The ranges must tile the buffer: sorted by start, each begins where the previous ended.
        entries.sort(key=lambda e: (e[3], e[4]))
        position = 0
        for name, _, _, begin, end in entries:
            if begin != position:
                what = (
                    "overlaps the previous tensor"
                    if begin < position
                    else f"leaves a gap of {begin - position} bytes"
                )
                raise FormatError(self.path, f"tensor {name!r}: data_offsets start {begin} {what}")
            position = end
        if position != buffer_len:
            if position > buffer_len:
                raise FormatError(
                    self.path, f"truncated: tensors need {position} data bytes, the file has {buffer_len}"
                )
            raise FormatError(self.path, f"{buffer_len - position} trailing bytes after the last tensor")

        infos, offsets = [], {}
        for name, dtype_name, shape, begin, end in sorted(entries, key=lambda e: e[3]):
            infos.append(TensorInfo(name, shape, dtype_name, end - begin, self.path))
            offsets[name] = data_start + begin
        return infos, offsets

    def _check_entry(self, name: str, entry: object) -> tuple[str, tuple[int, ...], int, int]:
        if not isinstance(entry, dict):
            raise FormatError(self.path, f"tensor {name!r}: header entry is not an object")
        dtype_name = entry.get("dtype")
        if dtype_name not in SAFETENSORS_DTYPES:
            raise FormatError(self.path, f"tensor {name!r}: unknown dtype {dtype_name!r}")
        shape = entry.get("shape")
        expected = tensor_bytes(self.path, name, shape, SAFETENSORS_DTYPES[dtype_name].itemsize)
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            raise FormatError(
                self.path, f"tensor {name!r}: data_offsets {offsets!r} are not [begin, end] with begin <= end"
            )
        begin, end = offsets
        if end - begin != expected:
            raise FormatError(
                self.path,
                f"tensor {name!r}: {end - begin} bytes for shape {shape} {dtype_name}, which needs {expected}",
            )
        return dtype_name, tuple(shape), begin, end

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    def read(self, name: str) -> np.ndarray:
        info = self._by_name[name]
        return self._map.view(self._offsets[name], SAFETENSORS_DTYPES[info.dtype], info.shape)

    def byte_source(self, name: str) -> tuple[MappedFile, int]:
        """Where tensor ``name``'s bytes start, and the file object that reads (and counts) ranges."""
        return self._map, self._offsets[name]

    def close(self) -> None:
        self._map.close()


def read_weight_map(index_path: Path) -> dict[str, str]:
    """The ``weight_map`` of a shard index: tensor name -> shard file name."""
    index = read_json_file(index_path, "shard index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FormatError(index_path, "no 'weight_map' object in the shard index")
    for shard in weight_map.values():
        if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard.startswith("."):
            raise FormatError(index_path, f"weight_map names an unsafe shard path {shard!r}")
    return weight_map


def read_index(index_path: Path) -> list[Path]:
    """The shard files named by a ``*.safetensors.index.json``, each checked to exist."""
    weight_map = read_weight_map(index_path)
    shards = []
    for shard in dict.fromkeys(weight_map.values()):
        path = index_path.parent / shard
        if not path.is_file():
            raise NotFoundError(path, f"missing shard named in {index_path.name}")
        shards.append(contained(path, index_path.parent, f"shard named in {index_path.name}"))
    return shards


def check_index_matches(index_path: Path, files: list[SafetensorsFile]) -> None:
    """Every tensor the index promises is in the shard it names."""
    weight_map = read_weight_map(index_path)
    where = {info.name: f.path.name for f in files for info in f.infos()}
    for name, shard in weight_map.items():
        if where.get(name) != shard:
            found = f"found in {where[name]}" if name in where else "not in any shard"
            raise FormatError(index_path, f"index puts tensor {name!r} in {shard}, but it is {found}")
