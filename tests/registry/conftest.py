"""A zoo of small models for the registry: several architectures, siblings, a lineage chain, and the
derivatives scan must trace back (fine-tuned, permuted, layer-dropped, vocabulary-changed, noised,
rotated, a VLM around a registered vision tower).

Architectures differ in width so that only models of one family share tensor shapes, as real
families do (a 7B and a ViT-L share none); each family holds independent models and relatives.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from scratchcheck import synthetic as S

Weights = dict[str, np.ndarray]

SMALL = {"layers": 4, "hidden": 32, "heads": 4, "kv_heads": 2, "intermediate": 64, "vocab": 128}
WIDE = {"layers": 6, "hidden": 48, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 160}
MOE = {"layers": 3, "hidden": 40, "heads": 4, "kv_heads": 2, "intermediate": 48, "vocab": 96, "experts": 4}
TINY = {"layers": 3, "hidden": 56, "heads": 4, "kv_heads": 4, "intermediate": 80, "vocab": 64}
VIT = {"depth": 4, "hidden": 24, "heads": 4, "intermediate": 72, "out_hidden": 36, "patch": 4}


def decoder(seed: int, arch: dict) -> Weights:
    return S.llama_decoder(seed, **arch)


def config(arch: dict) -> dict:
    return S.llama_config(**{k: v for k, v in arch.items() if k != "experts"})


def vit(seed: int) -> Weights:
    return S.qwen25_vl_vision(seed, **{k: v for k, v in VIT.items() if k != "heads"})


def change_vocab(weights: Weights, keep: int, extra: int, seed: int) -> Weights:
    """Vocabulary surgery: keep the first ``keep`` token rows of the embeddings and head, add ``extra``."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        w = weights[name][:keep]
        new = (0.02 * rng.standard_normal((extra, w.shape[1]))).astype(np.float32)
        out[name] = np.concatenate([w, new])
    return out


def rotate_residual(weights: Weights, seed: int, layers: int) -> Weights:
    """The function-preserving disguise: norm gains folded into the next matrices, then the residual
    stream rotated by a random orthogonal matrix (embeddings and head included)."""
    hidden = weights["model.embed_tokens.weight"].shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((hidden, hidden)))
    out = dict(weights)
    out["model.embed_tokens.weight"] = (weights["model.embed_tokens.weight"] @ q).astype(np.float32)
    for i in range(layers):
        p = f"model.layers.{i}."
        for norm, readers in (
            ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
            ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
        ):
            gain = weights[p + norm + ".weight"]
            for r in readers:
                out[p + r + ".weight"] = ((weights[p + r + ".weight"] * gain) @ q).astype(np.float32)
            out[p + norm + ".weight"] = np.ones_like(gain)
        for writer in ("self_attn.o_proj", "mlp.down_proj"):
            out[p + writer + ".weight"] = (q.T @ weights[p + writer + ".weight"]).astype(np.float32)
    gain = weights["model.norm.weight"]
    out["lm_head.weight"] = ((weights["lm_head.weight"] * gain) @ q).astype(np.float32)
    out["model.norm.weight"] = np.ones_like(gain)
    return out


