"""PyTorch ``.bin/.pt/.pth`` checkpoints, read without running the pickle and without importing torch.

Two layouts exist. The zip format (torch >= 1.6): ``<prefix>/data.pkl`` holds the object pickle,
``<prefix>/data/<key>`` one raw storage each (stored uncompressed, 64-byte aligned, so we map them),
``<prefix>/byteorder`` says little or big. The legacy format is a run of pickles in one stream:
magic number, protocol version, sys_info, the object, the sorted storage keys, then every storage as
an 8-byte element count followed by its raw bytes.

The object pickle is read by a restricted unpickler: the only globals it resolves are the handful a
state dict needs (``OrderedDict``, torch's tensor rebuild functions, storage classes and dtypes), and
each resolves to a stand-in here that records where a tensor's bytes are. Anything else is refused
before it could run, which is what makes opening an untrusted ``.bin`` safe. The stand-ins refuse the
pickle ``BUILD`` opcode, so one file cannot change how the next file is read; the opcodes are checked
first (``picklescan``) so that no length or memo index in them can make the unpickler allocate more
than the pickle's own size.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, UnsafePickleError, UnsupportedError
from .base import TensorFile, TensorInfo
from .dtypes import SAFETENSORS_DTYPES
from .limits import MAX_NESTING, MAX_PICKLE_BYTES, MAX_PICKLE_ITEMS, tensor_bytes
from .mapping import open_mapped
from .picklescan import MappedWindow, pickle_length
from .ziparchive import check_member, member_data_offset, open_archive, read_member

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


class _Sealed:
    """A stand-in the pickle ``BUILD`` opcode cannot modify (it calls ``__setstate__`` first)."""

    def __setstate__(self, state: object) -> None:
        raise _PickleContentError("pickle tries to modify a torch class or function (BUILD)")


@dataclass(frozen=True)
class _StorageType(_Sealed):
    dtype: str


@dataclass(frozen=True)
class _Dtype(_Sealed):
    name: str


@dataclass(frozen=True)
class _Storage(_Sealed):
    key: str
    dtype: str  # dtype of the storage's elements as saved (U8 for untyped storages)
    numel: int
    view_offset: int = 0  # in elements; legacy storage views only


@dataclass(frozen=True)
class _Tensor(_Sealed):
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


class _Function(_Sealed):
    """One of torch's rebuild functions as the pickle sees it: callable, not modifiable."""

    __slots__ = ("_function",)

    def __init__(self, function: Callable[..., object]) -> None:
        self._function = function

    def __call__(self, *args: object) -> object:
        return self._function(*args)


def _rebuild_from_type_v2(func: object, new_type: object, args: object, state: object) -> object:
    # Tensor subclasses are pickled as func(*args) then a type change; only plain rebuilds are allowed.
    if func not in _REBUILDS or not isinstance(args, tuple):
        raise _PickleContentError("a tensor subclass is rebuilt by an unexpected function")
    return func(*args)


_REBUILD_TENSOR = _Function(_rebuild_tensor)
_REBUILD_TENSOR_V3 = _Function(_rebuild_tensor_v3)
_REBUILD_PARAMETER = _Function(_rebuild_parameter)
_REBUILDS = (_REBUILD_TENSOR, _REBUILD_TENSOR_V3, _REBUILD_PARAMETER)
_TENSOR_TYPE = _Sealed()  # stands for torch.Tensor / torch.nn.Parameter as a _rebuild_from_type_v2 target

_ALLOWED: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _REBUILD_TENSOR,
    ("torch._utils", "_rebuild_tensor_v2"): _REBUILD_TENSOR,
    ("torch._utils", "_rebuild_tensor_v3"): _REBUILD_TENSOR_V3,
    ("torch._utils", "_rebuild_parameter"): _REBUILD_PARAMETER,
    ("torch._utils", "_rebuild_parameter_with_state"): _REBUILD_PARAMETER,
    ("torch._tensor", "_rebuild_from_type_v2"): _Function(_rebuild_from_type_v2),
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
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(numel, int)
            or numel < 0
        ):
            raise _PickleContentError("a storage has an invalid type, key or size")
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


