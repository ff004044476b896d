"""Hostile GGUF headers: nested arrays, counts that overshoot the file, huge honest arrays, an
architecture that is not a string, zero-size quantised tensors. Each must read or be one line."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from scratchcheck.errors import FormatError
from scratchcheck.io.gguf import GGUFFile
from scratchcheck.io.limits import MAX_NESTING

UINT8, UINT32, STRING, ARRAY = 0, 4, 8, 9


def text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(kv: list[tuple[str, bytes]], tensors: bytes = b"", n_tensors: int = 0) -> bytes:
    """A GGUF v3 file from already-encoded key/value records (type + value) and tensor infos."""
    body = b"".join(text(key) + record for key, record in kv)
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kv)) + body + tensors


def nested_array(depth: int) -> bytes:
    record = struct.pack("<I", UINT32) + struct.pack("<I", 7)
    for _ in range(depth):
        record = struct.pack("<IIQ", ARRAY, *struct.unpack("<I", record[:4]), 1) + record[4:]
    return record


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    return path


def test_nested_arrays_within_the_limit_read(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes([("x", nested_array(3))]))
    assert GGUFFile(path).metadata["x"] == [[[7]]]


def test_arrays_nested_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes([("x", nested_array(MAX_NESTING * 50))]))
    with pytest.raises(FormatError, match=f"deeper than {MAX_NESTING}") as caught:
        GGUFFile(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("element", [UINT8, STRING, ARRAY])
def test_array_count_overshooting_the_file(tmp_path: Path, element: int) -> None:
    record = struct.pack("<IIQ", ARRAY, element, 2**60) + b"\0" * 64
    path = write(tmp_path, gguf_bytes([("x", record)]))
    with pytest.raises(FormatError, match="past the end of the file") as caught:
        GGUFFile(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_counts_of_keys_and_tensors_overshooting_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40))
    with pytest.raises(FormatError, match="past the end of the file"):
        GGUFFile(path)


def test_a_large_honest_array_is_read_in_one_go(tmp_path: Path) -> None:
    values = np.arange(2_000_000, dtype=np.uint8)  # the gguf package made 2M numpy objects of this
    record = struct.pack("<IIQ", ARRAY, UINT8, values.size) + values.tobytes()
    tokens = struct.pack("<IIQ", ARRAY, STRING, 3) + text("a") + text("b") + text("<s>")
    path = write(tmp_path, gguf_bytes([("x", record), ("tokenizer.ggml.tokens", tokens)]))
    metadata = GGUFFile(path).metadata
    assert metadata["x"] == values.tolist() and metadata["tokenizer.ggml.tokens"] == ["a", "b", "<s>"]


def test_architecture_stored_as_an_array(tmp_path: Path) -> None:
    record = struct.pack("<IIQ", ARRAY, STRING, 1) + text("llama")
    path = write(tmp_path, gguf_bytes([("general.architecture", record)]))
    with pytest.raises(FormatError, match="general.architecture' is not a string"):
        GGUFFile(path)


def tensor_info(name: str, dims_fastest_first: tuple[int, ...], kind: int) -> bytes:
    dims = struct.pack(f"<{len(dims_fastest_first)}Q", *dims_fastest_first)
    return text(name) + struct.pack("<I", len(dims_fastest_first)) + dims + struct.pack("<IQ", kind, 0)


def test_quantised_tensor_with_a_zero_dimension(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes([], tensor_info("w", (64, 0), Q.Q8_0), n_tensors=1))
    reader = GGUFFile(path)
    assert reader.infos()[0].shape == (0, 64)
    assert reader.read_float("w").shape == (0, 64)


def test_tensor_dims_beyond_the_limits(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes([], tensor_info("w", (2**62, 2**62), Q.F32), n_tensors=1))
    with pytest.raises(FormatError, match="claims over"):
        GGUFFile(path)
