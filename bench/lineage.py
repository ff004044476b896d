"""Lineage benchmark: do verdicts hold on actually trained model families?

Trains tiny LLaMA-style decoders (RMSNorm, rotary attention, SwiGLU MLP) with torch on CPU on a
generated corpus (an order-2 Markov chain over 64 tokens, fixed seed: every model sees the same
language, as models with one tokenizer and one web do), then:

* independent bases from scratch (``--seeds``, the null: every pair must come out not derived, and
  their p-values must be uniform),
* derivatives of one parent: light and heavy fine-tunes on a shifted corpus, continued pre-training,
  a merged LoRA, a noised copy, a copy with MLP units and heads permuted, a layer-dropped and a
  width-pruned child (both healed by a short fine-tune), int8 and 4-bit round trips,
* a VLM pair: both have a vision tower (a small encoder trained on toy images) and a language
  model; the suspect's tower is the reference's, fine-tuned, while its language model is its own.

Each case goes through ``scratchcheck.compare`` on saved safetensors folders. Prints a table and
the summary (true-positive rate at zero false positives, the largest p among derived cases, the
smallest among independent pairs, a KS test of the independent p-values against uniform).

    .venv/bin/python bench/lineage.py            # the full run (~50 seeds)
    .venv/bin/python bench/lineage.py --seeds 6  # a quick look
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB = 64
SEQ = 48
HIDDEN = 64
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
LAYERS = 4
# torch CPU threads. On a machine busier than its cores, 1 is many times faster than 2: idle
# OpenMP workers spin for their share of each tiny op.
THREADS = 2


# -- data ---------------------------------------------------------------------------------------------


def corpus(seed: int, tokens: int = 200_000, *, shift: float = 0.0) -> np.ndarray:
    """An order-2 Markov chain with sparse, peaked transitions; ``shift`` mixes in a second chain
    (a new domain for fine-tuning) with that weight."""

    def table(rng: np.random.Generator) -> np.ndarray:
        logits = rng.standard_normal((VOCAB, VOCAB, VOCAB)) * 2.5
        logits[rng.random(logits.shape) < 0.8] -= 8.0  # most continuations are rare
        p = np.exp(logits - logits.max(-1, keepdims=True))
        return p / p.sum(-1, keepdims=True)

    probs = table(np.random.default_rng(1234))
    if shift:
        probs = (1 - shift) * probs + shift * table(np.random.default_rng(seed + 999))
    rng = np.random.default_rng(seed)
    cum = probs.cumsum(-1)
    out = np.empty(tokens, dtype=np.int64)
    out[:2] = rng.integers(VOCAB, size=2)
    u = rng.random(tokens)
    for i in range(2, tokens):
        out[i] = min(int(np.searchsorted(cum[out[i - 2], out[i - 1]], u[i])), VOCAB - 1)
    return out


def images(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Toy 16x16 RGB images of oriented bars (4 classes), as 16 patches of 3x4x4 = 48 values."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(4, size=n)
    yy, xx = np.mgrid[0:16, 0:16]
    imgs = np.empty((n, 3, 16, 16), np.float32)
    for k in range(n):
        angle = labels[k] * np.pi / 4 + rng.normal(0, 0.15)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 0.9 + phase)
        colour = rng.uniform(0.3, 1.0, 3)
        imgs[k] = colour[:, None, None] * wave + 0.3 * rng.standard_normal((3, 16, 16))
    patches = imgs.reshape(n, 3, 4, 4, 4, 4).transpose(0, 2, 4, 1, 3, 5).reshape(n, 16, 48)
    return patches, labels


# -- models -------------------------------------------------------------------------------------------


def _torch():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def build(
    seed: int, *, layers: int = LAYERS, intermediate: int = INTERMEDIATE, causal: bool = True, inputs: int = 0
):
    """A LLaMA-style block stack; ``inputs`` > 0 makes a patch encoder (vision tower) instead."""
    torch = _torch()
    torch.manual_seed(seed)
    return _classes()(layers, intermediate, causal, inputs)


@functools.cache
def _classes():
    """The network class, defined once for all models."""
    torch = _torch()
    nn = torch.nn
    head_dim = HIDDEN // HEADS

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(HIDDEN))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight

    def rope(x):
        t = x.shape[-2]
        freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        ang = torch.arange(t).float()[:, None] * freq[None]
        cos, sin = ang.cos(), ang.sin()
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)

    class Block(nn.Module):
        def __init__(self, width, causal):
            super().__init__()
            self.causal = causal
            self.input_layernorm, self.post_attention_layernorm = RMSNorm(), RMSNorm()
            self.q_proj = nn.Linear(HIDDEN, HEADS * head_dim, bias=False)
            self.k_proj = nn.Linear(HIDDEN, KV_HEADS * head_dim, bias=False)
            self.v_proj = nn.Linear(HIDDEN, KV_HEADS * head_dim, bias=False)
            self.o_proj = nn.Linear(HEADS * head_dim, HIDDEN, bias=False)
            self.gate_proj = nn.Linear(HIDDEN, width, bias=False)
            self.up_proj = nn.Linear(HIDDEN, width, bias=False)
            self.down_proj = nn.Linear(width, HIDDEN, bias=False)

        def forward(self, x):
            b, t, _ = x.shape
            h = self.input_layernorm(x)
            q = rope(self.q_proj(h).view(b, t, HEADS, head_dim).transpose(1, 2))
            k = rope(self.k_proj(h).view(b, t, KV_HEADS, head_dim).transpose(1, 2))
            v = self.v_proj(h).view(b, t, KV_HEADS, head_dim).transpose(1, 2)
            k = k.repeat_interleave(HEADS // KV_HEADS, 1)
            v = v.repeat_interleave(HEADS // KV_HEADS, 1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
            if self.causal:
                scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            a = scores.softmax(-1) @ v
            x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, -1))
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(torch.nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))

    class Net(nn.Module):
        def __init__(self, layers, intermediate, causal, inputs):
            super().__init__()
            self.inputs = inputs
            self.embed = nn.Linear(inputs, HIDDEN) if inputs else nn.Embedding(VOCAB, HIDDEN)
            self.layers = nn.ModuleList(Block(intermediate, causal) for _ in range(layers))
            self.norm = RMSNorm()
            self.head = nn.Linear(HIDDEN, 4 if inputs else VOCAB, bias=False)

        def forward(self, x):
            x = self.embed(x)
            for layer in self.layers:
                x = layer(x)
            x = self.norm(x)
            return self.head(x.mean(1) if self.inputs else x)

    return Net


def _batch(data, gen: np.random.Generator):
    """(inputs, targets) of one step: 16 windows of the corpus, or 32 images."""
    torch = _torch()
    if isinstance(data, tuple):
        idx = gen.integers(len(data[1]), size=32)
        return torch.from_numpy(data[0][idx]), torch.from_numpy(data[1][idx])
    starts = gen.integers(len(data) - SEQ - 1, size=16)
    batch = torch.from_numpy(np.stack([data[s : s + SEQ + 1] for s in starts]))
    return batch[:, :-1], batch[:, 1:]


def _loss(logits, targets):
    torch = _torch()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train(net, steps: int, data, *, lr: float = 3e-3, seed: int = 0, params=None) -> None:
    """AdamW on next-token prediction (token data) or classification ((patches, labels) data)."""
    torch = _torch()
    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(params if params is not None else net.parameters(), lr=lr, weight_decay=0.01)
    for _ in range(steps):
        x, y = _batch(data, gen)
        loss = _loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def lora_merge(net, steps: int, data, *, rank: int = 4, seed: int = 0) -> None:
    """Train rank-``rank`` adapters on q, v, up and down with the base frozen, then merge them."""
    torch = _torch()
    torch.manual_seed(seed)
    adapters = []
    for block in net.layers:
        for lin in (block.q_proj, block.v_proj, block.up_proj, block.down_proj):
            a = torch.nn.Parameter(torch.randn(rank, lin.in_features) / math.sqrt(lin.in_features))
            b = torch.nn.Parameter(torch.zeros(lin.out_features, rank))
            base = lin.forward
            lin.forward = lambda x, base=base, a=a, b=b: base(x) + (x @ a.T) @ b.T
            adapters.append((lin, a, b, base))
    for p in net.parameters():
        p.requires_grad_(False)
    train(net, steps, data, lr=1e-2, seed=seed, params=[t for _, a, b, _ in adapters for t in (a, b)])
    with torch.no_grad():
        for lin, a, b, base in adapters:
            lin.weight += b @ a
            lin.forward = base
    for p in net.parameters():
        p.requires_grad_(True)


def weights(net, prefix: str = "model.", *, vision: bool = False) -> dict[str, np.ndarray]:
    """Hugging Face LLaMA names (or Qwen2.5-VL vision names under ``prefix``)."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    out = {}
    for name, w in sd.items():
        parts = name.split(".")
        if parts[0] == "layers":
            i, rest = parts[1], ".".join(parts[2:])
            if vision:
                rest = {
                    "input_layernorm.weight": "norm1.weight",
                    "post_attention_layernorm.weight": "norm2.weight",
                    "o_proj.weight": "attn.proj.weight",
                }.get(rest, rest)
                rest = rest if rest.startswith(("norm", "attn.")) else "mlp." + rest
                if rest.startswith("mlp.") and rest[4] in "qkv":
                    continue  # q, k, v are fused below
                out[f"{prefix}blocks.{i}.{rest}"] = w
            else:
                group = "mlp" if "_proj" in rest and rest[0] in "gud" else "self_attn"
                rest = rest if "layernorm" in rest else f"{group}.{rest}"
                out[f"{prefix}layers.{i}.{rest}"] = w
        elif vision and name.startswith("embed."):
            if name.endswith("weight"):
                out[f"{prefix}patch_embed.proj.weight"] = w.reshape(HIDDEN, 3, 1, 4, 4)
        elif vision and name == "norm.weight":
            out[f"{prefix}merger.ln_q.weight"] = w
        elif vision and name == "head.weight":
            continue  # the classification head is not part of a tower
        elif name == "embed.weight":
            out[f"{prefix}embed_tokens.weight"] = w
        elif name == "norm.weight":
            out[f"{prefix}norm.weight"] = w
        elif name == "head.weight":
            out["lm_head.weight"] = w
    if vision:
        for i in range(len(net.layers)):
            blk = net.layers[i]
            q, k, v = (getattr(blk, n).weight.detach().numpy() for n in ("q_proj", "k_proj", "v_proj"))
            out[f"{prefix}blocks.{i}.attn.qkv.weight"] = np.concatenate([q, k, v]).astype(np.float32)
    return out


