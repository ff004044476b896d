"""Write any ``Checkpoint`` as GGUF or ONNX, the way converters in the wild do, for round-trip tests.

Both exporters return ``{name in the export: name in the checkpoint}`` so a test can pair tensors.

``export_gguf`` names tensors with gguf's own ``TensorNameMap`` for the chosen architecture
(``encoder.layer.0.attention.self.query.weight`` -> ``blk.0.attn_q.weight``); names the map does not
know stay as in the checkpoint. With ``permute_qk`` it reorders ``attn_q``/``attn_k`` rows exactly as
llama.cpp's converter does for llama-family rotary, and records the head counts in the metadata.

``export_onnx`` puts each tensor where the caller says: a main-graph initializer (default), inside an
``If`` body (alternately a branch initializer and a ``Constant`` node), in one external-data file,
int8 behind a ``DequantizeLinear`` (or onnxruntime's dynamic ``_quantized``/``_scale``/``_zero_point``
initializers), or transposed under an anonymous ``onnx::MatMul_<n>`` name as torch.onnx does for
linear weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import gguf
import numpy as np

from scratchcheck.io.base import Checkpoint
from scratchcheck.io.gguf import permute_rows

_BLOCK = re.compile(r"\.(\d+)\.")


def _num_blocks(names: Iterable[str]) -> int:
    found = [int(m.group(1)) for name in names if (m := _BLOCK.search(name))]
    return max(found) + 1 if found else 0


def export_gguf(
    checkpoint: Checkpoint,
    path: Path,
    *,
    quant: str | None = None,
    arch: str = "bert",
    permute_qk: bool = False,
    n_head: int | None = None,
    n_head_kv: int | None = None,
    names: str = "gguf",
) -> dict[str, str]:
    """Write ``checkpoint`` as a GGUF file; ``quant`` (e.g. ``"Q8_0"``) applies to every float
    tensor of rank >= 2 whose rows split into whole blocks, the rest stays F32 (as llama.cpp does
    for norms and biases). ``names="hf"`` keeps the checkpoint's names."""
    arch_enum = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch]
    weights = checkpoint.weights()
    tensor_map = gguf.get_tensor_name_map(arch_enum, _num_blocks(info.name for info in weights))
    qtype = gguf.GGMLQuantizationType[quant] if quant else None
    if permute_qk and not n_head:
        raise ValueError("permute_qk needs n_head (and n_head_kv for grouped-query attention)")
    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(_num_blocks(info.name for info in weights))
    if n_head:
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_head_kv or n_head)
    written: dict[str, str] = {}
    for info in weights:
        name = info.name
        if names == "gguf":
            name = tensor_map.get_name(info.name, try_suffixes=(".weight", ".bias")) or info.name
        if name in written:
            raise ValueError(f"{info.name} and {written[name]} both map to {name}")
        array = checkpoint.read(info.name)
        if array.dtype.kind == "f" or info.dtype == "BF16":
            array = np.ascontiguousarray(checkpoint.read_float(info.name), dtype=np.float32)
            if permute_qk and re.fullmatch(r"blk\.\d+\.attn_[qk]\.(weight|bias)", name):
                heads = n_head if ".attn_q." in name else (n_head_kv or n_head)
                array = permute_rows(array, heads)
            if (
                qtype is not None
                and array.ndim >= 2
                and array.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0
            ):
                writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
                written[name] = info.name
                continue
        writer.add_tensor(name, np.ascontiguousarray(array))
        written[name] = info.name
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def quantise_int8_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per row (axis 0), as weight-only QDQ exports store it."""
    flat = weight.reshape(weight.shape[0], -1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(weight.shape), scale.astype(np.float32)


def quantise_uint8_tensor(weight: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """Asymmetric uint8 with one scale and zero point, as onnxruntime's dynamic quantizer writes."""
    low, high = min(float(weight.min()), 0.0), max(float(weight.max()), 0.0)
    scale = np.float32(max(high - low, 1e-12) / 255.0)
    zero = np.uint8(np.clip(np.rint(-low / scale), 0, 255))
    q = np.clip(np.rint(weight / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero


def export_onnx(
    checkpoint: Checkpoint,
    path: Path,
    *,
    subgraph: Iterable[str] = (),
    external: Iterable[str] = (),
    int8: Iterable[str] = (),
    int8_style: str = "qdq",
    anonymous: Iterable[str] = (),
    opset: int = 17,
) -> dict[str, str]:
    """Write ``checkpoint`` as an ONNX model with the given tensors placed as described above.

    The external-data file is ``<stem>.data`` beside ``path``. Anonymous tensors are stored
    transposed (``[in, out]``, the MatMul layout) under ``onnx::MatMul_<n>``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    subgraph, external, int8, anonymous = set(subgraph), set(external), set(int8), set(anonymous)
    main_inits, then_inits, else_nodes, nodes, outputs = [], [], [], [], []
    written: dict[str, str] = {}
    data_path = path.with_name(path.stem + ".data")
    data_file = open(data_path, "wb") if external else None  # noqa: SIM115 - closed below
    for info in checkpoint.weights():
        name = info.name
        array = np.ascontiguousarray(checkpoint.read(name))
        if name in int8:
            weight = np.asarray(checkpoint.read_float(name), dtype=np.float32)
            if int8_style == "qdq":
                q, scale = quantise_int8_rows(weight)
                zero = np.zeros(scale.shape, dtype=np.int8)
            else:
                q, scale, zero = quantise_uint8_tensor(weight)
            raw, scale_name, zero_name = f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"
            main_inits += [
                numpy_helper.from_array(q, raw),
                numpy_helper.from_array(np.asarray(scale), scale_name),
                numpy_helper.from_array(np.asarray(zero), zero_name),
            ]
            written.update({raw: name, scale_name: name, zero_name: name, name: name})
            if int8_style == "qdq":
                nodes.append(
                    helper.make_node("DequantizeLinear", [raw, scale_name, zero_name], [name], axis=0)
                )
                outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(weight.shape)))
            continue
        if name in anonymous:
            onnx_name = f"onnx::MatMul_{1000 + len(written)}"
            tensor = numpy_helper.from_array(np.ascontiguousarray(array.T), onnx_name)
            main_inits.append(tensor)
            written[onnx_name] = name
            continue
        tensor = numpy_helper.from_array(array, name)
        written[name] = name
        if name in subgraph:
            if len(then_inits) <= len(else_nodes):
                then_inits.append(tensor)
            else:
                else_nodes.append(helper.make_node("Constant", [], [name], value=tensor))
        elif name in external:
            assert data_file is not None
            data_file.write(b"\0" * (-data_file.tell() % 64))  # aligned, as onnx's own saver does
            offset = data_file.tell()
            data_file.write(tensor.raw_data)
            onnx.external_data_helper.set_external_data(tensor, data_path.name, offset, len(tensor.raw_data))
            tensor.ClearField("raw_data")
            tensor.data_location = TensorProto.EXTERNAL
            main_inits.append(tensor)
        else:
            main_inits.append(tensor)
    if data_file is not None:
        data_file.close()
    # Both branches hand back the outer input x (subgraphs may read outer-scope values), so the
    # If is valid whatever tensors its bodies hold.
    branch_out = helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, ["n"])
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["branch_out"])], "then_body", [], [branch_out], then_inits
    )
    else_graph = helper.make_graph(
        [*else_nodes, helper.make_node("Identity", ["x"], ["branch_out"])], "else_body", [], [branch_out]
    )
    nodes.append(
        helper.make_node(
            "If", ["cond"], ["if_out"], name="weights_if", then_branch=then_graph, else_branch=else_graph
        )
    )
    graph = helper.make_graph(
        nodes,
        "exported",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"]),
        ],
        [helper.make_tensor_value_info("if_out", TensorProto.FLOAT, ["n"]), *outputs],
        main_inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="scratchcheck-tests"
    )
    onnx.save_model(model, str(path))
    return written
