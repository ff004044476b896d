"""Renames, fused/split, transposed, stacked and split-conv layouts pair in both directions, and the
normalised views of a pair hold exactly the same numbers."""

import numpy as np
import pytest

from scratchcheck import synthetic as S
from scratchcheck.align import align

DECODER = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}
HEADS = {"num_attention_heads": 4, "num_key_value_heads": 2}


def _rename(weights, table):
    out = {}
    for name, value in weights.items():
        for old, new in table:
            name = name.replace(old, new)
        out[name] = value
    return out


def meta_names(w):
    """Meta's original LLaMA names."""
    table = [("model.embed_tokens", "tok_embeddings"), ("model.norm", "norm"), ("lm_head", "output"),
             ("model.layers", "layers"), ("self_attn.q_proj", "attention.wq"), ("self_attn.k_proj", "attention.wk"),
             ("self_attn.v_proj", "attention.wv"), ("self_attn.o_proj", "attention.wo"),
             ("mlp.gate_proj", "feed_forward.w1"), ("mlp.up_proj", "feed_forward.w3"),
             ("mlp.down_proj", "feed_forward.w2"), ("input_layernorm", "attention_norm"),
             ("post_attention_layernorm", "ffn_norm")]  # fmt: skip
    return _rename(w, table)


def fused(w):
    """Phi-3 style: one qkv_proj (grouped-query sizes) and one gate_up_proj per layer."""
    out = {
        n: v
        for n, v in w.items()
        if not any(k in n for k in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"))
    }
    for i in range(DECODER["layers"]):
        p = f"model.layers.{i}."
        out[p + "self_attn.qkv_proj.weight"] = np.concatenate(
            [w[p + f"self_attn.{x}_proj.weight"] for x in "qkv"]
        )
        out[p + "mlp.gate_up_proj.weight"] = np.concatenate(
            [w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]
        )
    return out


def gpt2(seed, layers=2, hidden=64, vocab=128, positions=32):
    """GPT-2's Conv1D layout: every linear weight stored [in, out], QKV fused in c_attn."""
    rng = np.random.default_rng(seed)
    w = {"transformer.wte.weight": rng.standard_normal((vocab, hidden)).astype(np.float32),
         "transformer.wpe.weight": (0.02 * rng.standard_normal((positions, hidden))).astype(np.float32),
         "transformer.ln_f.weight": (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)}  # fmt: skip
    for i in range(layers):
        p = f"transformer.h.{i}."
        for name, shape in (("attn.c_attn", (hidden, 3 * hidden)), ("attn.c_proj", (hidden, hidden)),
                            ("mlp.c_fc", (hidden, 4 * hidden)), ("mlp.c_proj", (4 * hidden, hidden))):  # fmt: skip
            w[p + name + ".weight"] = rng.standard_normal(shape).astype(np.float32)
            w[p + name + ".bias"] = rng.standard_normal(shape[1]).astype(np.float32)
        for norm in ("ln_1", "ln_2"):
            w[p + norm + ".weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
    return w


def gpt2_as_gguf(w):
    """What llama.cpp writes for GPT-2: the same tensors transposed to [out, in], GGUF names."""
    table = [("transformer.wte", "token_embd"), ("transformer.wpe", "position_embd"), ("transformer.ln_f", "output_norm"),
             ("transformer.h.", "blk."), ("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
             ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down"), ("ln_1", "attn_norm"), ("ln_2", "ffn_norm")]  # fmt: skip
    out = _rename(w, table)
    return {n: (v.T.copy() if v.ndim == 2 and n.startswith("blk.") else v) for n, v in out.items()}


def stacked(w, experts=4):
    """GGUF's stacked experts: one [experts, out, in] tensor per projection and layer."""
    out = {n: v for n, v in w.items() if ".experts." not in n}
    for i in range(2):
        for hf, gg in (
            ("gate_proj", "ffn_gate_exps"),
            ("up_proj", "ffn_up_exps"),
            ("down_proj", "ffn_down_exps"),
        ):
            parts = [w.pop(f"model.layers.{i}.mlp.experts.{e}.{hf}.weight") for e in range(experts)]
            out[f"model.layers.{i}.{gg}.weight"] = np.stack(parts)
    return out


def hf_stacked(w, *, prefix="mlp", interleaved=False, in_out=True, experts=4):
    """Experts stacked the Hugging Face way: GPT-OSS (``mlp.``, gate/up columns alternating) and
    Llama 4 (``feed_forward.``, halves) store ``[E, in, out]``; ``in_out=False`` stores ``[E, out, in]``."""
    out = {n: v for n, v in w.items() if ".experts." not in n and not n.endswith("mlp.gate.weight")}
    for i in range(2):
        p = f"model.layers.{i}."
        out[f"{p}{prefix}.router.weight"] = w[p + "mlp.gate.weight"]
        gate, up, down = (
            np.stack([w[f"{p}mlp.experts.{e}.{x}_proj.weight"] for e in range(experts)])
            for x in ("gate", "up", "down")
        )
        if interleaved:
            gate_up = np.empty((experts, 2 * gate.shape[1], gate.shape[2]), np.float32)
            gate_up[:, 0::2], gate_up[:, 1::2] = gate, up
        else:
            gate_up = np.concatenate([gate, up], axis=1)
        if in_out:
            gate_up, down = gate_up.transpose(0, 2, 1), down.transpose(0, 2, 1)
        out[f"{p}{prefix}.experts.gate_up_proj"] = np.ascontiguousarray(gate_up)
        out[f"{p}{prefix}.experts.down_proj"] = np.ascontiguousarray(down)
    return out


def split_patch_embed(w):
    """llama.cpp's mmproj: the Conv3d patch embedding saved as two Conv2d halves."""
    conv = w.pop("visual.patch_embed.proj.weight")
    renamed = S.rename_prefix(w, "visual.", "v.")
    return renamed | {
        "v.patch_embd.weight": conv[:, :, 0].copy(),
        "v.patch_embd.weight.1": conv[:, :, 1].copy(),
    }


def _cases():
    llama = S.llama_decoder(1, **DECODER)
    moe = S.llama_decoder(1, **{**DECODER, "intermediate": 32}, experts=4)
    narrow = S.llama_decoder(1, **{**DECODER, "intermediate": 24}, experts=4)
    tower = S.qwen25_vl_vision(1, depth=2, hidden=64, heads=4, intermediate=96, out_hidden=64)
    g = gpt2(1)
    return {
        "meta-names": (llama, meta_names(llama), {}, {}),
        "fused-qkv-gate-up": (llama, fused(llama), HEADS, HEADS),
        "gpt2-conv1d": (g, gpt2_as_gguf(g), {}, {}),
        "stacked-experts": (moe, stacked(dict(moe)), {}, {}),
        "split-patch-embed": (tower, split_patch_embed(dict(tower)), {}, {}),
        "gpt-oss-experts": (moe, hf_stacked(moe, interleaved=True), {}, {"model_type": "gpt_oss"}),
        "llama4-experts": (moe, hf_stacked(moe, prefix="feed_forward"), {}, {"model_type": "llama4_text"}),
        # [E, 2I, H] or [E, H, 2I]: told apart by the hidden size, so 2I must differ from it here.
        "experts-stored-out-in": (narrow, hf_stacked(narrow, in_out=False), {}, {"hidden_size": 64}),
    }


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_layouts_pair_both_ways_with_identical_values(case, direction, save, opened):
    a, b, config_a, config_b = _cases()[case]
    first, second = opened(save("a", a, config_a)), opened(save("b", b, config_b))
    suspect, reference = (first, second) if direction == "forward" else (second, first)
    result = align(suspect, reference)
    assert not result.unpaired_suspect and not result.unpaired_reference and not result.not_comparable
    assert all(p.paired_by in {"name", "role"} for p in result.pairs)
    for pair in result.pairs:
        np.testing.assert_array_equal(pair.suspect.load(), pair.reference.load(), err_msg=pair.role)
    assert len(result.pairs) >= len(a) - 1


def test_views_of_stored_tensors_are_numpy_views(save, opened):
    model = opened(save("gpt2", gpt2(1)))
    q = next(e for e in model.entries if e.role == "attn.q.weight" and e.layer == 0)
    assert q.view.shape == (64, 64) and q.view.transform == "transposed, rows 0:64"
    assert not q.view.load().flags.owndata


def test_gpt_oss_experts_with_biases_pair_with_a_gguf_export(save, opened):
    """GPT-OSS's stacked, interleaved experts and their biases against llama.cpp's split ones."""
    rng = np.random.default_rng(3)
    experts, hidden, width = 3, 16, 8
    gate, up = rng.standard_normal((2, experts, width, hidden)).astype(np.float32)
    down = rng.standard_normal((experts, hidden, width)).astype(np.float32)
    gate_b, up_b = rng.standard_normal((2, experts, width)).astype(np.float32)
    down_b = rng.standard_normal((experts, hidden)).astype(np.float32)
    gate_up = np.empty((experts, hidden, 2 * width), np.float32)
    gate_up[..., 0::2], gate_up[..., 1::2] = gate.transpose(0, 2, 1), up.transpose(0, 2, 1)
    gate_up_b = np.empty((experts, 2 * width), np.float32)
    gate_up_b[:, 0::2], gate_up_b[:, 1::2] = gate_b, up_b
    p, g = "model.layers.0.", "blk.0."
    hf = {p + "mlp.experts.gate_up_proj": gate_up, p + "mlp.experts.gate_up_proj_bias": gate_up_b,
          p + "mlp.experts.down_proj": np.ascontiguousarray(down.transpose(0, 2, 1)),
          p + "mlp.experts.down_proj_bias": down_b, p + "self_attn.sinks": rng.standard_normal(4).astype(np.float32)}  # fmt: skip
    gguf = {g + "ffn_gate_exps.weight": gate, g + "ffn_up_exps.weight": up, g + "ffn_down_exps.weight": down,
            g + "ffn_gate_exps.bias": gate_b, g + "ffn_up_exps.bias": up_b, g + "ffn_down_exps.bias": down_b,
            g + "attn_sinks.weight": hf[p + "self_attn.sinks"]}  # fmt: skip
    suspect = opened(save("gpt-oss", hf, {"model_type": "gpt_oss", "hidden_size": hidden}))
    result = align(suspect, opened(save("gguf-names", gguf)))
    assert not result.unpaired_suspect and not result.unpaired_reference and not result.not_comparable
    roles = {(pair.role, pair.suspect.load().shape) for pair in result.pairs}
    assert roles >= {("expert.gate.weight", (width, hidden)), ("expert.up.bias", (width,)),
                     ("expert.down.weight", (hidden, width)), ("expert.down.bias", (hidden,))}  # fmt: skip
    assert len(result.pairs) == 6 * experts + 1
    for pair in result.pairs:
        np.testing.assert_array_equal(pair.suspect.load(), pair.reference.load(), err_msg=pair.suspect.label)
    up1 = next(e for e in suspect.entries if e.role == "expert.up.weight" and e.expert == 1)
    assert up1.view.transform == "expert 1 of stacked, transposed, rows 1:16:2 (interleaved)"
