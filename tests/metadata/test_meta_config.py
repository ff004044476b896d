"""Config channel: facts verbatim with file + JSON path, recursive diff, leaks, malformed files."""

from __future__ import annotations

from pathlib import Path

from meta_builders import LEAKED_PATH, files_of, hcx_config, qwen_config, write_json

from scratchcheck.metadata.config import (
    absolute_paths,
    card_facts,
    config_facts,
    config_observations,
    diff_configs,
    gguf_facts,
    identifiers,
    is_config_file,
    load_configs,
)


def _facts(folder: Path) -> list[tuple[str, str, str, object]]:
    configs, _ = load_configs(files_of(folder))
    return [(f.kind, f.file, f.json_path, f.value) for f in config_facts(configs)]


def test_hcx_nested_model_type_and_leaked_path_are_reported_verbatim(hcx_dir: Path) -> None:
    facts = _facts(hcx_dir)
    assert ("model_type", "config.json", "$.vision_config.model_type", "qwen2_5_vl") in facts
    assert ("model_type", "config.json", "$.text_config.model_type", "hyperclovax") in facts
    assert ("model_type", "config.json", "$.model_type", "vlm") in facts
    assert ("name_or_path", "config.json", "$.vision_model_name_or_path", LEAKED_PATH) in facts
    assert ("architectures", "config.json", "$.architectures", ["HCXVisionForCausalLM"]) in facts
    assert (
        "auto_map",
        "config.json",
        "$.auto_map",
        {"AutoModelForCausalLM": "modeling_hcx.HCXVisionForCausalLM"},
    ) in facts
    assert ("transformers_version", "config.json", "$.transformers_version", "4.52.4") in facts


def test_absolute_paths_anywhere_in_any_config_file_but_not_urls(tmp_path: Path) -> None:
    write_json(tmp_path / "config.json", {"model_type": "x", "_commit_hash": "abc123"})
    write_json(
        tmp_path / "sub" / "preprocessor_config.json",
        {
            "notes": ["trained from /home/alice/runs/ckpt-9 on 1/2/2024", "https://huggingface.co/a/b"],
            "odd key": "C:\\models\\x",
        },
    )
    facts = _facts(tmp_path)
    assert ("absolute_path", "sub/preprocessor_config.json", "$.notes[0]", "/home/alice/runs/ckpt-9") in facts
    assert ("absolute_path", "sub/preprocessor_config.json", '$["odd key"]', "C:\\models\\x") in facts
    assert ("commit_hash", "config.json", "$._commit_hash", "abc123") in facts
    assert not [f for f in facts if "huggingface" in str(f[3])]


def test_absolute_path_pattern() -> None:
    assert absolute_paths("/mnt/a/b/") == ["/mnt/a/b/"]
    assert absolute_paths("see ~/models/x and /single") == ["~/models/x"]
    assert absolute_paths("http://host/a/b") == []
    assert absolute_paths("</s> /no_think") == []


def test_tokenizer_and_vocab_json_are_not_configs() -> None:
    assert (
        is_config_file("config.json")
        and is_config_file("1_Pooling/config.json")
        and is_config_file("tokenizer_config.json")
    )
    assert (
        not is_config_file("tokenizer.json")
        and not is_config_file("vocab.json")
        and not is_config_file("x/tokenizer.json")
    )


