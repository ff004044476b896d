"""The ONNX reader: initializers of every dtype, subgraph constants, external data, int8 weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporters import export_onnx, quantise_int8_rows
from scratchcheck.errors import FormatError, NotFoundError, UnsupportedError
from scratchcheck.io.base import Checkpoint
from scratchcheck.io.onnx import OnnxFile
from scratchcheck.io.resolve import open_model

RNG = np.random.default_rng(11)


def save(path: Path, nodes: list, initializers: list, opset: int = 17, outputs: list | None = None) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        outputs or [helper.make_tensor_value_info("x_out", TensorProto.FLOAT, ["n"])],
        initializers,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def test_every_dtype_reads_back_bit_exact(tmp_path: Path, dtype_samples, assert_same) -> None:
    inits = [numpy_helper.from_array(array, name) for name, array in dtype_samples.items()]
    reader = OnnxFile(save(tmp_path / "m.onnx", [], inits))
    assert {i.name: i.dtype for i in reader.infos()} == {name: name for name in dtype_samples}
    for name, expected in dtype_samples.items():
        assert_same(reader.read(name), expected)


def test_constants_in_nested_subgraphs(tmp_path: Path) -> None:
    a, b, c = (RNG.standard_normal((3, 4)).astype(np.float32) for _ in range(3))
    inner_if = helper.make_node(
        "If",
        ["cond_in"],
        ["y"],
        name="inner",
        then_branch=helper.make_graph(
            [helper.make_node("Constant", [], ["deep.const"], value=numpy_helper.from_array(c, "c"))],
            "then",
            [],
            [helper.make_tensor_value_info("deep.const", TensorProto.FLOAT, [3, 4])],
        ),
        else_branch=helper.make_graph(
            [helper.make_node("Identity", ["loop.init"], ["z"])],
            "else",
            [],
            [helper.make_tensor_value_info("z", TensorProto.FLOAT, [3, 4])],
        ),
    )
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), inner_if],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4]),
        ],
        [numpy_helper.from_array(b, "loop.init")],
    )
    loop = helper.make_node("Loop", ["", "cond"], ["scan_y"], name="loop", body=body)
    main_const = helper.make_node("Constant", [], ["main.const"], value=numpy_helper.from_array(a, "a"))
    outputs = [helper.make_tensor_value_info("scan_y", TensorProto.FLOAT, None)]
    path = save(
        tmp_path / "m.onnx",
        [main_const, loop],
        [numpy_helper.from_array(np.array(True), "cond")],
        outputs=outputs,
    )
    reader = OnnxFile(path)
    infos = {i.name: i for i in reader.infos()}
    assert set(infos) == {"cond", "main.const", "loop.init", "deep.const"}
    np.testing.assert_array_equal(reader.read("main.const"), a)
    np.testing.assert_array_equal(reader.read("loop.init"), b)
    np.testing.assert_array_equal(reader.read("deep.const"), c)
    assert infos["deep.const"].note == "from loop.body/inner.then_branch/Constant Constant_0"


def test_shadowed_names_in_a_subgraph_are_kept_both(tmp_path: Path) -> None:
    outer, inner = np.zeros(2, np.float32), np.ones(2, np.float32)
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["o"])],
        "b",
        [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])],
    )
    branch.initializer.append(numpy_helper.from_array(inner, "w"))
    node = helper.make_node("If", ["c"], ["o"], name="sel", then_branch=branch, else_branch=branch)
    reader = OnnxFile(save(tmp_path / "m.onnx", [node], [numpy_helper.from_array(outer, "w")]))
    np.testing.assert_array_equal(reader.read("w"), outer)
    np.testing.assert_array_equal(reader.read("sel.then_branch/w"), inner)
    assert "sel.else_branch/w" in {i.name for i in reader.infos()}


def sparse_model(tmp_path: Path, indices: np.ndarray, values: np.ndarray, dims: list[int]) -> Path:
    """One sparse initializer ``w`` and one sparse ``Constant`` ``c`` with the same contents."""

    def sparse(name: str):
        return helper.make_sparse_tensor(
            numpy_helper.from_array(values, name), numpy_helper.from_array(indices, f"{name}.idx"), dims
        )

    const = helper.make_node("Constant", [], ["c"], sparse_value=sparse("c"))
    graph = helper.make_graph(
        [const],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, dims)],
        sparse_initializer=[sparse("w")],
    )
    path = tmp_path / "sparse.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("coordinates", [False, True], ids=["flat-indices", "coordinate-indices"])
def test_sparse_tensors_are_listed_and_densified(tmp_path: Path, coordinates: bool) -> None:
    dense = np.zeros((4, 5), np.float32)
    flat = np.array([1, 7, 12, 19])
    dense.reshape(-1)[flat] = [0.5, -2.0, 3.25, 9.0]
    indices = np.stack(np.unravel_index(flat, dense.shape), axis=1) if coordinates else flat
    reader = OnnxFile(sparse_model(tmp_path, indices.astype(np.int64), dense.reshape(-1)[flat], [4, 5]))
    infos = {i.name: i for i in reader.infos()}
    assert set(infos) == {"w", "c"}
    for name in ("w", "c"):
        assert infos[name].shape == (4, 5) and infos[name].nbytes == dense.nbytes
        np.testing.assert_array_equal(reader.read(name), dense)
    assert infos["w"].note == "from sparse initializer: 4 of 20 values stored, zeros elsewhere"
    assert infos["c"].note.startswith("from sparse Constant")


@pytest.mark.parametrize(
    "indices, problem",
    [
        (np.array([1, 20]), "an index lies outside its shape (4, 5)"),
        (np.array([[0, 1], [4, 0]]), "an index lies outside its shape (4, 5)"),
        (np.array([-1, 3]), "an index lies outside its shape (4, 5)"),
        (np.array([[1, 2, 3]]), "2 values need int64 indices [2] or [2, 2], got int64 [1, 3]"),
    ],
)
def test_sparse_tensors_with_lying_indices(tmp_path: Path, indices: np.ndarray, problem: str) -> None:
    reader = OnnxFile(sparse_model(tmp_path, indices.astype(np.int64), np.ones(2, np.float32), [4, 5]))
    with pytest.raises(FormatError, match="sparse tensor 'w'") as caught:
        reader.read("w")
    assert problem in str(caught.value) and "sparse.onnx" in str(caught.value)


# -- external data --------------------------------------------------------------------------------
def external_model(tmp_path: Path, location: str, offset: int = 64, length: int | None = None) -> Path:
    weight = np.arange(12, dtype=np.float32).reshape(3, 4)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64 + weight.tobytes())
    tensor = numpy_helper.from_array(weight, "w")
    onnx.external_data_helper.set_external_data(tensor, location, offset, 48 if length is None else length)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    return save(tmp_path / "m.onnx", [], [tensor])


def test_external_data_is_a_memory_mapped_view(tmp_path: Path) -> None:
    reader = OnnxFile(external_model(tmp_path, "weights.bin"))
    array = reader.read("w")
    np.testing.assert_array_equal(array, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert array.base is not None and not array.flags.writeable
    assert reader.infos()[0].note == "external data in weights.bin"


@pytest.mark.parametrize(
    ("location", "offset", "length", "error", "problem"),
    [
        ("weights.bin", 64, 40, FormatError, "external length 40 bytes"),
        ("weights.bin", 100, 48, FormatError, r"lie outside weights.bin \(112 bytes\)"),
        ("../weights.bin", 64, 48, FormatError, "outside the model folder"),
        ("/etc/passwd", 0, 48, FormatError, "leaves the model's folder"),
        ("absent.bin", 64, 48, NotFoundError, "external data file of m.onnx is missing"),
    ],
)
def test_lying_external_data(
    tmp_path: Path, location: str, offset: int, length: int, error: type, problem: str
) -> None:
    reader = OnnxFile(external_model(tmp_path, location, offset, length))
    with pytest.raises(error, match=problem) as caught:
        reader.read("w")
    assert "\n" not in str(caught.value)


# -- weight-only int8 -----------------------------------------------------------------------------
def dq_model(
    tmp_path: Path, q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, opset: int = 17, **attrs: int
) -> Path:
    inputs = ["w_q", "w_scale"] + (["w_zp"] if zero is not None else [])
    inits = [numpy_helper.from_array(q, "w_q"), numpy_helper.from_array(scale, "w_scale")]
    if zero is not None:
        inits.append(numpy_helper.from_array(zero, "w_zp"))
    node = helper.make_node("DequantizeLinear", inputs, ["onnx::MatMul_470"], **attrs)
    outputs = [helper.make_tensor_value_info("onnx::MatMul_470", TensorProto.FLOAT, list(q.shape))]
    return save(tmp_path / "m.onnx", [node], inits, opset=opset, outputs=outputs)


def test_dequantize_linear_per_tensor_uint8(tmp_path: Path) -> None:
    q = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    checkpoint = open_model(dq_model(tmp_path, q, np.array(0.05, np.float32), np.array(128, np.uint8)))
    np.testing.assert_array_equal(
        checkpoint.read_float("onnx::MatMul_470"), (q.astype(np.float32) - 128) * np.float32(0.05)
    )
    assert [i.name for i in checkpoint.weights()] == ["onnx::MatMul_470"]
    assert all(checkpoint.info(n).aux for n in ("w_q", "w_scale", "w_zp"))
    info = checkpoint.info("onnx::MatMul_470")
    assert info.dtype == "U8" and "DequantizeLinear(w_q)" in info.note and "per tensor" in info.note
    np.testing.assert_array_equal(checkpoint.read("onnx::MatMul_470"), q)  # as stored


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_dequantize_linear_per_axis_int8(tmp_path: Path, axis: int) -> None:
    q = RNG.integers(-128, 128, (4, 6), dtype=np.int8)
    length = q.shape[axis]
    scale = RNG.uniform(0.01, 0.1, length).astype(np.float32)
    zero = RNG.integers(-3, 3, length, dtype=np.int8)
    checkpoint = open_model(dq_model(tmp_path, q, scale, zero, axis=axis))
    shape = [1, 1]
    shape[axis] = length
    expected = (q.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)
    np.testing.assert_array_equal(checkpoint.read_float("onnx::MatMul_470"), expected)


def test_dequantize_linear_blocked(tmp_path: Path) -> None:
    q = RNG.integers(-128, 128, (4, 10), dtype=np.int8)
    scale = RNG.uniform(0.01, 0.1, (4, 3)).astype(np.float32)  # blocks of 4 along axis 1, ragged last
    checkpoint = open_model(dq_model(tmp_path, q, scale, None, opset=21, axis=1, block_size=4))
    expected = q.astype(np.float32) * np.repeat(scale, 4, axis=1)[:, :10]
    np.testing.assert_array_equal(checkpoint.read_float("onnx::MatMul_470"), expected)


def test_dequantize_linear_with_scales_that_do_not_fit(tmp_path: Path) -> None:
    q = np.zeros((4, 6), np.int8)
    checkpoint = open_model(dq_model(tmp_path, q, np.ones(5, np.float32), None, axis=0))
    with pytest.raises(FormatError, match="5 scales for axis 0 of length 4"):
        checkpoint.read_float("onnx::MatMul_470")


def test_onnxruntime_dynamic_quantisation_names(tmp_path: Path) -> None:
    q = RNG.integers(0, 256, (6, 4), dtype=np.uint8)
    scale = RNG.uniform(0.01, 0.1, 4).astype(np.float32)  # per output channel of a [in, out] MatMul weight
    zero = RNG.integers(100, 150, 4).astype(np.uint8)
    inits = [
        numpy_helper.from_array(q, "fc.weight_quantized"),
        numpy_helper.from_array(scale, "fc.weight_scale"),
        numpy_helper.from_array(zero, "fc.weight_zero_point"),
    ]
    checkpoint = open_model(save(tmp_path / "m.onnx", [], inits))
    expected = (q.astype(np.float32) - zero.astype(np.float32)) * scale
    np.testing.assert_array_equal(checkpoint.read_float("fc.weight"), expected)
    assert [i.name for i in checkpoint.weights()] == ["fc.weight"]
    assert "per axis 1" in checkpoint.info("fc.weight").note


# -- failures -------------------------------------------------------------------------------------
def test_garbage_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage")
    with pytest.raises(FormatError, match="not a readable ONNX model"):
        OnnxFile(path)


def test_missing_onnx_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "m.onnx", [], [numpy_helper.from_array(np.zeros(2, np.float32), "w")])
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(UnsupportedError, match=r"install scratchcheck\[onnx\]"):
        OnnxFile(path)


# -- an export of the real all-MiniLM-L6-v2 -------------------------------------------------------
def test_minilm_export_reads_back(tmp_path: Path, minilm: Checkpoint) -> None:
    names = [i.name for i in minilm.weights()]
    layer0 = [n for n in names if n.startswith("encoder.layer.0.")]
    quantised = "encoder.layer.1.attention.self.value.weight"
    anonymous = "encoder.layer.1.intermediate.dense.weight"
    path = tmp_path / "onnx" / "model.onnx"
    path.parent.mkdir()
    written = export_onnx(
        minilm, path, subgraph=layer0[:6], external=layer0[6:], int8=[quantised], anonymous=[anonymous]
    )
    onnx.checker.check_model(str(path), full_check=True)
    export = open_model(tmp_path)  # a repo folder with the model in onnx/, as on the Hub
    assert export.format == "onnx"
    assert export.num_params == minilm.num_params
    for exported, original in written.items():
        info = export.info(exported)
        if info.aux:
            continue
        expected = minilm.read_float(original)
        actual = export.read_float(exported)
        if exported.startswith("onnx::MatMul_"):
            actual = actual.T  # stored in MatMul layout
            assert original == anonymous
        if exported == quantised:
            _, scale = quantise_int8_rows(expected)
            assert np.all(np.abs(actual - expected) <= scale[:, None] / 2 + 1e-7)
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=exported)
    notes = {i.name: i.note for i in export.tensors()}
    assert notes[layer0[0]].startswith("from weights_if.then_branch/")
    assert notes[layer0[1]].startswith("from weights_if.else_branch/Constant")
    assert notes[layer0[6]] == "external data in model.data"
