"""Check the torch backend on an accelerator: same results as numpy on the CPU, and how much faster.

Builds one LLaMA-7B-wide layer in float32 (random reference; suspect = reference with 5% noise and
its MLP units and heads permuted), then runs MLP-unit matching, head matching and the rotation
null's width on numpy and on ``--device``, and prints both results, their differences and the
seconds each took. Then, end to end, ``compare`` on a small LLaMA-shaped pair (a fine-tune with
every unit and head deranged, and an independent model) on numpy and on the device: same verdicts
and kinds, every number of the two reports within the tolerance. Exits 1 if a result differs beyond
the stated tolerance (1e-4 on similarities and widths relative, identical matchings; 1e-3 relative
on report numbers), so it can gate a release on a GPU machine:

    PYTHONPATH=src python bench/gpu_check.py --device cuda
    PYTHONPATH=src python bench/gpu_check.py --device cpu --hidden 256 --intermediate 512 --heads 8   # smoke test
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scratchcheck import compare, synthetic
from scratchcheck.evidence import units
from scratchcheck.evidence.backend import use_device
from scratchcheck.evidence.metrics import null_inflation

TOL = 1e-4


def layer_pair(hidden: int, intermediate: int, heads: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(hidden)
    shapes = {"mlp.gate.weight": (intermediate, hidden), "mlp.up.weight": (intermediate, hidden)}
    shapes["mlp.down.weight"] = (hidden, intermediate)
    shapes.update({f"attn.{r}.weight": (hidden, hidden) for r in "qkvo"})
    ref = {k: (scale * rng.standard_normal(s, dtype=np.float32)) for k, s in shapes.items()}
    sus = {
        k: v + np.float32(0.05) * scale * rng.standard_normal(v.shape, dtype=np.float32)
        for k, v in ref.items()
    }
    units_perm = rng.permutation(intermediate)
    for k in ("mlp.gate.weight", "mlp.up.weight"):
        sus[k] = sus[k][units_perm]
    sus["mlp.down.weight"] = sus["mlp.down.weight"][:, units_perm]
    head_dim = hidden // heads
    rows = np.concatenate([np.arange(h * head_dim, (h + 1) * head_dim) for h in rng.permutation(heads)])
    for k in ("attn.q.weight", "attn.k.weight", "attn.v.weight"):
        sus[k] = sus[k][rows]
    sus["attn.o.weight"] = sus["attn.o.weight"][:, rows]
    for w in (*sus.values(), *ref.values()):
        w.setflags(write=False)  # as weights mapped from a file are
    return sus, ref


def report_differences(a, b, path: str = "") -> list[str]:
    """Where two report dicts differ: strings and verdicts exactly, numbers beyond 1e-3 relative
    (the seconds a test took apart)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a if k != "seconds" for d in report_differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in report_differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return [] if math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-9) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def end_to_end(device: str) -> bool:
    """``compare`` on numpy and on ``device``: a permuted fine-tune and an independent model."""
    shape = dict(layers=2, hidden=512, heads=8, kv_heads=4, intermediate=1376, vocab=2048)
    ref = synthetic.llama_decoder(0, **shape)
    pairs = {
        "permuted fine-tune": synthetic.permute_units(
            synthetic.fine_tune(ref, 0.1, seed=1), 2, heads=8, kv_heads=4, derange=True
        ),
        "independent": synthetic.llama_decoder(3, **shape),
    }
    config = synthetic.llama_config(**shape)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = synthetic.save(ref, Path(tmp, "reference"), config)
        for name, weights in pairs.items():
            sus_dir = synthetic.save(weights, Path(tmp, name.replace(" ", "-")), config)
            cpu, cpu_s = timed(lambda s=sus_dir: compare(s, ref_dir).to_dict())
            with use_device(device):
                dev, dev_s = timed(lambda s=sus_dir: compare(s, ref_dir).to_dict())
            verdicts = [f"{c['suspect_component']} {c['verdict']} {c['kind']}" for c in dev["components"]]
            differences = report_differences(
                {k: cpu[k] for k in ("verdict", "components", "tensors")},
                {k: dev[k] for k in ("verdict", "components", "tensors")},
            )
            ok &= not differences
            print(
                f"{name:<19} numpy {cpu_s:7.2f} s  {device} {dev_s:7.2f} s  {verdicts}  "
                f"{'ok' if not differences else 'DIFFERS: ' + '; '.join(differences[:5])}"
            )
    return ok


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--intermediate", type=int, default=11008)
    parser.add_argument("--heads", type=int, default=32)
    args = parser.parse_args()
    sus, ref = layer_pair(args.hidden, args.intermediate, args.heads)
    mlp = [k for k in sus if k.startswith("mlp.")]
    attn = [k for k in sus if k.startswith("attn.")]
    head_dim = args.hidden // args.heads
    checks = {
        "mlp units": lambda: units.match(
            {k: sus[k] for k in mlp}, {k: ref[k] for k in mlp}, units.mlp_features, group="mlp units"
        ),
        "attention heads": lambda: units.match(
            {k: sus[k] for k in attn},
            {k: ref[k] for k in attn},
            units.head_features(args.heads, head_dim),
            group="attention heads",
        ),
    }
    failed = False
    for name, check in checks.items():
        cpu, cpu_s = timed(check)
        with use_device(args.device):
            dev, dev_s = timed(check)
        diffs = (
            abs(dev.matched_similarity - cpu.matched_similarity),
            abs(dev.null_similarity - cpu.null_similarity),
        )
        ok = max(diffs) <= TOL and dev.identity_fraction == cpu.identity_fraction
        failed |= not ok
        print(
            f"{name:<16} numpy {cpu_s:7.2f} s  {args.device} {dev_s:7.2f} s  matched {cpu.matched_similarity:.6f} "
            f"vs {dev.matched_similarity:.6f}  null {cpu.null_similarity:.6f} vs {dev.null_similarity:.6f}  "
            f"log p {cpu.similarity.log_p:.1f} vs {dev.similarity.log_p:.1f}  {'ok' if ok else 'DIFFERS'}"
        )
    a, b = ref["mlp.gate.weight"], sus["mlp.gate.weight"]
    width, cpu_s = timed(lambda: null_inflation(a, b, 0.0, 0.0, float(np.var(a) * np.var(b))))
    with use_device(args.device):
        dev_width, dev_s = timed(lambda: null_inflation(a, b, 0.0, 0.0, float(np.var(a) * np.var(b))))
    ok = abs(dev_width - width) <= TOL * width
    failed |= not ok
    print(
        f"{'rotation null':<16} numpy {cpu_s:7.2f} s  {args.device} {dev_s:7.2f} s  "
        f"width {width:.6f} vs {dev_width:.6f}  {'ok' if ok else 'DIFFERS'}"
    )
    failed |= not end_to_end(args.device)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
