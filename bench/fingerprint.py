"""Fingerprinting at scale: bytes read, seconds, peak RSS and size, beside reading the whole files.

Two workloads, each measured in fresh subprocesses (peak RSS is the child's ``VmHWM``):

* ``dense``: a LLaMA-7B-shaped bf16 pair of ``--dense-gib`` GiB each (a reference and a noised copy,
  values tiled from one random block so that building 2 x 8 GiB takes minutes, not an hour):
  read both files, fingerprint both, then compare fingerprint with fingerprint and model with
  fingerprint (verdict and seconds).
* ``moe``: a sparse file with GLM-4.5-Air's shapes (46 layers + the MTP layer, 128 experts of
  1408, hidden 4096, 96 heads, vocabulary 151552; ~110B parameters, ~220 GB of holes that cost no
  disk): read the whole file and fingerprint it. The values are all zero; this measures reading and
  bookkeeping at that scale, not the statistics.

    python bench/fingerprint.py --workdir /tmp/fpbench --dense-gib 8 [--cold] [--skip-moe]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import ml_dtypes
import numpy as np

from memory import CHILD_READ, GIB, PEAK, drop_page_cache, llama_shapes, run
from scratchcheck.io.writer import LazyTensor, write_safetensors

BF16 = np.dtype(ml_dtypes.bfloat16)

# ``import scratchcheck`` is lazy: the first use of a name imports its modules, which the timer
# leaves out (as it did before the package imported lazily; the whole read has no imports either).
CHILD_FINGERPRINT = f"""
import sys, time, json, os
import scratchcheck
scratchcheck.fingerprint
t = time.perf_counter()
fp = scratchcheck.fingerprint(sys.argv[1], sys.argv[2])
print(json.dumps({{"seconds": time.perf_counter() - t, "rss": {PEAK}, "reads": fp.header["reads"],
                  "size": os.path.getsize(sys.argv[2]), "tensors": len(fp.header["tensors"])}}))
"""

CHILD_COMPARE = f"""
import sys, time, json
import scratchcheck
scratchcheck.compare
t = time.perf_counter()
report = scratchcheck.compare(sys.argv[1], [sys.argv[2]])
print(json.dumps({{"seconds": time.perf_counter() - t, "rss": {PEAK}, "verdict": report.verdict,
                  "kinds": sorted({{str(c.kind) for c in report.components}}),
                  "p": min(c.p_value for c in report.components if c.p_value is not None),
                  "sampled": report.sampled["summary"]}}))
