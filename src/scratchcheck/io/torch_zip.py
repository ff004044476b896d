"""PyTorch ``.bin/.pt/.pth`` checkpoints, read without running the pickle and without importing torch.

Two layouts exist. The zip format (torch >= 1.6): ``<prefix>/data.pkl`` holds the object pickle,
``<prefix>/data/<key>`` one raw storage each (stored uncompressed, 64-byte aligned, so we map them),
``<prefix>/byteorder`` says little or big. The legacy format is a run of pickles in one stream:
magic number, protocol version, sys_info, the object, the sorted storage keys, then every storage as
an 8-byte element count followed by its raw bytes.

The object pickle is read by a restricted unpickler: the only globals it resolves are the handful a
state dict needs (``OrderedDict``, torch's tensor rebuild functions, storage classes and dtypes), and
each resolves to a stand-in here that records where a tensor's bytes are. Anything else is refused
before it could run, which is what makes opening an untrusted ``.bin`` safe.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, UnsafePickleError, UnsupportedError
from .base import TensorFile, TensorInfo
from .dtypes import SAFETENSORS_DTYPES
from .mapping import MappedFile, open_mapped

# torch dtype attribute / legacy storage class -> canonical dtype name.
_TORCH_DTYPES: dict[str, str] = {
    "float32": "F32",
    "float": "F32",
    "float64": "F64",
    "double": "F64",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "long": "I64",
    "int32": "I32",
    "int": "I32",
    "int16": "I16",
    "short": "I16",
    "int8": "I8",
    "uint8": "U8",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
    "bool": "BOOL",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
}
_STORAGE_CLASSES: dict[str, str] = {
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "UntypedStorage": "U8",  # newer dtypes (float8, uint16 ...) are saved untyped + a torch dtype
}
# Real torch dtypes that this reader does not turn into arrays: an UnsupportedError, not a safety one.
_UNREAD_TORCH_DTYPES = frozenset(
    [
        "complex32",
        "complex64",
        "complex128",
        "cfloat",
        "cdouble",
        "chalf",
        "qint8",
        "quint8",
        "qint32",
        "quint4x2",
    ]
    + ["quint2x4", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2"]
    + [f"{kind}{bits}" for kind in ("int", "uint") for bits in range(1, 8)]
)
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Keys under which training scripts wrap the state dict, e.g. {"state_dict": ..., "epoch": 3}.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True)
class _Dtype:
    name: str


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: str  # dtype of the storage's elements as saved (U8 for untyped storages)
    numel: int
    view_offset: int = 0  # in elements; legacy storage views only


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    dtype: str
    offset: int  # in elements of ``dtype``
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise _PickleContentError(f"tensor {what} {value!r} is not a tuple of integers")
    return tuple(value)


class _PickleContentError(Exception):
    """Raised inside the stand-ins; becomes a FormatError naming the file."""


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_: object) -> _Tensor:
    if not isinstance(storage, _Storage) or not isinstance(offset, int):
        raise _PickleContentError("a tensor is rebuilt from something that is not a saved storage")
    return _Tensor(
        storage, storage.dtype, storage.view_offset + offset, _ints(size, "size"), _ints(stride, "stride")
    )


def _rebuild_tensor_v3(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    hooks: object,
    dtype: object,
    *_: object,
) -> _Tensor:
    if not isinstance(dtype, _Dtype):
        raise _PickleContentError(f"tensor dtype {dtype!r} is not a torch dtype")
    tensor = _rebuild_tensor(storage, offset, size, stride)
    return _Tensor(tensor.storage, dtype.name, tensor.offset, tensor.shape, tensor.stride)


def _rebuild_parameter(data: object, *_: object) -> object:
    return data


def _rebuild_from_type_v2(func: object, new_type: object, args: object, state: object) -> object:
    # Tensor subclasses are pickled as func(*args) then a type change; only plain rebuilds are allowed.
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter) or not isinstance(args, tuple):
        raise _PickleContentError("a tensor subclass is rebuilt by an unexpected function")
    return func(*args)


_TENSOR_TYPE = object()  # stands for torch.Tensor / torch.nn.Parameter as a _rebuild_from_type_v2 target

_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _TENSOR_TYPE,
    ("torch.storage", "UntypedStorage"): _StorageType("U8"),
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_CLASSES.items()},
    **{("torch", name): _Dtype(dtype) for name, dtype in _TORCH_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``_ALLOWED``; storages become ``_Storage`` records."""

    def __init__(self, stream: io.IOBase, path: Path, storages: dict[str, _Storage]) -> None:
        super().__init__(stream)
        self._path = path
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and (name.endswith("Storage") or name in _UNREAD_TORCH_DTYPES):
            raise UnsupportedError(
                self._path, f"tensors of torch.{name} (complex, quantised or sub-byte) are not read"
            )
        raise UnsafePickleError(
            self._path,
            f"pickle asks for {module}.{name}, which a state dict never needs; nothing was executed",
        )

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise _PickleContentError(f"unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            raise UnsafePickleError(
                self._path, "pickle holds a whole nn.Module, not a state dict; nothing was executed"
            )
        if kind != "storage" or len(pid) < 5:
            raise _PickleContentError(f"unexpected persistent id of kind {kind!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise _PickleContentError(f"storage {key!r} has an invalid type or size")
        key = str(key)
        root = self.storages.setdefault(key, _Storage(key, storage_type.dtype, numel))
        if root.dtype != storage_type.dtype or root.numel != numel:
            raise _PickleContentError(f"storage {key!r} is declared twice with different types or sizes")
        if view is None:
            return root
        # Legacy storage views: (view key, offset, size) in elements of the root storage.
        _view_key, view_offset, view_size = view
        if (
            not (isinstance(view_offset, int) and isinstance(view_size, int))
            or not 0 <= view_offset <= view_offset + view_size <= numel
        ):
            raise _PickleContentError(f"storage view {view!r} lies outside storage {key!r}")
        return _Storage(key, root.dtype, view_size, view_offset)


def _unpickle(data: io.IOBase, path: Path, storages: dict[str, _Storage]) -> Any:
    try:
        return _RestrictedUnpickler(data, path, storages).load()
    except UnsafePickleError:
        raise
    except _PickleContentError as exc:
        raise FormatError(path, f"pickle: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise FormatError(path, f"corrupt pickle ({exc.__class__.__name__}: {exc})".splitlines()[0]) from None
    except RecursionError:
        raise FormatError(path, "pickle nests too deeply to be a state dict") from None


def _flatten(obj: Any) -> dict[str, _Tensor]:
    """Tensors of a (possibly wrapped or nested) state dict, keyed by dotted paths; the rest skipped."""
    if isinstance(obj, _Tensor):
        return {"tensor": obj}
    if isinstance(obj, dict) and not any(isinstance(v, _Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            tensors = _flatten_into({}, "", inner) if isinstance(inner, dict) else {}
            if tensors:
                return tensors
    return _flatten_into({}, "", obj)


def _flatten_into(out: dict[str, _Tensor], prefix: str, obj: Any) -> dict[str, _Tensor]:
    if isinstance(obj, _Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten_into(out, f"{prefix}.{key}" if prefix else str(key), value)
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            _flatten_into(out, f"{prefix}.{index}" if prefix else str(index), value)
    return out


def _extent(shape: tuple[int, ...], stride: tuple[int, ...]) -> int:
    """Elements from the first to one past the last element a strided tensor touches."""
    if any(d == 0 for d in shape):
        return 0
    return 1 + sum((d - 1) * s for d, s in zip(shape, stride, strict=True))


class TorchFile(TensorFile):
    """A torch state dict in the zip or the legacy format; tensors are views on the file's mapping."""

    format = "torch"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = open_mapped(path)
        self._byteorder = "<"
        self._compressed: dict[str, zipfile.ZipInfo] = {}
        storages: dict[str, _Storage] = {}
        head = self._map.view(0, np.dtype(np.uint8), (min(4, self._map.size),)).tobytes()
        if head[:2] == b"PK":
            obj, self._storage_offsets = self._open_zip(storages)
        else:
            obj, self._storage_offsets = self._open_legacy(storages)
        self._storages = storages
        self._tensors = _flatten(obj)
        self._infos = [self._check_tensor(name, t) for name, t in self._tensors.items()]

    # -- zip format ----------------------------------------------------------------------------
    def _open_zip(self, storages: dict[str, _Storage]) -> tuple[Any, dict[str, int]]:
        try:
            archive = zipfile.ZipFile(self.path)
        # ValueError: a member name that is not valid UTF-8; NotImplementedError: a zip feature or
        # version zipfile does not read. Both mean a damaged archive, not a torch checkpoint.
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise FormatError(self.path, zip_problem(self._map, exc)) from None
        with archive:
            members = {info.filename: info for info in archive.infolist()}
            pickles = [name for name in members if name.endswith("data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                raise FormatError(
                    self.path, "zip archive has no single <prefix>/data.pkl; not a torch checkpoint"
                )
            prefix = pickles[0][: -len("data.pkl")]
            if f"{prefix}constants.pkl" in members and any(n.startswith(f"{prefix}code/") for n in members):
                raise UnsupportedError(
                    self.path, "a TorchScript archive, not a state dict; save model.state_dict() instead"
                )
            if f"{prefix}byteorder" in members:
                order = self._read_member(archive, members[f"{prefix}byteorder"])
                if order not in (b"little", b"big"):
                    raise FormatError(
                        self.path, f"byteorder record says {order[:16]!r}, expected little or big"
                    )
                self._byteorder = "<" if order == b"little" else ">"
            obj = _unpickle(io.BytesIO(self._read_member(archive, members[pickles[0]])), self.path, storages)
            offsets = {}
            for key, storage in storages.items():
                info = members.get(f"{prefix}data/{key}")
                if info is None:
                    raise FormatError(
                        self.path, f"storage {key!r} is named in data.pkl but {prefix}data/{key} is missing"
                    )
                nbytes = storage.numel * SAFETENSORS_DTYPES[storage.dtype].itemsize
                if info.file_size != nbytes:
                    raise FormatError(
                        self.path, f"storage {key!r}: {info.file_size} bytes stored, {nbytes} declared"
                    )
                if info.compress_type == zipfile.ZIP_STORED:
                    offsets[key] = self._member_data_offset(info)
                else:
                    self._compressed[key] = info  # not written by torch; read into memory on demand
            return obj, offsets

    def _read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise FormatError(self.path, f"zip member {info.filename}: {exc}".splitlines()[0]) from None

    def _member_data_offset(self, info: zipfile.ZipInfo) -> int:
        return member_data_offset(self._map, self.path, info)

    # -- legacy format -------------------------------------------------------------------------
    def _open_legacy(self, storages: dict[str, _Storage]) -> tuple[Any, dict[str, int]]:
        # The unpickler leaves the file position exactly after each pickle, so tell() finds the storages.
        with open(self.path, "rb") as stream:
            return self._read_legacy(stream, storages)

    def _read_legacy(
        self, stream: io.BufferedReader, storages: dict[str, _Storage]
    ) -> tuple[Any, dict[str, int]]:
        try:
            magic = _unpickle(stream, self.path, {})
        except UnsafePickleError:
            raise
        except FormatError as exc:  # the very first bytes are no pickle: say what the file is not
            detail = exc.problem.removeprefix("corrupt pickle ")
            raise FormatError(
                self.path, f"not a torch checkpoint: neither a zip archive nor a pickle {detail}"
            ) from None
        if magic != _LEGACY_MAGIC:
            raise UnsupportedError(
                self.path, "not a torch checkpoint (no zip archive and no legacy magic number)"
            )
        protocol = _unpickle(stream, self.path, {})
        if protocol != _LEGACY_PROTOCOL:
            raise UnsupportedError(
                self.path, f"legacy torch protocol {protocol!r} (only {_LEGACY_PROTOCOL} is read)"
            )
        sys_info = _unpickle(stream, self.path, {})
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            self._byteorder = ">"
        obj = _unpickle(stream, self.path, storages)
        keys = _unpickle(stream, self.path, {})
        if not isinstance(keys, list) or {str(k) for k in keys} != set(storages):
            raise FormatError(
                self.path, "legacy storage key list does not match the storages the pickle uses"
            )
        offsets = {}
        position = stream.tell()
        for key in keys:
            storage = storages[str(key)]
            if position + 8 > self._map.size:
                raise FormatError(self.path, f"truncated: storage {key!r} starts past the end of the file")
            raw = self._map.view(position, np.dtype(np.uint8), (8,)).tobytes()
            (count,) = struct.unpack("<q" if self._byteorder == "<" else ">q", raw)
            # The count is in elements of the storage's dtype (bytes for untyped storages).
            nbytes = storage.numel * SAFETENSORS_DTYPES[storage.dtype].itemsize
            if count != storage.numel:
                raise FormatError(
                    self.path, f"storage {key!r}: {count} elements stored, {storage.numel} declared"
                )
            if position + 8 + nbytes > self._map.size:
                raise FormatError(
                    self.path, f"truncated: storage {key!r} needs {nbytes} bytes at offset {position + 8}"
                )
            offsets[str(key)] = position + 8
            position += 8 + nbytes
        return obj, offsets

    # -- tensors -------------------------------------------------------------------------------
    def _check_tensor(self, name: str, tensor: _Tensor) -> TensorInfo:
        itemsize = SAFETENSORS_DTYPES[tensor.dtype].itemsize
        storage = tensor.storage
        storage_bytes = self._storages[storage.key].numel * SAFETENSORS_DTYPES[storage.dtype].itemsize
        if (
            len(tensor.shape) != len(tensor.stride)
            or any(d < 0 for d in tensor.shape)
            or any(s < 0 for s in tensor.stride)
        ):
            raise FormatError(
                self.path, f"tensor {name!r}: size {tensor.shape} and stride {tensor.stride} do not fit"
            )
        end = (tensor.offset + _extent(tensor.shape, tensor.stride)) * itemsize
        if tensor.offset < 0 or end > storage_bytes:
            raise FormatError(
                self.path,
                f"tensor {name!r}: elements up to byte {end} lie outside its {storage_bytes}-byte storage {storage.key!r}",
            )
        numel = int(np.prod(tensor.shape, dtype=np.int64))
        return TensorInfo(name, tensor.shape, tensor.dtype, numel * itemsize, self.path)

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    def read(self, name: str) -> np.ndarray:
        tensor = self._tensors[name]
        dtype = SAFETENSORS_DTYPES[tensor.dtype]
        if self._byteorder == ">" and dtype.itemsize > 1:
            if tensor.dtype == "BF16":
                raise UnsupportedError(self.path, "big-endian bfloat16 storages")
            dtype = dtype.newbyteorder(">")
        key = tensor.storage.key
        storage_bytes = self._storages[key].numel * SAFETENSORS_DTYPES[self._storages[key].dtype].itemsize
        if key in self._compressed:
            with zipfile.ZipFile(self.path) as archive:
                raw = np.frombuffer(self._read_member(archive, self._compressed[key]), dtype=np.uint8)
        else:
            raw = self._map.view(self._storage_offsets[key], np.dtype(np.uint8), (storage_bytes,))
        flat = raw[: storage_bytes - storage_bytes % dtype.itemsize].view(dtype)
        if _is_contiguous(tensor.shape, tensor.stride):
            count = int(np.prod(tensor.shape, dtype=np.int64))
            return flat[tensor.offset : tensor.offset + count].reshape(tensor.shape)
        # Transposed or sliced tensors share a storage: a strided view on it, still no copy.
        base = flat[tensor.offset :]
        strides = tuple(s * dtype.itemsize for s in tensor.stride)
        return np.lib.stride_tricks.as_strided(base, tensor.shape, strides, writeable=False)

    def close(self) -> None:
        self._map.close()


def _is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for dim, step in zip(reversed(shape), reversed(stride), strict=True):
        if dim != 1 and step != expected:
            return False
        expected *= dim
    return True


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
