"""Fingerprint reads of quantised tensors at real shapes: the kept rows alone against the whole tensor.

One safetensors file holds, with random values: a DeepSeek-V3-shaped FP8 projection ``[18432, 7168]``
with its 128 x 128 ``weight_scale_inv`` blocks, a LLaMA-3-8B-shaped int8 ``[14336, 4096]`` with a
per-row ``weight_scale``, and a GPT-OSS-20B-shaped MXFP4 expert stack (``gate_up_proj_blocks``
``[32, 5760, 90, 16]`` + ``_scales``, presented as ``[32, 2880, 5760]``). For each tensor: the bytes
the fingerprint read (as its record counts them) and the seconds, beside dequantising the whole
tensor and sampling it in memory (what fingerprints did before kept-row reads); the kept values of
both are checked equal.

    python bench/quant_reads.py --workdir /tmp/quantbench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ml_dtypes
import numpy as np

from scratchcheck import open_model
from scratchcheck.fingerprint import fingerprint, sample_positions
from scratchcheck.fingerprint.fused import split_of
from scratchcheck.io.writer import write_safetensors

P = "model.layers.0."


def build(folder: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        P + "mlp.down_proj.weight": rng.integers(-127, 128, (14336, 4096), dtype=np.int8),
        P + "mlp.down_proj.weight_scale": rng.uniform(1e-3, 2e-3, (14336, 1)).astype(np.float32),
        P + "self_attn.q_b_proj.weight": rng.standard_normal((18432, 7168), np.float32).astype(
            ml_dtypes.float8_e4m3fn
        ),
        P + "self_attn.q_b_proj.weight_scale_inv": rng.uniform(1e-4, 1e-3, (144, 56)).astype(np.float32),
        P + "mlp.experts.gate_up_proj_blocks": rng.integers(0, 256, (32, 5760, 90, 16), dtype=np.uint8),
        P + "mlp.experts.gate_up_proj_scales": rng.integers(118, 124, (32, 5760, 90), dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", tensors)
    config = {"model_type": "gpt_oss", "hidden_size": 2880, "num_attention_heads": 64}
    (folder / "config.json").write_text(json.dumps(config))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work/quant"))
    args = parser.parse_args()
    folder = args.workdir / "model"
    if not (folder / "model.safetensors").exists():
        build(folder)
    t = time.perf_counter()
    fp = fingerprint(folder)
    print(f"fingerprint of the file: {time.perf_counter() - t:.1f} s")
    print("| tensor | dtype | stored bytes | kept-row read | share | whole dequantise + sample |")
    print("|---|---|---|---|---|---|")
    with open_model(folder) as model:
        for record in fp.header["tensors"]:
            if record["dtype"] not in ("I8", "F8_E4M3", "MXFP4"):
                continue
            t = time.perf_counter()
            whole = model.read_values(record["name"])
            positions = sample_positions(tuple(record["shape"]), split=split_of(record))
            kept = whole[np.ix_(*positions)]
            seconds = time.perf_counter() - t
            assert np.array_equal(kept, fp.arrays[record["name"]]), record["name"]
            print(
                f"| {record['name']} {record['shape']} | {record['dtype']} | {record['bytes']:,} "
                f"| {record['bytes_read']:,} | {record['bytes_read'] / record['bytes']:.2%} "
                f"| {record['bytes']:,} bytes, {seconds:.1f} s |"
            )
            del whole


if __name__ == "__main__":
    main()
