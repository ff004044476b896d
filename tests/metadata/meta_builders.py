"""Builders shared by the metadata tests: HCX-style configs, tokenizer files and SentencePiece protobuf bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

LEAKED_PATH = "/mnt/ddn/clova/checkpoints/qwen2_5_vl_32b_visual_fa2/"


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
    return path


def files_of(folder: Path) -> dict[str, Path]:
    """The ``{relative name: Path}`` mapping a Checkpoint would give, without any tensors."""
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def hcx_config() -> dict[str, Any]:
    """A miniature HyperCLOVA X SEED-style config: own text model, Qwen2.5-VL vision tower."""
    return {
        "architectures": ["HCXVisionForCausalLM"],
        "model_type": "vlm",
        "auto_map": {"AutoModelForCausalLM": "modeling_hcx.HCXVisionForCausalLM"},
        "text_config": {"model_type": "hyperclovax", "hidden_size": 64, "num_hidden_layers": 2},
        "vision_config": {"model_type": "qwen2_5_vl", "hidden_size": 64, "depth": 4, "out_hidden_size": 96},
        "vision_model_name_or_path": LEAKED_PATH,
        "transformers_version": "4.52.4",
    }


def qwen_config() -> dict[str, Any]:
    """A miniature Qwen2.5-VL config, the reference."""
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "hidden_size": 96,
        "vision_config": {"hidden_size": 64, "depth": 4, "out_hidden_size": 96},
        "transformers_version": "4.49.0",
    }


# -- protobuf, as SentencePiece writes it ---------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def sentencepiece_model(pieces: list[tuple[str, float, int]], model_type: int = 1) -> bytes:
    """ModelProto bytes: field 1 = SentencePiece {1: piece, 2: score, 3: type}, field 2 = TrainerSpec {3: model_type}."""
    out = b""
    for piece, score, kind in pieces:
        body = (
            length_delimited(1, piece.encode())
            + varint(2 << 3 | 5)
            + struct.pack("<f", score)
            + varint(3 << 3)
            + varint(kind)
        )
        out += length_delimited(1, body)
    return out + length_delimited(2, varint(3 << 3) + varint(model_type))