"""


def build_dense(workdir: Path, gib: float) -> tuple[Path, Path]:
    """Reference and a copy with 5% noise, LLaMA-7B shapes in bf16 (``memory.llama_shapes``)."""
    shapes, config = llama_shapes(gib)
    rng = np.random.default_rng(0)
    base, jitter = (
        rng.standard_normal(1 << 24, dtype=np.float32),
        rng.standard_normal(1 << 24, dtype=np.float32),
    )
    blocks: dict[tuple[float, float], np.ndarray] = {}

    def block(scale: float, rel_noise: float) -> np.ndarray:
        # bf16 blocks made once per scale; each tensor is a tiled slice of one (a memory copy).
        if (scale, rel_noise) not in blocks:
            blocks[scale, rel_noise] = (scale * (base + rel_noise * jitter)).astype(BF16)
        return blocks[scale, rel_noise]

    def tensor(i: int, shape: tuple[int, ...], rel_noise: float) -> LazyTensor:
        def make() -> np.ndarray:
            source = block(1.0 if len(shape) == 1 else 1 / np.sqrt(shape[-1]), rel_noise)
            start = (i * 7_919_993) % source.size
            return np.resize(np.concatenate([source[start:], source[:start]]), shape)

        return LazyTensor(shape, BF16, make)

    folders = []
    for name, noise in (("reference", 0.0), ("suspect", 0.05)):
        folder = workdir / "dense" / name
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "model.safetensors").exists():
            write_safetensors(
                folder / "model.safetensors",
                {n: tensor(i, s, noise) for i, (n, s) in enumerate(shapes.items())},
            )
        (folder / "config.json").write_text(json.dumps(config))
        folders.append(folder)
    return folders[1], folders[0]


def glm_air_shapes() -> tuple[dict[str, tuple[int, ...]], dict]:
    """GLM-4.5-Air's tensors: layer 0 dense, layers 1-45 MoE, layer 46 the MTP block."""
    hidden, heads, kv, head_dim, vocab, experts, moe, dense = 4096, 96, 8, 128, 151_552, 128, 1408, 10944
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(47):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (hidden,)
        shapes[p + "post_attention_layernorm.weight"] = (hidden,)
        shapes[p + "self_attn.q_proj.weight"] = (heads * head_dim, hidden)
        shapes[p + "self_attn.q_proj.bias"] = (heads * head_dim,)
        for r in "kv":
            shapes[p + f"self_attn.{r}_proj.weight"] = (kv * head_dim, hidden)
            shapes[p + f"self_attn.{r}_proj.bias"] = (kv * head_dim,)
        shapes[p + "self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        if i == 0:
            for r, shape in (("gate", (dense, hidden)), ("up", (dense, hidden)), ("down", (hidden, dense))):
                shapes[p + f"mlp.{r}_proj.weight"] = shape
            continue
        shapes[p + "mlp.gate.weight"] = (experts, hidden)
        shapes[p + "mlp.gate.e_score_correction_bias"] = (experts,)
        for e in [*range(experts), "shared"]:
            q = p + (f"mlp.experts.{e}." if e != "shared" else "mlp.shared_experts.")
            shapes[q + "gate_proj.weight"] = (moe, hidden)
            shapes[q + "up_proj.weight"] = (moe, hidden)
            shapes[q + "down_proj.weight"] = (hidden, moe)
        if i == 46:
            shapes[p + "eh_proj.weight"] = (hidden, 2 * hidden)
            for norm in ("enorm", "hnorm", "shared_head.norm"):
                shapes[p + f"{norm}.weight"] = (hidden,)
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (vocab, hidden)
    config = {
        "model_type": "glm4_moe",
        "architectures": ["Glm4MoeForCausalLM"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "num_hidden_layers": 46,
        "num_nextn_predict_layers": 1,
        "n_routed_experts": experts,
        "moe_intermediate_size": moe,
        "intermediate_size": dense,
        "first_k_dense_replace": 1,
        "vocab_size": vocab,
    }
    return shapes, config


def build_sparse_moe(workdir: Path) -> Path:
    """The header of a GLM-4.5-Air-shaped bf16 safetensors file, then holes up to its full size."""
    folder = workdir / "moe"
    folder.mkdir(parents=True, exist_ok=True)
    shapes, config = glm_air_shapes()
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    path = folder / "model.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(blob)) + blob)
        handle.truncate(8 + len(blob) + offset)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def measure(code: str, *args: str) -> dict:
    return json.loads(" ".join(run(code, *args)))


def timed_read(files: list[str]) -> tuple[float, float]:
    seconds, rss = (float(x) for x in run(CHILD_READ, *files))
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work"))
    parser.add_argument("--dense-gib", type=float, default=8.0)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run (root)")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--skip-moe", action="store_true")
    args = parser.parse_args()
    prepare = drop_page_cache if args.cold else (lambda: None)
    mib = 1 << 20
    print(f"page cache: {'cold (dropped before each run)' if args.cold else 'as left by the previous step'}")
    print(
        f"{'workload':<34} {'step':<28} {'seconds':>8} {'peak RSS MiB':>13} {'read MiB':>10} {'file MiB':>10}"
    )

    def row(workload, step, seconds, rss, read="", size=""):
        print(
            f"{workload:<34} {step:<28} {seconds:>8.1f} {rss / mib:>13.0f} {read:>10} {size:>10}", flush=True
        )

    if not args.skip_dense:
        t = time.perf_counter()
        suspect, reference = build_dense(args.workdir, args.dense_gib)
        files = [str(suspect / "model.safetensors"), str(reference / "model.safetensors")]
        total = sum(Path(f).stat().st_size for f in files)
        name = f"dense pair 2 x {total / 2 / GIB:.2f} GiB"
        print(f"# {name}: built in {time.perf_counter() - t:.0f} s")
        prepare()
        seconds, rss = timed_read(files)
        row(name, "read both files", seconds, rss, f"{total / mib:.0f}")
        fp_seconds = 0.0
        for folder in (suspect, reference):
            prepare()
            out = measure(CHILD_FINGERPRINT, str(folder), str(folder.parent / f"{folder.name}.scfp"))
            fp_seconds += out["seconds"]
            row(
                name,
                f"fingerprint {folder.name}",
                out["seconds"],
                out["rss"],
                f"{out['reads']['bytes_read'] / mib:.1f}",
                f"{out['size'] / mib:.1f}",
            )
        print(f"# read both / fingerprint both: {seconds / fp_seconds:.1f}x")
        scfp = [str(suspect.parent / "suspect.scfp"), str(suspect.parent / "reference.scfp")]
        out = measure(CHILD_COMPARE, *scfp)
        row(name, "compare fp <-> fp", out["seconds"], out["rss"])
        print(f"#   {out['verdict']} {out['kinds']} p={out['p']:.3g}; {out['sampled']}")
        prepare()
        out = measure(CHILD_COMPARE, str(suspect), scfp[1])
        row(name, "compare model <-> fp", out["seconds"], out["rss"])
        print(f"#   {out['verdict']} {out['kinds']} p={out['p']:.3g}")
    if not args.skip_moe:
        t = time.perf_counter()
        folder = build_sparse_moe(args.workdir)
        path = folder / "model.safetensors"
        name = f"GLM-4.5-Air-shaped sparse ({path.stat().st_size / 1e9:.0f} GB)"
        print(f"# {name}: built in {time.perf_counter() - t:.1f} s")
        prepare()
        out = measure(CHILD_FINGERPRINT, str(folder), str(args.workdir / "moe.scfp"))
        row(
            name,
            "fingerprint",
            out["seconds"],
            out["rss"],
            f"{out['reads']['bytes_read'] / mib:.0f}",
            f"{out['size'] / mib:.1f}",
        )
        prepare()
        seconds, rss = timed_read([str(path)])
        row(name, "read the whole file", seconds, rss, f"{path.stat().st_size / mib:.0f}")
        print(
            f"# read / fingerprint: {seconds / out['seconds']:.1f}x; {out['tensors']} tensors; "
            f"max {out['reads']['max_fraction_large_tensor']:.1%} of a large tensor read"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
