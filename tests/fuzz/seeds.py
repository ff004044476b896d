"""Valid seed models, one per format the readers accept, written by each format's reference writer.

A ``Case`` is a model folder as bytes: its files, the symlinks in it, and whether a link leaves the
folder (then a successful read is a failure: the containment rule was not applied).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMATS = ("safetensors", "sharded", "torch-zip", "torch-legacy", "gguf", "onnx", "npz")


@dataclass
class Case:
    files: dict[str, bytes]
    links: dict[str, str] = field(default_factory=dict)  # name in the folder -> link target
    escapes: bool = False  # a link points outside the folder, at a file the reader would use
    outside: dict[str, bytes] = field(default_factory=dict)  # files in ../outside/, where links escape to

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        if self.outside:
            (folder.parent / "outside").mkdir()
        for name, data in self.outside.items():
            (folder.parent / "outside" / name).write_bytes(data)
        for name, target in self.links.items():
            (folder / name).unlink(missing_ok=True)
            (folder / name).symlink_to(target)


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "model.embed_tokens.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 8)).astype(np.float16),
        "model.layers.0.mlp.up_proj.weight": rng.standard_normal((12, 8)).astype(np.float32),
        "model.norm.weight": np.ones(8, np.float32),
    }


def _safetensors(weights: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(weights)


def _torch(legacy: bool) -> bytes:
    import torch

    weights = {name: torch.from_numpy(a.copy()) for name, a in _weights().items()}
    weights["model.layers.0.mlp.down_proj.weight"] = weights["model.layers.0.mlp.up_proj.weight"].t()
    weights["model.layers.0.self_attn.k_proj.weight"] = torch.ones(4, 8, dtype=torch.bfloat16)
    buffer = io.BytesIO()
    torch.save(weights, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _gguf(folder: Path) -> bytes:
    import gguf

    path = folder / "m.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "<s>"])
    writer.add_array("test.nested", [[1, 2], [3]])
    rng = np.random.default_rng(1)
    writer.add_tensor("token_embd.weight", rng.standard_normal((16, 8)).astype(np.float32))
    writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((8, 8)).astype(np.float32))
    packed = gguf.quants.quantize(
        rng.standard_normal((4, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0
    )
    writer.add_tensor("blk.0.ffn_up.weight", packed, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _onnx() -> dict[str, bytes]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    dense = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "dense")
    external = numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "external")
    weights_data = external.raw_data
    external.ClearField("raw_data")
    external.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.data"), ("offset", "0"), ("length", str(len(weights_data)))):
        entry = external.external_data.add()
        entry.key, entry.value = key, value
    q = numpy_helper.from_array(rng.integers(-100, 100, (4, 8), dtype=np.int8), "q")
    scale = numpy_helper.from_array(np.full((4, 2), 0.05, np.float32), "q_s")
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "sparse"),
        numpy_helper.from_array(np.array([1, 5], np.int64), "sparse_idx"),
        [2, 4],
    )
    node = helper.make_node("DequantizeLinear", ["q", "q_s"], ["w"], axis=1, block_size=4)
    graph = helper.make_graph(
        [node],
        "g",
        [],
        [helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 8])],
        [dense, external, q, scale],
        sparse_initializer=[sparse],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return {"model.onnx": model.SerializeToString(), "weights.data": weights_data}


def _npz(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    arrays = {f"{'c' if compressed else 's'}{i}": a for i, a in enumerate(_weights().values())}
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def seed_cases(scratch: Path) -> dict[str, Case]:
    """One valid case per entry of ``FORMATS``."""
    config = json.dumps({"model_type": "llama", "num_attention_heads": 2}).encode()
    weights = _weights()
    names = list(weights)
    shards = {
        "model-00001-of-00002.safetensors": _safetensors({n: weights[n] for n in names[:2]}),
        "model-00002-of-00002.safetensors": _safetensors({n: weights[n] for n in names[2:]}),
    }
    index = {
        "metadata": {},
        "weight_map": {n: f"model-0000{1 + (i >= 2)}-of-00002.safetensors" for i, n in enumerate(names)},
    }
    scratch.mkdir(parents=True, exist_ok=True)
    return {
        "safetensors": Case({"model.safetensors": _safetensors(weights), "config.json": config}),
        "sharded": Case(
            {**shards, "model.safetensors.index.json": json.dumps(index).encode(), "config.json": config}
        ),
        "torch-zip": Case({"pytorch_model.bin": _torch(legacy=False), "config.json": config}),
        "torch-legacy": Case({"pytorch_model.bin": _torch(legacy=True)}),
        "gguf": Case({"model.gguf": _gguf(scratch)}),
        "onnx": Case(_onnx()),
        "npz": Case({"a.npz": _npz(False), "b.npz": _npz(True)}),
    }