# -- derivations on saved weights -------------------------------------------------------------------


def noised(w: dict[str, np.ndarray], rel: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: (v + rel * float(v.std() or 1) * rng.standard_normal(v.shape)).astype(np.float32)
        for k, v in w.items()
    }


def quantised(w: dict[str, np.ndarray], bits: int, block: int | None = None) -> dict[str, np.ndarray]:
    """Symmetric absmax round trip: per row (int8) or per block of ``block`` values (4-bit)."""
    top = 2 ** (bits - 1) - 1
    out = {}
    for k, v in w.items():
        if v.ndim < 2:
            out[k] = v  # norms stay in high precision, as in every real quantisation scheme
            continue
        flat = v.reshape(-1, block) if block else v.reshape(v.shape[0], -1)
        scale = np.abs(flat).max(1, keepdims=True) / top
        scale[scale == 0] = 1
        out[k] = (np.clip(np.round(flat / scale), -top - 1, top) * scale).reshape(v.shape).astype(np.float32)
    return out


def prune_width(net, keep: int) -> None:
    """Keep the ``keep`` MLP units with the largest weight norms in every layer (in their order)."""
    torch = _torch()
    with torch.no_grad():
        for blk in net.layers:
            score = blk.up_proj.weight.norm(dim=1) * blk.down_proj.weight.norm(dim=0)
            idx = torch.sort(torch.topk(score, keep).indices).values
            for name in ("gate_proj", "up_proj"):
                old = getattr(blk, name)
                new = torch.nn.Linear(HIDDEN, keep, bias=False)
                new.weight.copy_(old.weight[idx])
                setattr(blk, name, new)
            new = torch.nn.Linear(keep, HIDDEN, bias=False)
            new.weight.copy_(blk.down_proj.weight[:, idx])
            blk.down_proj = new


