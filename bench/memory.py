"""Peak memory and speed of ``compare`` on a checkpoint pair of several GB.

Builds two safetensors checkpoints (a reference and a noised copy of it): unnamed float32 matrices
whose largest is ``--largest-gib`` (``--layout flat``), or a LLaMA-7B-shaped bf16 decoder on which
every statistic runs, unit matching included (``--layout llama``); then, in fresh subprocesses so that each peak RSS is its own:
  1. baseline: read both files start to end with plain buffered reads (the I/O floor);
  2. compare:  ``scratchcheck.compare`` on the pair.
Prints a table with wall time and peak RSS of each, against the largest tensor's size. Both runs see
a warm page cache by default (compute against the I/O floor); ``--cold`` drops the cache before each
run instead (needs root), so both read from storage.

    python bench/memory.py --workdir bench/_work --largest-gib 1 --total-gib 3 [--cold]
    python bench/memory.py --workdir bench/_work --layout llama --total-gib 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ml_dtypes
import numpy as np

from scratchcheck.io.writer import LazyTensor, write_safetensors

GIB = 1 << 30

# Peak RSS is read from VmHWM: unlike ru_maxrss it belongs to the new image after exec, so the
# parent's size at fork time does not leak into the child's figure.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024"

CHILD_READ = f"""
import sys, time
t = time.perf_counter()
for path in sys.argv[1:]:
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass
print(time.perf_counter() - t, {PEAK})
"""

CHILD_COMPARE = f"""
import sys, time
import scratchcheck
scratchcheck.compare  # loads the comparison code ('import scratchcheck' alone is lazy): not timed

