"""Hostile safetensors, npz, ONNX and FP8 files: each case is the minimal reproducer of a crash or a
memory blow-up the fuzzer found, and must now be a one-line error naming the file."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

from scratchcheck.errors import FormatError, ScratchcheckError, UnsupportedError
from scratchcheck.io.limits import MAX_NESTING
from scratchcheck.io.npz import NpzFile
from scratchcheck.io.onnx import OnnxFile
from scratchcheck.io.resolve import open_model
from scratchcheck.io.safetensors import SafetensorsFile


def one_line(caught: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def safetensors_bytes(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


# -- safetensors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", f"nests deeper than {MAX_NESTING}"),
        (b'{"__metadata__": {"k": ' + b"[" * 100 + b"]" * 100 + b"}}", f"nests deeper than {MAX_NESTING}"),
        (
            b'{"w": {"dtype": "F32", "shape": [1' + b"0" * 5000 + b'], "data_offsets": [0, 0]}}',
            "not readable",
        ),
        (b'{"w": {"dtype": "F32", "shape": [9223372036854775808], "data_offsets": [0, 0]}}', "claims over"),
        # 2**62 x 4 x 4 bytes wraps to 0 in int64 and used to pass the byte-range check.
        (
            b'{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}',
            "claims over",
        ),
        (
            b'{"w": {"dtype": "F32", "shape": [0, 18446744073709551616], "data_offsets": [0, 0]}}',
            "claims over",
        ),
    ],
    ids=["deep-header", "deep-metadata", "huge-literal", "dim-2**63", "wrapping-numel", "zero-times-huge"],
)
def test_hostile_safetensors_headers(tmp_path: Path, header: bytes, problem: str) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors_bytes(header))
    with pytest.raises(FormatError, match=problem) as caught:
        SafetensorsFile(path)
    one_line(caught, path)


def test_deeply_nested_shard_index(tmp_path: Path) -> None:
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "a.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"w": "a.safetensors"}, "x": ' + "[" * 10000 + "]" * 10000 + "}")
    with pytest.raises(FormatError, match="nests deeper") as caught:
        open_model(tmp_path)
    one_line(caught, index)


# -- npz ------------------------------------------------------------------------------------------
def npz_with_header(path: Path, header: dict, data: bytes, method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive, archive.open("w.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(data)
    return path


@pytest.mark.parametrize(
    ("descr", "shape", "nbytes", "error", "problem"),
    [
        ("<f4", (-1, -4), 16, FormatError, "non-negative"),  # -1 x -4 = 4 elements, bytes match
        ("<U4", (2,), 32, UnsupportedError, "not a plain numeric array"),
        ("|S4", (2,), 8, UnsupportedError, "not a plain numeric array"),
        ("|V8", (2,), 16, UnsupportedError, "not a plain numeric array"),
    ],
)
def test_npz_shapes_and_dtypes(
    tmp_path: Path, descr: str, shape: tuple, nbytes: int, error: type, problem: str
) -> None:
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    path = npz_with_header(tmp_path / "m.npz", header, b"\0" * nbytes)
    with pytest.raises(error, match=problem) as caught:
        NpzFile(path)
    one_line(caught, path)


def test_npz_decompression_bomb_is_refused_unread(tmp_path: Path) -> None:
    header = {"descr": "<f4", "fortran_order": False, "shape": (10 << 20,)}
    path = npz_with_header(tmp_path / "m.npz", header, b"\0" * (40 << 20), zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match="decompression limit") as caught:
        NpzFile(path).read("w")
    one_line(caught, path)


def test_npz_corrupt_deflate_stream(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez_compressed(path, w=np.arange(4096, dtype=np.float32))
    data = bytearray(path.read_bytes())
    data[200:260] = b"\x17" * 60
    path.write_bytes(bytes(data))
    with pytest.raises(ScratchcheckError) as caught:
        reader = NpzFile(path)
        reader.read("w")
    one_line(caught, path)


# -- ONNX -----------------------------------------------------------------------------------------
def onnx_file(path: Path, nodes: list, initializers: list, sparse: list | None = None) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializers,
        sparse_initializer=sparse or [],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


def test_sparse_initializer_too_big_to_densify(tmp_path: Path) -> None:
    values = numpy_helper.from_array(np.ones(1, np.float32), "s")
    indices = numpy_helper.from_array(np.zeros(1, np.int64), "s_idx")
    sparse = helper.make_sparse_tensor(values, indices, [60000, 60000])
    path = onnx_file(tmp_path / "m.onnx", [], [], [sparse])
    with pytest.raises(UnsupportedError, match="over the") as caught:
        OnnxFile(path)
    one_line(caught, path)


def dequantize(tmp_path: Path, **attrs: object) -> Path:
    q = numpy_helper.from_array(np.arange(8, dtype=np.int8).reshape(2, 4), "q")
    scale = numpy_helper.from_array(np.ones((2, 1), np.float32), "s")
    node = helper.make_node("DequantizeLinear", ["q", "s"], ["w"], **attrs)
    return onnx_file(tmp_path / "m.onnx", [node], [q, scale])


def test_huge_block_size_does_not_expand_the_scales(tmp_path: Path) -> None:
    checkpoint = open_model(dequantize(tmp_path, axis=1, block_size=10**12))
    np.testing.assert_array_equal(checkpoint.read_float("w"), np.arange(8, dtype=np.float32).reshape(2, 4))


@pytest.mark.parametrize("axis", ["1", [1, 0], 1.5])
def test_dequantize_axis_that_is_not_an_integer(tmp_path: Path, axis: object) -> None:
    path = dequantize(tmp_path, axis=axis)
    with pytest.raises(FormatError, match="not integers") as caught:
        OnnxFile(path)
    one_line(caught, path)


# -- FP8 block scales -----------------------------------------------------------------------------
def test_empty_fp8_block_scale(tmp_path: Path) -> None:
    weights = {"w": np.zeros((4, 4), ml_dtypes.float8_e4m3fn), "w_scale_inv": np.zeros((0, 0), np.float32)}
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(FormatError, match="is empty") as caught:
        open_model(tmp_path).read_float("w")
    one_line(caught, tmp_path / "model.safetensors")


def test_declared_huge_fp8_block_does_not_expand_the_scales(tmp_path: Path) -> None:
    weight = np.ones((3, 5), ml_dtypes.float8_e4m3fn)
    scale = np.array([[1.0], [2.0], [4.0]], np.float32)  # one block per row, 10**12 columns wide
    save_file({"w": weight, "w_scale_inv": scale}, str(tmp_path / "model.safetensors"))
    config = {"quantization_config": {"weight_block_size": [1, 10**12]}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(open_model(tmp_path).read_float("w"), np.repeat(scale, 5, axis=1))


def test_npy_header_that_does_not_tokenize(tmp_path: Path) -> None:
    # numpy's header parser raised tokenize.TokenError for an unterminated dict (found by the fuzzer).
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,"
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + 1) + header + b"\n")
    with pytest.raises(FormatError, match="bad .npy header") as caught:
        NpzFile(tmp_path / "m.npz")
    one_line(caught, tmp_path / "m.npz")


def test_shard_index_naming_a_list(tmp_path: Path) -> None:
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "a.safetensors"))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"w": ["a.safetensors"]}}))
    with pytest.raises(FormatError, match="unsafe shard path") as caught:
        open_model(tmp_path)
    one_line(caught, index)
