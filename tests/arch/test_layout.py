"""Components and canonical roles from names, shapes and configs, for the families in DOMAIN.md."""

import json

import numpy as np
import pytest

from scratchcheck import synthetic as S
from scratchcheck.arch import layout
from scratchcheck.io import open_model


@pytest.fixture
def model(tmp_path):
    """``model(names_and_shapes, config=None)`` -> the layout of a checkpoint with those tensors."""
    opened = []

    def _model(shapes: dict, config: dict | None = None):
        weights = {n: np.zeros(s, np.float32) for n, s in shapes.items()}
        opened.append(open_model(S.save(weights, tmp_path / f"m{len(opened)}", config)))
        return layout(opened[-1])

    yield _model
    for checkpoint in opened:
        checkpoint.close()


def _roles(m):
    return {e.view.label: (e.component, e.role, e.layer, e.expert) for e in m.entries}


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("model.layers.3.self_attn.q_proj.weight", (8, 8), ("language_model", "attn.q.weight", 3, None)),
        ("model.layers.3.self_attn.o_proj.bias", (8,), ("language_model", "attn.o.bias", 3, None)),
        ("model.layers.0.ln1.weight", (8,), ("language_model", "norm.attn.weight", 0, None)),  # Yi
        ("layers.2.feed_forward.w3.weight", (8, 8), ("language_model", "mlp.up.weight", 2, None)),  # Meta
        ("tok_embeddings.weight", (8, 8), ("embeddings", "embed.weight", None, None)),
        ("output.weight", (8, 8), ("head", "head.weight", None, None)),
        ("blk.1.ffn_down.weight", (8, 8), ("language_model", "mlp.down.weight", 1, None)),  # GGUF
        ("output_norm.weight", (8,), ("language_model", "norm.final.weight", None, None)),
        ("model.layers.1.mlp.experts.5.up_proj.weight", (8, 8), ("language_model", "expert.up.weight", 1, 5)),
        (
            "model.layers.1.block_sparse_moe.experts.2.w2.weight",
            (8, 8),
            ("language_model", "expert.down.weight", 1, 2),
        ),
        ("model.layers.1.mlp.gate.weight", (4, 8), ("language_model", "router.weight", 1, None)),
        (
            "model.layers.1.mlp.shared_experts.gate_proj.weight",
            (8, 8),
            ("language_model", "shared_expert.gate.weight", 1, None),
        ),
        ("encoder.layer.4.attention.self.key.bias", (8,), ("language_model", "attn.k.bias", 4, None)),  # BERT
        (
            "vision_model.encoder.layers.0.layer_norm2.weight",
            (8,),
            ("vision", "norm.mlp.weight", 0, None),
        ),  # CLIP
        (
            "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
            (8, 8),
            ("vision", "mlp.up.weight", 0, None),
        ),
        ("multi_modal_projector.linear_1.weight", (8, 8), ("projector", "linear_1.weight", None, None)),
        ("model.visual.blocks.2.norm1.weight", (8,), ("vision", "norm.attn.weight", 2, None)),
        ("model.vision_model.merger.ln_q.weight", (8,), ("vision", "merger.ln_q.weight", None, None)),
        ("model.audio_model.layers.0.fc1.weight", (8, 8), ("audio", "mlp.up.weight", 0, None)),
        ("model.mm_projector.0.weight", (8, 8), ("projector", "0.weight", None, None)),
        (
            "model.language_model.model.layers.0.mlp.up_proj.weight",
            (8, 8),
            ("language_model", "mlp.up.weight", 0, None),
        ),
        ("model.language_model.lm_head.weight", (8, 8), ("head", "head.weight", None, None)),
        (
            "model.layers.0.mystery.thing.weight",
            (8,),
            ("language_model", "layers.{i}.mystery.thing.weight", 0, None),
        ),
        ("t0417", (8,), ("other", "t0417", None, None)),
    ],
)
def test_roles_and_components(model, name, shape, expected):
    assert _roles(model({name: shape}))[name] == expected


def test_whisper_encoder_is_audio_only_when_the_config_says_whisper(model):
    names = {"model.encoder.layers.0.self_attn.k_proj.weight": (8, 8)}
    assert model(names, {"model_type": "whisper"}).components[0].kind == "audio"
    assert model(names).components[0].kind == "language_model"