baseline = {PEAK}
t = time.perf_counter()
report = scratchcheck.compare(sys.argv[1], [sys.argv[2]])
elapsed = time.perf_counter() - t
print(elapsed, {PEAK}, baseline, report.verdict)
"""


def flat_shapes(largest_gib: float, total_gib: float) -> dict[str, tuple[int, ...]]:
    """Unnamed float32 ``[rows, 4096]`` matrices: the largest first, then halves of it."""
    cols = 4096
    largest = int(largest_gib * GIB) // 4
    sizes = [largest]
    remaining = int(total_gib * GIB) // 4 - largest
    while remaining > 0:
        n = min(largest // 2, remaining)
        sizes.append(n)
        remaining -= n
    return {f"layers.{i}.weight": (n // cols, cols) for i, n in enumerate(sizes)}


def llama_shapes(total_gib: float) -> tuple[dict[str, tuple[int, ...]], dict]:
    """A LLaMA-7B-shaped decoder (hidden 4096, MLP 11008, 32 heads, vocabulary 32000) in bf16,
    with as many layers as fit ``total_gib``: every statistic runs, unit matching included."""
    hidden, inter, vocab = 4096, 11008, 32000
    per_layer = 2 * (4 * hidden * hidden + 3 * hidden * inter + 2 * hidden)
    layers = max(1, int((total_gib * GIB - 2 * 2 * vocab * hidden) // per_layer))
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for r in "qkvo":
            shapes[f"{p}self_attn.{r}_proj.weight"] = (hidden, hidden)
        shapes[p + "mlp.gate_proj.weight"] = (inter, hidden)
        shapes[p + "mlp.up_proj.weight"] = (inter, hidden)
        shapes[p + "mlp.down_proj.weight"] = (hidden, inter)
        shapes[p + "input_layernorm.weight"] = (hidden,)
        shapes[p + "post_attention_layernorm.weight"] = (hidden,)
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (vocab, hidden)
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "num_hidden_layers": layers,
        "vocab_size": vocab,
    }
    return shapes, config


def build_pair(workdir: Path, layout: str, largest_gib: float, total_gib: float) -> tuple[Path, Path, int]:
    """Reference and noised copy; tensors are generated one at a time, never all in memory."""
    if layout == "llama":
        shapes, config = llama_shapes(total_gib)
        dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        shapes, config, dtype = flat_shapes(largest_gib, total_gib), None, np.dtype(np.float32)

    def tensor(i: int, shape: tuple[int, ...], noise: float) -> LazyTensor:
        def make() -> np.ndarray:
            scale = 1.0 if len(shape) == 1 else 1 / np.sqrt(shape[-1])
            values = scale * np.random.default_rng(i).standard_normal(shape, dtype=np.float32)
            if noise:
                values += (
                    noise * scale * np.random.default_rng(10_000 + i).standard_normal(shape, dtype=np.float32)
                )
            return values.astype(dtype)

        return LazyTensor(shape, dtype, make)

    ref_dir, sus_dir = workdir / layout / "reference", workdir / layout / "suspect"
    # The suspect's noise must survive the storage dtype: bf16 keeps about 3 significant digits.
    for folder, noise in ((ref_dir, 0.0), (sus_dir, 0.05 if layout == "llama" else 1 / 700)):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "model.safetensors"
        if not target.exists():
            write_safetensors(
                target, {n: tensor(i, shape, noise) for i, (n, shape) in enumerate(shapes.items())}
            )
        if config is not None:
            (folder / "config.json").write_text(json.dumps(config))
    largest = max(int(np.prod(shape)) for shape in shapes.values()) * dtype.itemsize
    return sus_dir, ref_dir, largest


def drop_page_cache() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        sys.exit(f"--cold: cannot drop the page cache ({exc}); run as root or without --cold")


def run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work"))
    parser.add_argument("--largest-gib", type=float, default=1.0)
    parser.add_argument("--total-gib", type=float, default=3.0)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    parser.add_argument(
        "--layout",
        choices=["flat", "llama"],
        default="flat",
        help="flat: unnamed float32 matrices, largest --largest-gib; llama: a LLaMA-7B-shaped bf16 decoder",
    )
    args = parser.parse_args()

    t = time.perf_counter()
    suspect, reference, largest_bytes = build_pair(
        args.workdir, args.layout, args.largest_gib, args.total_gib
    )
    build_s = time.perf_counter() - t
    files = [str(suspect / "model.safetensors"), str(reference / "model.safetensors")]
    total_bytes = sum(Path(f).stat().st_size for f in files)

    # Both measurements must see the same storage state: both warm, or both cold.
    prepare = drop_page_cache if args.cold else lambda: run(CHILD_READ, *files)
    prepare()
    read_s, read_rss = (float(x) for x in run(CHILD_READ, *files))
    prepare()
    cmp_s, cmp_rss, import_rss, verdict = run(CHILD_COMPARE, str(suspect), str(reference))
    cmp_s, cmp_rss, import_rss = float(cmp_s), float(cmp_rss), float(import_rss)

    mib = 1 << 20
    rows = [
        ("read both files (baseline)", read_s, read_rss),
        ("scratchcheck.compare", cmp_s, cmp_rss),
    ]
    print(
        f"pair: 2 x {total_bytes / 2 / GIB:.2f} GiB, largest tensor {largest_bytes / GIB:.2f} GiB (built in {build_s:.0f} s), "
        f"page cache {'cold' if args.cold else 'warm'}"
    )
    print(f"{'run':<30} {'wall s':>8} {'GiB/s':>7} {'peak RSS MiB':>13} {'RSS / largest':>14}")
    for name, seconds, rss in rows:
        print(
            f"{name:<30} {seconds:>8.1f} {total_bytes / GIB / seconds:>7.2f} {rss / mib:>13.0f} {rss / largest_bytes:>14.2f}"
        )
    print(
        f"compare / read time: {cmp_s / read_s:.1f}x; interpreter + imports before compare: {import_rss / mib:.0f} MiB"
    )
    print(f"verdict: {verdict}")
    print(
        json.dumps(
            {
                "largest_bytes": largest_bytes,
                "compare_peak_rss": cmp_rss,
                "under_2x_largest": cmp_rss < 2 * largest_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