def config(layers: int = LAYERS, intermediate: int = INTERMEDIATE) -> dict:
    from scratchcheck import synthetic

    return synthetic.llama_config(
        layers=layers, hidden=HIDDEN, heads=HEADS, kv_heads=KV_HEADS, intermediate=intermediate, vocab=VOCAB
    )


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    truth: str  # derived | independent
    verdict: str
    kind: str | None
    p: float  # smallest Holm-adjusted component p of the comparison
    p_lm: float | None  # the language model's combined p before Holm (the calibrated one)
    seconds: float
    detail: str = ""
    screening: float | None = None  # mean std-curve correlation over the language model's roles
    log10_p: float = float("nan")  # of ``p``, also where the float is clamped at 1e-300


def compare_case(
    case: str,
    truth: str,
    suspect: Path,
    reference: Path,
    *,
    focus: str | None = None,
    calibrated: str = "language_model",
) -> Row:
    """One comparison as a row; ``p_lm`` is the unadjusted combined p of the ``calibrated`` component
    kind (the one whose p-values the KS test checks)."""
    from scratchcheck import compare

    start = time.perf_counter()
    report = compare(suspect, [reference])
    seconds = time.perf_counter() - start
    comps = [c for c in report.components if focus is None or c.component_kind == focus]
    ps = [c.p_value for c in comps if c.p_value is not None]
    lm = next((c for c in report.components if c.component_kind == calibrated), None)
    raw = None
    if lm is not None:
        combined = next((t for t in lm.tests if t.name == "combined"), None)
        if combined is not None:
            raw = 10 ** combined.detail["log10_p_unadjusted"]
    best = min(comps, key=lambda c: c.p_value if c.p_value is not None else 2.0) if comps else None
    verdict = report.verdict if focus is None else (best.verdict if best else "not_comparable")
    kinds = sorted({c.kind for c in comps if c.kind and c.verdict in ("derived", "identical")})
    detail = "; ".join(f"{c.suspect_component}:{c.verdict}" for c in report.components)
    curves = [t.statistic for t in (lm.tests if lm else []) if t.name.startswith("screening")]
    p = min(ps) if ps else float("nan")
    screening = float(np.mean(curves)) if curves else None
    logs = [t.detail["log10_p"] for c in comps for t in c.tests if t.name == "combined"]
    log10_p = min(logs) if logs else float("nan")
    return Row(case, truth, verdict, ",".join(kinds) or None, p, raw, seconds, detail, screening, log10_p)