def test_malformed_and_missing_configs_are_problems(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama",')
    (tmp_path / "generation_config.json").write_bytes(b"\xff\xfe{}")
    configs, problems = load_configs(files_of(tmp_path))
    assert configs == {}
    reasons = {p.file: p.reason for p in problems}
    assert reasons["config.json"].startswith("invalid JSON: Expecting")
    assert reasons["generation_config.json"] == "not UTF-8 text"
    _, problems = load_configs({})
    assert [(p.file, p.reason) for p in problems] == [("config.json", "missing")]
    _, problems = load_configs({"config.json": tmp_path / "gone.json"})
    assert problems[0].reason.startswith("cannot read")


def test_recursive_diff_reaches_nested_sub_configs() -> None:
    a = {"config.json": hcx_config(), "extra.json": {}}
    b = {"config.json": qwen_config()}
    diff = diff_configs(a, b)
    assert diff.files_compared == ("config.json",)
    assert diff.only_suspect_files == ("extra.json",)
    changes = {d.json_path: (d.change, d.suspect, d.reference) for d in diff.differences}
    assert changes["$.model_type"] == ("changed", "vlm", "qwen2_5_vl")
    assert changes["$.vision_config.model_type"] == ("only_suspect", "qwen2_5_vl", None)
    assert changes["$.hidden_size"] == ("only_reference", None, 96)
    assert "$.vision_config.depth" not in changes  # equal nested values are not differences
    assert diff.equal_values == 3  # vision_config.{hidden_size, depth, out_hidden_size}


def test_diff_of_lists_of_dicts_goes_by_index() -> None:
    diff = diff_configs({"c.json": {"m": [{"a": 1}, {"a": 2}]}}, {"c.json": {"m": [{"a": 1}, {"a": 3}]}})
    assert [(d.json_path, d.suspect, d.reference) for d in diff.differences] == [("$.m[1].a", 2, 3)]
    diff = diff_configs({"c.json": {"v": 1}}, {"c.json": {"v": 1.0}})
    assert diff.differences[0].change == "changed"  # 1 and 1.0 are different JSON


def test_nested_model_type_and_leak_naming_the_reference_are_strong(hcx_dir: Path, qwen_dir: Path) -> None:
    sus, _ = load_configs(files_of(hcx_dir))
    ref, _ = load_configs(files_of(qwen_dir))
    notes = config_observations(
        config_facts(sus), config_facts(ref), hcx_dir.name, qwen_dir.name, diff_configs(sus, ref)
    )
    strong = [n for n in notes if n.strength == "strong"]
    assert [n.where for n in strong] == [
        ("config.json $.vision_config.model_type",),
        ("config.json $.vision_model_name_or_path",),
    ]
    assert "'qwen2_5_vl'" in strong[0].finding and "not say whether the weights" in strong[0].meaning
    assert LEAKED_PATH in strong[1].finding and "model_type 'qwen2_5_vl'" in strong[1].finding


def test_a_shared_family_name_is_not_a_leak() -> None:
    # Yi is a llama-architecture model: its own paths saying "llama" do not name Meta's model.
    yi = [config_facts({"config.json": {"model_type": "llama", "_name_or_path": "/data/yi/llama_format/"}})][
        0
    ]
    llama = config_facts({"config.json": {"model_type": "llama", "hidden_size": 4096}})
    notes = config_observations(yi, llama, "Yi-34B", "Llama-2-70b-hf", diff_configs({}, {}))
    assert [n.strength for n in notes] == ["weak", "weak"]  # an unnamed path, and the shared model type
    assert "'llama'" in notes[1].finding and "not evidence" in notes[1].meaning


def test_identical_hyperparameters_are_no_evidence() -> None:
    a = {
        "config.json": {
            "model_type": "llama",
            "hidden_size": 8,
            "_name_or_path": "x",
            "transformers_version": "1",
        }
    }
    b = {"config.json": {"model_type": "llama", "hidden_size": 8, "transformers_version": "2"}}
    notes = config_observations(config_facts(a), config_facts(b), "a", "b", diff_configs(a, b))
    assert notes[-1].strength == "none" and "identical apart from names" in notes[-1].finding


def test_identifiers_normalise_names_and_drop_generic_ones() -> None:
    facts = config_facts(
        {"config.json": {"model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VLForConditionalGeneration"]}}
    )
    names = identifiers(facts, "models/Qwen2.5-VL-32B-Instruct")
    assert names == {
        "qwen25vl": "its model_type 'qwen2_5_vl'",
        "qwen25vl32binstruct": "its name 'models/Qwen2.5-VL-32B-Instruct'",
    }


def test_model_card_base_model_and_gguf_general_keys(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "---\nlicense: other\nbase_model:\n  - Qwen/Qwen2.5-VL-32B-Instruct\n---\n# card\n"
    )
    assert [(f.kind, f.json_path, f.value) for f in card_facts(files_of(tmp_path))] == [
        ("base_model", "$.base_model[0]", "Qwen/Qwen2.5-VL-32B-Instruct")
    ]
    facts = gguf_facts(
        {"general.base_model.0.name": "Qwen2.5 7B", "general.file_type": 15, "tokenizer.ggml.model": "gpt2"},
        "m.gguf",
    )
    assert [(f.kind, f.file, f.json_path, f.value) for f in facts] == [
        ("gguf", "m.gguf", '$["general.base_model.0.name"]', "Qwen2.5 7B")
    ]
    (own,) = gguf_facts({"general.architecture": "qwen2"}, "m.gguf")
    assert (own.kind, own.value) == ("model_type", "qwen2")  # the GGUF's own type, never a leak


def test_pathologically_nested_json_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    _, problems = load_configs(files_of(tmp_path))
    assert [(p.file, p.reason) for p in problems] == [("config.json", "unreadable JSON: RecursionError")]