def test_an_hcx_style_vlm_splits_into_its_parts_with_shares(model):
    shapes = {
        "model.vision_model.patch_embed.proj.weight": (16, 3, 2, 2, 2),
        "model.vision_model.blocks.0.attn.qkv.weight": (48, 16),
        "model.mm_projector.0.weight": (32, 64),
        "model.language_model.model.embed_tokens.weight": (100, 32),
        "model.language_model.model.layers.0.self_attn.q_proj.weight": (32, 32),
        "model.language_model.lm_head.weight": (100, 32),
    }
    m = model(shapes)
    assert [(c.name, c.kind, c.params) for c in m.components] == [
        ("vision", "vision", 16 * 24 + 48 * 16),
        ("projector", "projector", 32 * 64),
        ("embeddings", "embeddings", 3200),
        ("language_model", "language_model", 1024),
        ("head", "head", 3200),
    ]
    roles = _roles(m)
    assert roles["model.vision_model.patch_embed.proj.weight"][1] == "patch_embed.weight"
    patch = next(e for e in m.entries if e.role == "patch_embed.weight")
    assert patch.view.shape == (16, 24)
    assert {roles[f"model.vision_model.blocks.0.attn.qkv.weight[{p}]"][1] for p in "qkv"} == {
        "attn.q.weight",
        "attn.k.weight",
        "attn.v.weight",
    }


def test_fused_qkv_splits_by_the_configs_grouped_query_heads(model):
    config = {"num_attention_heads": 8, "num_key_value_heads": 2, "hidden_size": 64}
    m = model({"model.layers.0.self_attn.qkv_proj.weight": (96, 64)}, config)
    parts = {e.role: (e.view.shape, e.n_heads, e.head_dim) for e in m.entries}
    assert parts == {
        "attn.q.weight": ((64, 64), 8, 8),
        "attn.k.weight": ((16, 64), 2, 8),
        "attn.v.weight": ((16, 64), 2, 8),
    }


def test_stacked_experts_become_one_view_each(model):
    m = model({"blk.0.ffn_up_exps.weight": (3, 16, 8)})
    assert [(e.role, e.expert, e.view.shape) for e in m.entries] == [
        ("expert.up.weight", e, (16, 8)) for e in range(3)
    ]


def test_an_mtp_layer_is_an_extra_component(model):
    m = model(
        {
            "model.layers.0.mlp.up_proj.weight": (8, 8),
            "model.layers.1.eh_proj.weight": (8, 16),
            "model.layers.1.mlp.up_proj.weight": (8, 8),
        }
    )
    assert [(c.name, c.kind, c.tensors) for c in m.components] == [
        ("language_model", "language_model", ("model.layers.0.mlp.up_proj.weight",)),
        ("mtp", "extra", ("model.layers.1.eh_proj.weight", "model.layers.1.mlp.up_proj.weight")),
    ]


def test_a_user_mapping_file_adds_components_and_roles(tmp_path):
    mapping = tmp_path / "mine.json"
    mapping.write_text(
        json.dumps(
            {
                "family": "mine",
                "components": [{"pattern": "^speech\\.", "kind": "audio", "name": "speech"}],
                "block": [{"match": "mix.{p}", "role": "attn.o.{p}"}],
                "top": [{"match": "frontend.conv.weight", "role": "patch_embed.weight", "layout": "flatten"}],
            }
        )
    )
    weights = {
        "speech.frontend.conv.weight": np.zeros((4, 2, 3), np.float32),
        "speech.layers.0.mix.weight": np.zeros((4, 4), np.float32),
    }
    with open_model(S.save(weights, tmp_path / "m")) as checkpoint:
        m = layout(checkpoint, extra_conventions=mapping)
        assert [(c.name, c.kind) for c in m.components] == [("speech", "audio")]
        assert {e.role: e.view.shape for e in m.entries} == {
            "patch_embed.weight": (4, 6),
            "attn.o.weight": (4, 4),
        }
        plain = layout(checkpoint)
        assert {e.role for e in plain.entries} == {
            "speech.frontend.conv.weight",
            "speech.layers.{i}.mix.weight",
        }


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"match": "w", "role": "mlp.up.weight", "layout": "unstack"}, "unknown layout 'unstack'"),
        (
            {
                "match": "w",
                "role": "expert.{part}.weight",
                "layout": "unstack_experts_gate_up",
                "interleaved_for": "gpt_oss",
            },
            "'interleaved_for' must be a list of model types",
        ),
    ],
)
def test_a_mapping_file_with_a_bad_rule_is_a_one_line_error(tmp_path, rule, problem):
    from scratchcheck.arch.conventions import load_conventions
    from scratchcheck.errors import FormatError

    mapping = tmp_path / "bad.json"
    mapping.write_text(json.dumps({"family": "bad", "block": [rule]}))
    with pytest.raises(FormatError, match=problem) as caught:
        load_conventions(mapping)
    assert "bad.json" in str(caught.value) and "\n" not in str(caught.value)