def run(seeds: int = 50, *, steps: int = 200, folder: Path | None = None, log=print) -> list[Row]:
    """Train, derive, compare; returns one row per comparison."""
    from scratchcheck import synthetic

    torch = _torch()
    folder = Path(folder or tempfile.mkdtemp(prefix="lineage-"))
    text = corpus(0)
    shifted = corpus(1, shift=0.5)
    saved: dict[str, Path] = {}

    def save(name: str, w: dict[str, np.ndarray], cfg: dict | None = None) -> Path:
        saved[name] = synthetic.save(w, folder / name, cfg or config())
        return saved[name]

    t0 = time.perf_counter()
    bases = []
    for seed in range(seeds):
        bases.append(build(seed))
        train(bases[-1], steps, text, seed=seed)
        save(f"base{seed}", weights(bases[-1]))
    log(f"trained {seeds} bases in {time.perf_counter() - t0:.0f} s")

    def child(fn) -> dict[str, np.ndarray]:
        net = build(0)
        net.load_state_dict(bases[0].state_dict())
        fn(net)
        return weights(net)

    parent = weights(bases[0])
    light, heal = max(1, steps // 5), max(1, steps // 2)
    derived = {
        f"fine-tune light ({light} steps, lr 1e-3, new domain)": child(
            lambda n: train(n, light, shifted, lr=1e-3, seed=101)
        ),
        f"fine-tune heavy ({steps} steps, lr 3e-3, new domain)": child(
            lambda n: train(n, steps, shifted, lr=3e-3, seed=102)
        ),
        f"continued pre-training ({2 * steps} steps, lr 3e-3)": child(
            lambda n: train(n, 2 * steps, text, lr=3e-3, seed=103)
        ),
        f"LoRA r=4 merged ({steps} steps)": child(lambda n: lora_merge(n, steps, shifted, seed=104)),
        "noised copy (sigma = std/700)": noised(parent, 1 / 700, 105),
        "noised copy (sigma = std/10)": noised(parent, 0.1, 106),
        "MLP units + heads permuted": synthetic.permute_units(parent, 107, heads=HEADS, kv_heads=KV_HEADS),
        "int8 per-row round trip": quantised(parent, 8),
        "4-bit blocks of 32 round trip": quantised(parent, 4, 32),
    }
    rows = []
    for name, w in derived.items():
        path = save(name.split(" (")[0].replace(" ", "_"), w)
        rows.append(compare_case(name, "derived", path, saved["base0"], focus="language_model"))
        log(_line(rows[-1]))

    # Structural children: layer-dropped (layers 0, 2 of 4 kept, healed) and width-pruned (healed).
    dropped = build(0, layers=LAYERS // 2)
    state = {k: v for k, v in bases[0].state_dict().items() if not k.startswith("layers.")}
    for new, old in enumerate(range(0, LAYERS, 2)):
        state.update(
            {
                f"layers.{new}.{k.split('.', 2)[2]}": v
                for k, v in bases[0].state_dict().items()
                if k.startswith(f"layers.{old}.")
            }
        )
    dropped.load_state_dict(state)
    train(dropped, heal, text, lr=1e-3, seed=108)
    path = save("layer_dropped", weights(dropped), config(layers=LAYERS // 2))
    rows.append(
        compare_case(
            f"layer-dropped (every 2nd, healed {heal} steps)",
            "derived",
            path,
            saved["base0"],
            focus="language_model",
        )
    )
    log(_line(rows[-1]))

    pruned = build(0)
    pruned.load_state_dict(bases[0].state_dict())
    prune_width(pruned, INTERMEDIATE * 3 // 4)
    train(pruned, heal, text, lr=1e-3, seed=109)
    path = save("width_pruned", weights(pruned), config(intermediate=INTERMEDIATE * 3 // 4))
    rows.append(
        compare_case(
            f"width-pruned MLP 75% (healed {heal} steps)",
            "derived",
            path,
            saved["base0"],
            focus="language_model",
        )
    )
    log(_line(rows[-1]))

    rows.extend(vlm_cases(folder, steps, log))

    # The null: independent bases, neighbours and a few long-range pairs; plus derivatives of
    # base 0 against unrelated bases (a derived model is still independent of everyone else).
    pairs = [(i, i + 1) for i in range(seeds - 1)] + [
        (i, (i + seeds // 2) % seeds) for i in range(seeds // 2)
    ]
    for i, j in pairs:
        rows.append(compare_case(f"base{i} vs base{j}", "independent", saved[f"base{i}"], saved[f"base{j}"]))
    for k, name in enumerate(list(saved)[seeds : seeds + 6]):
        other = 1 + k % max(1, seeds - 1)
        rows.append(compare_case(f"{name} vs base{other}", "independent", saved[name], saved[f"base{other}"]))
    log(f"all done in {time.perf_counter() - t0:.0f} s")
    del torch
    return rows


def vlm_cases(folder: Path, steps: int, log) -> list[Row]:
    """Reference: tower V + LM A. Suspect: V fine-tuned + its own LM B and projector."""
    from scratchcheck import synthetic

    pix, lab = images(0, 4000)
    tower = build(500, inputs=48, causal=False)
    train(tower, steps, (pix, lab), seed=500)
    ref_tower = weights(tower, "visual.", vision=True)
    pix2, lab2 = images(1, 2000)
    train(tower, max(1, steps // 2), (pix2, lab2), lr=1e-3, seed=501)
    sus_tower = weights(tower, "model.vision_model.", vision=True)
    text = corpus(0)
    lms = []
    for seed in (510, 511):
        net = build(seed)
        train(net, steps, text, seed=seed)
        lms.append(net)
    reference = {**ref_tower, **weights(lms[0], "model.")}
    suspect = {**sus_tower, **weights(lms[1], "model.language_model.")}
    suspect.update(synthetic.projector(7, inp=HIDDEN, out=HIDDEN))
    ref_path = synthetic.save(reference, folder / "vlm_reference", {"model_type": "qwen2_5_vl", **config()})
    sus_path = synthetic.save(suspect, folder / "vlm_suspect", config())
    rows = [
        compare_case("VLM: vision tower (fine-tuned)", "derived", sus_path, ref_path, focus="vision"),
        compare_case("VLM: language model (own)", "independent", sus_path, ref_path, focus="language_model"),
    ]
    for row in rows:
        log(_line(row))
    return rows


def summary(rows: list[Row]) -> dict:
    from scipy.stats import kstest

    derived = [r for r in rows if r.truth == "derived"]
    null = [r for r in rows if r.truth == "independent"]
    floor = min((r.p for r in null), default=1.0)
    null_lm = [r.p_lm for r in null if r.p_lm is not None and not r.case.startswith("VLM")]
    from scratchcheck.evidence import stats

    panel = [r.screening for r in null if r.screening is not None and r.case.startswith("base")]
    derived_screen = [r.screening for r in derived if r.screening is not None]
    return {
        "derived_cases": len(derived),
        "independent_pairs": len(null),
        "tpr_at_zero_fp": sum(r.p < floor and r.verdict in ("derived", "identical") for r in derived)
        / max(1, len(derived)),
        "largest_p_derived": max((r.p for r in derived), default=float("nan")),
        "largest_log10_p_derived": max((r.log10_p for r in derived), default=float("nan")),
        "smallest_p_independent": floor,
        "independent_called_derived": sum(r.verdict in ("derived", "identical") for r in null),
        "ks_uniform_p": float(kstest(null_lm, "uniform").pvalue) if len(null_lm) > 2 else float("nan"),
        "ks_n": len(null_lm),
        # The screening trap: std curves of unrelated models correlate too; only a percentile
        # against this panel of independent pairs means anything.
        "std_curve_corr_independent_median": float(np.median(panel)) if panel else float("nan"),
        "std_curve_corr_independent_90th": float(np.percentile(panel, 90)) if panel else float("nan"),
        "std_curve_percentile_of_derived_median": float(
            np.median([stats.percentile(v, panel) for v in derived_screen])
        )
        if panel and derived_screen
        else float("nan"),
    }


def _p_text(r: Row) -> str:
    return f"1e{r.log10_p:.0f}" if r.log10_p < -299 else f"{r.p:.2e}"


def _line(r: Row) -> str:
    return (
        f"{r.case:50s} {r.truth:11s} {r.verdict:13s} {r.kind or '-':14s} p={_p_text(r):>9s} {r.seconds:6.2f}s"
    )


def markdown(rows: list[Row], summ: dict) -> str:
    out = ["| case | truth | verdict | kind | p | seconds |", "|---|---|---|---|---|---|"]
    shown = [r for r in rows if r.truth == "derived" or not r.case.startswith("base")]
    for r in shown:
        out.append(
            f"| {r.case} | {r.truth} | {r.verdict} | {r.kind or ''} | {_p_text(r)} | {r.seconds:.2f} |"
        )
    nulls = [r for r in rows if r.case.startswith("base")]
    if nulls:
        verdicts = {v: sum(r.verdict == v for r in nulls) for v in sorted({r.verdict for r in nulls})}
        out.append(
            f"| {len(nulls)} pairs of independent bases | independent | "
            + ", ".join(f"{v} x{n}" for v, n in verdicts.items())
            + f" | | min {min(r.p for r in nulls):.2e} | {np.mean([r.seconds for r in nulls]):.2f} (mean) |"
        )
    out.append("")
    out += [f"- {k}: {v:.3g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summ.items()]
    return "\n".join(out)


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--json", type=Path, help="write rows and summary here")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch CPU threads")
    args = parser.parse_args()
    THREADS = args.threads
    rows = run(args.seeds, steps=args.steps)
    summ = summary(rows)
    print()
    print(markdown(rows, summ))
    if args.json:
        args.json.write_text(json.dumps({"rows": [r.__dict__ for r in rows], "summary": summ}, indent=1))


if __name__ == "__main__":
    main()
