"""ONNX models: graph initializers, constants in subgraphs, external data, weight-only int8.

Exporters put weights in several places: ``graph.initializer`` (most), ``Constant`` nodes and
initializers inside the bodies of ``If``/``Loop``/``Scan`` (weights used on one branch only),
``sparse_initializer`` and sparse ``Constant`` values (densified on read: zeros where nothing is
stored), and external-data files beside the model (any model over 2 GB). All of them are listed
here; external data is memory-mapped, with its offset and length checked against the file, and its
path must stay inside the model's folder. Tensors embedded in the protobuf are in memory once the
model is parsed (protobuf cannot be mapped); models big enough for that to matter use external
data anyway.

Weight-only quantised exports store ``W`` as int8 plus scales. Three patterns are recognised:
``DequantizeLinear(x, scale[, zero_point])`` on an int8/uint8 initializer (QDQ exports),
``Mul(Cast(x), scale)`` (PyTorch's weight-only int8 exports), and onnxruntime's dynamic quantizer's
``W_quantized`` + ``W_scale`` + ``W_zero_point`` initializers. Each yields one tensor (named after
the DequantizeLinear or Mul output, or ``W``) whose ``read`` is the
stored integers and ``read_float`` is ``(q - zero_point) * scale``; the integers, scales and zero
points themselves are listed as ``aux``. Anonymous names (``onnx::MatMul_470``) are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, NotFoundError, UnsupportedError
from .base import TensorFile, TensorInfo
from .dtypes import dtype_name
from .limits import MAX_DENSE_BYTES, tensor_bytes
from .mapping import MappedFile, open_mapped
from .paths import contained

_QUANTISED_KINDS = "iu"  # numpy kinds of the stored integers of a quantised weight
_ORT_SUFFIX = "_quantized"


@dataclass
class _Entry:
    proto: Any  # onnx.TensorProto
    shape: tuple[int, ...]
    dtype: np.dtype
    where: str  # "initializer", "constant" or "<node>.<attribute>/initializer" ...
    indices: Any = None  # the indices TensorProto of a sparse tensor, whose ``proto`` holds its values


@dataclass(frozen=True)
class _Quantised:
    data: str
    scale: str
    zero_point: str | None
    axis: int | None  # None: one scale for the whole tensor
    block_size: int  # 0 unless blocked (opset 21)
    note: str


class OnnxFile(TensorFile):
    """One ``.onnx`` model; weights are read lazily from the loaded graph or the external files."""

    format = "onnx"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            raise UnsupportedError(
                path, "reading ONNX needs the onnx package: install scratchcheck[onnx]"
            ) from None
        self._onnx, self._numpy_helper = onnx, numpy_helper
        if not path.is_file():
            raise NotFoundError(path, "file not found")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf raises DecodeError, onnx raises several kinds
            raise FormatError(
                path, f"not a readable ONNX model ({exc.__class__.__name__}: {exc})".splitlines()[0]
            ) from None
        self.opset = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
        self.producer = f"{model.producer_name} {model.producer_version}".strip()
        self._entries: dict[str, _Entry] = {}
        self._maps: dict[Path, MappedFile] = {}
        nodes: list[Any] = []
        self._walk(model.graph, "", nodes)
        self._quantised = self._find_quantised(nodes)
        self._infos = self._list()

    # -- collecting ----------------------------------------------------------------------------
    def _walk(self, graph: Any, scope: str, nodes: list[Any]) -> None:
        where = f"{scope}initializer" if scope else "initializer"
        for tensor in graph.initializer:
            self._add(tensor.name, tensor, scope, where)
        for sparse in graph.sparse_initializer:
            self._add(sparse.values.name, sparse.values, scope, f"sparse {where}", sparse)
        for index, node in enumerate(graph.node):
            nodes.append(node)
            node_name = node.name or f"{node.op_type}_{index}"
            if node.op_type == "Constant" and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self._add(node.output[0], attribute.t, scope, f"{scope}Constant {node_name}")
                    elif attribute.name == "sparse_value":
                        sparse = attribute.sparse_tensor
                        self._add(
                            node.output[0],
                            sparse.values,
                            scope,
                            f"{scope}sparse Constant {node_name}",
                            sparse,
                        )
            for attribute in node.attribute:
                # Subgraph bodies: If then/else, Loop and Scan bodies (GRAPH = 5, GRAPHS = 10).
                if attribute.type == 5:
                    self._walk(attribute.g, f"{scope}{node_name}.{attribute.name}/", nodes)
                elif attribute.type == 10:
                    for i, subgraph in enumerate(attribute.graphs):
                        self._walk(subgraph, f"{scope}{node_name}.{attribute.name}.{i}/", nodes)

    def _add(self, name: str, tensor: Any, scope: str, where: str, sparse: Any = None) -> None:
        if not isinstance(name, str):  # protobuf hands out a string field that is not UTF-8 as bytes
            raise FormatError(self.path, f"tensor name {name!r} is not valid UTF-8; the file is corrupt")
        if tensor.data_type == self._onnx.TensorProto.STRING:
            return  # string constants (labels, vocabularies) are not weights
        try:
            dtype = np.dtype(self._onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))
        except (KeyError, ValueError, TypeError):
            raise UnsupportedError(
                self.path, f"tensor {name!r}: ONNX data type {tensor.data_type} is not read"
            ) from None
        if dtype.kind == "c":
            raise UnsupportedError(self.path, f"tensor {name!r}: complex tensors are not read")
        if name in self._entries:
            name = f"{scope}{name}"  # a subgraph shadowing an outer name: keep both, qualified
        if not name or name in self._entries:
            raise FormatError(self.path, f"tensor name {name!r} is used twice in the same graph")
        shape = tuple(int(d) for d in (sparse or tensor).dims)
        nbytes = tensor_bytes(self.path, name, shape, dtype.itemsize)
        if sparse is not None and nbytes > MAX_DENSE_BYTES:
            raise UnsupportedError(
                self.path,
                f"sparse tensor {name!r}: {nbytes} bytes dense, over the {MAX_DENSE_BYTES}-byte limit",
            )
        self._entries[name] = _Entry(tensor, shape, dtype, where, sparse.indices if sparse else None)

    def _find_quantised(self, nodes: list[Any]) -> dict[str, _Quantised]:
        found: dict[str, _Quantised] = {}
        for node in nodes:
            if node.op_type != "DequantizeLinear" or len(node.input) < 2 or not node.output:
                continue
            data, scale = node.input[0], node.input[1]
            zero_point = node.input[2] if len(node.input) > 2 and node.input[2] else None
            if (
                not self._is_quantised(data)
                or scale not in self._entries
                or (zero_point and zero_point not in self._entries)
            ):
                continue
            attrs = {a.name: self._onnx.helper.get_attribute_value(a) for a in node.attribute}
            axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
            if not isinstance(axis, int) or not isinstance(block, int) or block < 0:
                raise FormatError(
                    self.path,
                    f"DequantizeLinear on {data!r}: axis {axis!r} and block_size {block!r} are not integers",
                )
            ndim = len(self._entries[data].shape)
            per_tensor = int(np.prod(self._entries[scale].shape, dtype=np.int64)) == 1 and not block
            if not per_tensor and not -ndim <= axis < ndim:
                raise FormatError(
                    self.path, f"DequantizeLinear on {data!r}: axis {axis} out of range for rank {ndim}"
                )
            axis = None if per_tensor else axis % ndim
            how = (
                "per tensor"
                if axis is None
                else (f"blocks of {block} on axis {axis}" if block else f"per axis {axis}")
            )
            note = f"DequantizeLinear({data}): ({self._entries[data].dtype} - zero_point) * scale, {how}"
            found[node.output[0]] = _Quantised(data, scale, zero_point, axis, block, note)
        found.update(self._find_cast_mul(nodes, found))
        used = {q.data for q in found.values()}
        for name in list(self._entries):
            base = name[: -len(_ORT_SUFFIX)]
            if (
                not name.endswith(_ORT_SUFFIX)
                or name in used
                or base in self._entries
                or not self._is_quantised(name)
            ):
                continue
            scale, zero_point = f"{base}_scale", f"{base}_zero_point"
            if scale not in self._entries:
                continue
            axis = self._ort_axis(name, scale)
            how = "per tensor" if axis is None else f"per axis {axis}"
            note = f"onnxruntime dynamic quantisation ({name}): ({self._entries[name].dtype} - zero_point) * scale, {how}"
            found[base] = _Quantised(
                name, scale, zero_point if zero_point in self._entries else None, axis, 0, note
            )
        return found

    def _find_cast_mul(self, nodes: list[Any], found: dict[str, _Quantised]) -> dict[str, _Quantised]:
        """PyTorch's weight-only int8 export: ``Mul(Cast(q), scale)`` with ``scale`` broadcast along
        one axis (``[rows, 1]`` or ``[1, cols]``) or a single value."""
        used = {q.data for q in found.values()}
        casts = {
            node.output[0]: node.input[0]
            for node in nodes
            if node.op_type == "Cast" and node.input and node.output and self._is_quantised(node.input[0])
        }
        out: dict[str, _Quantised] = {}
        for node in nodes:
            if node.op_type != "Mul" or len(node.input) != 2 or not node.output:
                continue
            for cast, scale in (node.input, node.input[::-1]):
                data = casts.get(cast)
                if data is None or data in used or scale not in self._entries:
                    continue
                shape, scale_shape = self._entries[data].shape, self._entries[scale].shape
                axes = [i for i, d in enumerate(scale_shape) if d != 1]
                if int(np.prod(scale_shape, dtype=np.int64)) == 1:
                    axis = None
                elif (
                    len(scale_shape) == len(shape)
                    and len(axes) == 1
                    and scale_shape[axes[0]] == shape[axes[0]]
                ):
                    axis = axes[0]
                else:
                    continue
                how = "per tensor" if axis is None else f"per axis {axis}"
                note = f"Mul(Cast({data}), {scale}): {self._entries[data].dtype} * scale, {how}"
                out[node.output[0]] = _Quantised(data, scale, None, axis, 0, note)
                used.add(data)
        return out

    def _is_quantised(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and entry.dtype.kind in _QUANTISED_KINDS and entry.dtype.itemsize <= 2

    def _ort_axis(self, data: str, scale: str) -> int | None:
        """onnxruntime saves one scale, or one per output channel: axis 1 for MatMul/Gemm weights first."""
        shape, count = self._entries[data].shape, int(np.prod(self._entries[scale].shape, dtype=np.int64))
        if count == 1:
            return None
        for axis in (1, 0):
            if len(shape) > axis and shape[axis] == count:
                return axis
        raise FormatError(
            self.path, f"scale {scale!r} has {count} values, which fit no axis of {data!r} {shape}"
        )

    def _list(self) -> list[TensorInfo]:
        aux = {n for q in self._quantised.values() for n in (q.data, q.scale, q.zero_point) if n}
        by_data = {q.data: name for name, q in self._quantised.items()}
        infos = []
        for name, entry in self._entries.items():
            info = self._info(name, entry, aux=name in aux)
            infos.append(info)
            if name in by_data:  # the dequantised tensor right after its stored integers
                virtual = by_data[name]
                infos.append(
                    TensorInfo(
                        virtual,
                        entry.shape,
                        info.dtype,
                        info.nbytes,
                        self.path,
                        note=self._quantised[virtual].note,
                    )
                )
        return infos

    def _info(self, name: str, entry: _Entry, aux: bool) -> TensorInfo:
        numel = int(np.prod(entry.shape, dtype=np.int64))
        note = "" if entry.where == "initializer" else f"from {entry.where}"
        if entry.indices is not None:
            stored = int(np.prod(entry.proto.dims, dtype=np.int64))
            note = f"from {entry.where}: {stored} of {numel} values stored, zeros elsewhere"
        elif self._is_external(entry):
            note = f"external data in {self._external_fields(entry).get('location', '?')}"
        return TensorInfo(
            name,
            entry.shape,
            dtype_name(entry.dtype),
            numel * entry.dtype.itemsize,
            self.path,
            aux=aux,
            note=note,
        )

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    # -- reading -------------------------------------------------------------------------------
    def _is_external(self, entry: _Entry) -> bool:
        return entry.proto.data_location == self._onnx.TensorProto.EXTERNAL

    def _external_fields(self, entry: _Entry) -> dict[str, str]:
        return {item.key: item.value for item in entry.proto.external_data}

    def read(self, name: str) -> np.ndarray:
        if name in self._quantised:
            name = self._quantised[name].data
        entry = self._entries[name]
        if entry.indices is not None:
            return self._densify(name, entry)
        if self._is_external(entry):
            return self._read_external(name, entry)
        return self._to_array(name, entry.proto)

    def _to_array(self, name: str, proto: Any) -> np.ndarray:
        try:
            return self._numpy_helper.to_array(proto)
        except Exception as exc:  # onnx raises ValueError/TypeError for inconsistent raw data
            raise FormatError(self.path, f"tensor {name!r}: {exc}".splitlines()[0]) from None

    def _densify(self, name: str, entry: _Entry) -> np.ndarray:
        """A sparse tensor as a dense array; its indices are flat ``[nnz]`` or coordinates ``[nnz, rank]``."""
        stored = _Entry(entry.proto, tuple(int(d) for d in entry.proto.dims), entry.dtype, entry.where)
        values = (
            self._read_external(name, stored)
            if self._is_external(stored)
            else self._to_array(name, entry.proto)
        )
        indices = self._to_array(name, entry.indices)
        shape, nnz = entry.shape, values.size
        if values.ndim != 1 or indices.dtype != np.int64 or indices.shape not in ((nnz,), (nnz, len(shape))):
            raise FormatError(
                self.path,
                f"sparse tensor {name!r}: {nnz} values need int64 indices [{nnz}] or [{nnz}, {len(shape)}],"
                f" got {indices.dtype} {list(indices.shape)}",
            )
        bounds = np.array(shape if indices.ndim == 2 else (int(np.prod(shape, dtype=np.int64)),))
        if nnz and (indices.min() < 0 or np.any(indices.reshape(nnz, -1) >= bounds)):
            raise FormatError(self.path, f"sparse tensor {name!r}: an index lies outside its shape {shape}")
        dense = np.zeros(shape, dtype=entry.dtype)
        if indices.ndim == 1:
            dense.reshape(-1)[indices] = values
        else:
            dense[tuple(indices.T)] = values
        return dense

    def _read_external(self, name: str, entry: _Entry) -> np.ndarray:
        fields = self._external_fields(entry)
        location = fields.get("location", "")
        if not isinstance(location, str):
            raise FormatError(self.path, f"tensor {name!r}: external data location {location!r} is not UTF-8")
        if not location or "\0" in location:
            raise FormatError(
                self.path, f"tensor {name!r}: external data location {location!r} is not a file name"
            )
        if Path(location).is_absolute():
            raise FormatError(
                self.path, f"tensor {name!r}: external data location {location!r} leaves the model's folder"
            )
        target = contained(
            self.path.parent / location, self.path.parent, f"external data of {self.path.name}"
        )
        if entry.dtype.itemsize == 0 or entry.dtype.name in ("int4", "uint4", "float4_e2m1fn"):
            raise UnsupportedError(
                self.path, f"tensor {name!r}: external data of packed {entry.dtype} is not read"
            )
        if target not in self._maps:
            if not target.is_file():
                raise NotFoundError(target, f"external data file of {self.path.name} is missing")
            self._maps[target] = open_mapped(target)
        mapped = self._maps[target]
        try:
            offset = int(fields.get("offset", 0))
            expected = int(np.prod(entry.shape, dtype=np.int64)) * entry.dtype.itemsize
            length = int(fields.get("length", expected))
        except ValueError:
            raise FormatError(
                self.path, f"tensor {name!r}: external data offset/length are not integers"
            ) from None
        if length != expected:
            raise FormatError(
                self.path,
                f"tensor {name!r}: external length {length} bytes, shape {entry.shape} needs {expected}",
            )
        if offset < 0 or offset + length > mapped.size:
            raise FormatError(
                self.path,
                f"tensor {name!r}: external bytes [{offset}, {offset + length}) lie outside {location} ({mapped.size} bytes)",
            )
        return mapped.view(offset, entry.dtype, entry.shape)

    def read_float(self, name: str, index: int | None = None) -> np.ndarray | None:
        values = self._dequantised(name)
        return values if values is None or index is None else values[index]

    def _dequantised(self, name: str) -> np.ndarray | None:
        quant = self._quantised.get(name)
        if quant is None:
            return None
        values = self.read(quant.data).astype(np.float32)
        scale = self.read(quant.scale).astype(np.float32)
        zero = self.read(quant.zero_point).astype(np.float32) if quant.zero_point else np.zeros_like(scale)
        if zero.shape != scale.shape:
            raise FormatError(
                self.path, f"tensor {name!r}: zero point {zero.shape} and scale {scale.shape} differ in shape"
            )
        if quant.axis is None:
            return (values - zero.reshape(())) * scale.reshape(())
        axis, shape = quant.axis, values.shape
        if quant.block_size:
            # Blocked quantisation: one scale per block_size consecutive elements along ``axis``.
            expected = shape[:axis] + (-(-shape[axis] // quant.block_size),) + shape[axis + 1 :]
            if scale.shape != expected:
                raise FormatError(
                    self.path,
                    f"tensor {name!r}: block scale {scale.shape} does not tile {shape} (expected {expected})",
                )
            block_of = np.arange(shape[axis]) // quant.block_size
            return (values - zero.take(block_of, axis=axis)) * scale.take(block_of, axis=axis)
        if scale.size != shape[axis]:
            raise FormatError(
                self.path, f"tensor {name!r}: {scale.size} scales for axis {axis} of length {shape[axis]}"
            )
        broadcast = [1] * values.ndim
        broadcast[axis] = shape[axis]
        return (values - zero.reshape(broadcast)) * scale.reshape(broadcast)

    def close(self) -> None:
        for mapped in self._maps.values():
            mapped.close()
        self._maps = {}