def vlm(tower: Weights, seed: int) -> Weights:
    """A HyperCLOVA X-style VLM: ``tower`` renamed under ``model.vision_model.``, a projector and an
    independent language model."""
    weights = S.rename_prefix(tower, "visual.", "model.vision_model.")
    weights |= S.projector(seed, inp=VIT["out_hidden"], out=44)
    lm = S.llama_decoder(seed, **{**SMALL, "hidden": 44})
    weights |= S.rename_prefix(
        S.rename_prefix(lm, "model.", "model.language_model.model."),
        "lm_head.",
        "model.language_model.lm_head.",
    )
    return weights


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> SimpleNamespace:
    """The registered references (folder ``refs/``, 20 models) and the suspects (``suspects/``)."""
    root = tmp_path_factory.mktemp("zoo")
    refs, suspects = root / "refs", root / "suspects"
    small_a, small_b, small_c = (decoder(s, SMALL) for s in (10, 11, 12))
    wide_x, wide_y, wide_z = (decoder(s, WIDE) for s in (20, 21, 22))
    chain_a = decoder(50, WIDE)
    chain_b = S.fine_tune(chain_a, 0.3, seed=51)
    moe_p, moe_q = (decoder(s, MOE) for s in (30, 31))
    vit_1, vit_2, vit_3 = (vit(s) for s in (40, 41, 42))
    vit_base = vit(43)  # the siblings' common base, not registered
    references = {
        "small-a": (small_a, config(SMALL)),
        "small-b": (small_b, config(SMALL)),
        "small-c": (small_c, config(SMALL)),
        "small-a-chat": (S.fine_tune(small_a, 0.1, seed=1), config(SMALL)),
        "small-a-code": (S.fine_tune(small_a, 0.1, seed=2), config(SMALL)),
        "wide-x": (wide_x, config(WIDE)),
        "wide-y": (wide_y, config(WIDE)),
        "wide-z": (wide_z, config(WIDE)),
        "chain-a": (chain_a, config(WIDE)),
        "chain-b": (chain_b, config(WIDE)),
        "moe-p": (moe_p, config(MOE)),
        "moe-q": (moe_q, config(MOE)),
        "tiny-1": (decoder(60, TINY), config(TINY)),
        "tiny-2": (decoder(61, TINY), config(TINY)),
        "tiny-3": (decoder(62, TINY), config(TINY)),
        "vit-1": (vit_1, None),
        "vit-2": (vit_2, None),
        "vit-3": (vit_3, None),
        "vit-sib-7b": (S.fine_tune(vit_base, 0.3, seed=3), None),
        "vit-sib-3b": (S.fine_tune(vit_base, 0.3, seed=4), None),
    }
    for name, (weights, cfg) in references.items():
        S.save(weights, refs / name, cfg)
    derived = {
        "ft-small-b": (S.fine_tune(small_b, 0.2, seed=7), config(SMALL), "small-b"),
        "perm-wide-y": (S.permute_units(wide_y, seed=7), config(WIDE), "wide-y"),
        "drop-wide-z": (S.drop_layers(wide_z, 2), config({**WIDE, "layers": 3}), "wide-z"),
        "vocab-small-c": (
            change_vocab(S.fine_tune(small_c, 0.05, seed=7), 100, 40, 7),
            config(SMALL),
            "small-c",
        ),
        "noised-moe-p": (S.noised(moe_p, seed=7), config(MOE), "moe-p"),
        "ft-vit-sib-7b": (S.fine_tune(references["vit-sib-7b"][0], 0.05, seed=7), None, "vit-sib-7b"),
        "chain-c": (S.fine_tune(chain_b, 0.1, seed=52), config(WIDE), "chain-b"),
    }
    for name, (weights, cfg, _) in derived.items():
        S.save(weights, suspects / name, cfg)
    S.save(rotate_residual(small_a, 7, SMALL["layers"]), suspects / "rot-small-a", config(SMALL))
    S.save(decoder(999, SMALL), suspects / "indep-small", config(SMALL))
    S.save(vit(998), suspects / "indep-vit", None)
    S.save(vlm(S.fine_tune(vit_1, 0.1, seed=8), 77), suspects / "vlm", None)
    return SimpleNamespace(
        root=root,
        refs=refs,
        suspects=suspects,
        names=sorted(references),
        parents={name: parent for name, (_, _, parent) in derived.items()},
    )


@pytest.fixture(scope="session")
def fingerprints(tmp_path_factory) -> dict[str, Path]:
    """Fingerprint files of three small unrelated models, by name."""
    from scratchcheck.fingerprint import fingerprint

    root = tmp_path_factory.mktemp("fingerprints")
    out = {}
    for seed, name in enumerate(("x", "y", "z")):
        model = S.save(decoder(100 + seed, TINY), root / name, config(TINY))
        out[name] = fingerprint(model, root / f"{name}.scfp") and root / f"{name}.scfp"
    return out


@pytest.fixture(scope="session")
def zoo_registry(zoo, tmp_path_factory) -> Path:
    """The zoo's references indexed (local engine) into a registry database; its path."""
    from scratchcheck.registry.index import index
    from scratchcheck.registry.sources import add_source, expand
    from scratchcheck.registry.store import Registry

    path = tmp_path_factory.mktemp("registry") / "zoo.sqlite"
    with Registry(path) as reg:
        # chain-b's model card names its parent, as Qwen2-Audio's names Whisper
        add_source(reg, str(zoo.refs / "chain-b"), parents=["chain-a"])
        summary = index(expand([str(zoo.refs)]), reg, workers=2)
        assert summary.skipped == [str(zoo.refs / "chain-b")] and not summary.failed
        assert [e.name for e in reg.entries()] == zoo.names
    return path