def _unpickle(data: bytes, path: Path, storages: dict[str, _Storage]) -> Any:
    """The object in ``data`` (exactly one pickle, its opcodes already checked by ``pickle_length``)."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path, storages).load()
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


def _flatten(obj: Any, path: Path) -> dict[str, _Tensor]:
    """Tensors of a (possibly wrapped or nested) state dict, keyed by dotted paths; the rest skipped."""
    if isinstance(obj, _Tensor):
        return {"tensor": obj}
    if isinstance(obj, dict) and not any(isinstance(v, _Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            tensors = _Flattener(path).walk("", inner, 0) if isinstance(inner, dict) else {}
            if tensors:
                return tensors
    return _Flattener(path).walk("", obj, 0)


class _Flattener:
    """Walks the unpickled containers within ``MAX_NESTING`` levels and ``MAX_PICKLE_ITEMS`` visits
    (a pickle can share one list many times over, or put a list inside itself)."""

    def __init__(self, path: Path) -> None:
        self.path, self.out, self.visits = path, {}, 0

    def walk(self, prefix: str, obj: Any, depth: int) -> dict[str, _Tensor]:
        self.visits += 1
        if depth > MAX_NESTING or self.visits > MAX_PICKLE_ITEMS:
            what = (
                f"nests deeper than {MAX_NESTING} levels" if depth > MAX_NESTING else "holds too many items"
            )
            raise FormatError(self.path, f"pickle {what} to be a state dict")
        if isinstance(obj, _Tensor):
            self.out[prefix] = obj
        elif isinstance(obj, dict | list | tuple):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            for key, value in items:
                if not isinstance(key, str | int) or isinstance(key, int) and abs(key) >= 1 << 63:
                    raise FormatError(self.path, f"state dict key of type {type(key).__name__}")
                self.walk(f"{prefix}.{key}" if prefix else str(key), value, depth + 1)
        return self.out


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
        self._tensors = _flatten(obj, path)
        self._infos = [self._check_tensor(name, t) for name, t in self._tensors.items()]

    def _load(self, data: bytes, storages: dict[str, _Storage]) -> Any:
        """The object of one pickle held in memory (a zip's ``data.pkl``)."""
        pickle_length(io.BytesIO(data), self.path)
        return _unpickle(data, self.path, storages)

    # -- zip format ----------------------------------------------------------------------------
    def _open_zip(self, storages: dict[str, _Storage]) -> tuple[Any, dict[str, int]]:
        with open_archive(self.path, self._map) as archive:
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
                order = read_member(self.path, archive, members[f"{prefix}byteorder"], limit=16)
                if order not in (b"little", b"big"):
                    raise FormatError(
                        self.path, f"byteorder record says {order[:16]!r}, expected little or big"
                    )
                self._byteorder = "<" if order == b"little" else ">"
            data = read_member(self.path, archive, members[pickles[0]], limit=MAX_PICKLE_BYTES)
            obj = self._load(data, storages)
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
                    offsets[key] = member_data_offset(self._map, self.path, info)
                else:
                    check_member(self.path, info)
                    self._compressed[key] = info  # not written by torch; read into memory on demand
            return obj, offsets

    # -- legacy format -------------------------------------------------------------------------
    def _open_legacy(self, storages: dict[str, _Storage]) -> tuple[Any, dict[str, int]]:
        try:
            magic = self._load_at(0, {})
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
        protocol = self._load_at(self._position, {})
        if protocol != _LEGACY_PROTOCOL:
            raise UnsupportedError(
                self.path, f"legacy torch protocol {protocol!r} (only {_LEGACY_PROTOCOL} is read)"
            )
        sys_info = self._load_at(self._position, {})
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            self._byteorder = ">"
        obj = self._load_at(self._position, storages)
        keys = self._load_at(self._position, {})
        if (
            not isinstance(keys, list)
            or not all(isinstance(k, str) for k in keys)
            or set(keys) != set(storages)
        ):
            raise FormatError(
                self.path, "legacy storage key list does not match the storages the pickle uses"
            )
        offsets = {}
        position = self._position
        for key in keys:
            storage = storages[key]
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
            offsets[key] = position + 8
            position += 8 + nbytes
        return obj, offsets

    def _load_at(self, start: int, storages: dict[str, _Storage]) -> Any:
        """The object of the pickle at byte ``start`` of a legacy file; ``_position`` moves past it."""
        length = pickle_length(MappedWindow(self._map, start, start + MAX_PICKLE_BYTES), self.path)
        self._position = start + length
        return _unpickle(self._map.view(start, np.dtype(np.uint8), (length,)).tobytes(), self.path, storages)

    # -- tensors -------------------------------------------------------------------------------
    def _check_tensor(self, name: str, tensor: _Tensor) -> TensorInfo:
        itemsize = SAFETENSORS_DTYPES[tensor.dtype].itemsize
        storage = self._storages[tensor.storage.key]
        storage_bytes = storage.numel * SAFETENSORS_DTYPES[storage.dtype].itemsize
        nbytes = tensor_bytes(self.path, name, tensor.shape, itemsize)
        if len(tensor.shape) != len(tensor.stride) or any(s < 0 for s in tensor.stride):
            raise FormatError(
                self.path, f"tensor {name!r}: size {tensor.shape} and stride {tensor.stride} do not fit"
            )
        end = (tensor.offset + _extent(tensor.shape, tensor.stride)) * itemsize
        if tensor.offset < 0 or end > storage_bytes:
            raise FormatError(
                self.path,
                f"tensor {name!r}: elements up to byte {end} lie outside its {storage_bytes}-byte storage {storage.key!r}",
            )
        if nbytes > storage_bytes:
            # Only stride-0 (expanded) tensors have more elements than their storage; a state dict's
            # weights never are, and reading one would inflate a few bytes to any size.
            raise FormatError(
                self.path,
                f"tensor {name!r}: {nbytes} bytes of elements overlap in a {storage_bytes}-byte storage (stride {tensor.stride})",
            )
        return TensorInfo(name, tensor.shape, tensor.dtype, nbytes, self.path)

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
            with open_archive(self.path, self._map) as archive:
                raw = np.frombuffer(read_member(self.path, archive, self._compressed[key]), dtype=np.uint8)
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
