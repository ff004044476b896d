"""Config channel: identity-revealing values in config files, and a recursive diff of two models' configs.

In the seed disputes the config said more than the weights: a vision sub-config declaring
``model_type: qwen2_5_vl`` and a ``vision_model_name_or_path`` leaking the training machine's copy of
the Qwen2.5-VL-32B visual tower. Both are reported verbatim with the file and JSON path they sit at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .findings import ConfigDiff, ConfigDifference, ConfigFact, Observation, Problem

# JSON files that are data, not configuration: vocabularies are scanned by the tokenizer channel.
_NOT_CONFIG = re.compile(
    r"(^|/)(tokenizer\.json|[^/]*vocab[^/]*\.json|[^/]*merges[^/]*\.json)$", re.IGNORECASE
)
_MAX_CONFIG_BYTES = 8 * 1024 * 1024
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][\w\-]*$")
# A Unix path of two or more segments after a start, whitespace, quote, '=' or '(' (so URLs are not
# matched), a Windows drive path, or a home-relative path.
_ABSOLUTE_PATH = re.compile(
    r"(?:^|(?<=[\s\"'=(]))(/[\w.@+\-]+(?:/[\w.@+\-]*)+)|(\b[A-Za-z]:\\[^\s\"']+)|((?<![\w/])~/[^\s\"']+)"
)
# Keys whose values identify what the model was built from; values equal between models are not
# differences worth reading, these are.
_IDENTITY_KEYS = {"model_type", "architectures", "auto_map", "_commit_hash", "transformers_version"}
_VOLATILE_KEYS = {
    "_name_or_path",
    "name_or_path",
    "_commit_hash",
    "transformers_version",
    "torch_dtype",
    "dtype",
}
_GENERIC_NAMES = {
    "model", "models", "base", "chat", "instruct", "main", "checkpoint", "checkpoints", "snapshots",
    "final", "test", "tmp", "reference", "suspect", "config", "transformers", "pretrained", "weights",
}  # fmt: skip
_CLASS_SUFFIXES = re.compile(
    r"(For(CausalLM|ConditionalGeneration|MaskedLM|SequenceClassification|TokenClassification|"
    r"QuestionAnswering|PreTraining|Seq2SeqLM)|Model|LMHeadModel|PreTrainedModel)$"
)


def is_config_file(name: str) -> bool:
    """Whether a metadata file is a JSON config (``config.json``, ``1_Pooling/config.json``, ...)."""
    return name.lower().endswith(".json") and not _NOT_CONFIG.search(name)


def load_configs(files: dict[str, Path]) -> tuple[dict[str, Any], list[Problem]]:
    """Every JSON config file parsed, by relative name; unreadable or malformed ones as problems."""
    configs: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, path in sorted(files.items()):
        if not is_config_file(name):
            continue
        try:
            if path.stat().st_size > _MAX_CONFIG_BYTES:
                problems.append(
                    Problem(name, f"larger than {_MAX_CONFIG_BYTES >> 20} MiB, not read as a config")
                )
                continue
            configs[name] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(Problem(name, f"cannot read: {exc.strerror or exc}"))
        except UnicodeDecodeError:
            problems.append(Problem(name, "not UTF-8 text"))
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"))
        except (ValueError, RecursionError) as exc:  # e.g. nesting or integers beyond Python's limits
            problems.append(Problem(name, f"unreadable JSON: {type(exc).__name__}"))
    if "config.json" not in configs and not any(p.file == "config.json" for p in problems):
        problems.append(Problem("config.json", "missing"))
    return configs, problems


def json_path(parent: str, key: str | int) -> str:
    """JSONPath of a child: ``$.a.b``, ``$.a[0]``, ``$['odd key']``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if _SIMPLE_KEY.match(key) else f"{parent}[{json.dumps(key)}]"


def _walk(value: Any, path: str = "$") -> Iterator[tuple[str, str | int | None, Any]]:
    """(JSON path, last key, value) for every node below the root."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        child_path = json_path(path, key)
        yield child_path, key, child
        yield from _walk(child, child_path)


def front_matter(text: str) -> dict[str, str | list[str]]:
    """The top-level ``key: value`` and ``key: [- item]`` entries of a YAML front matter block."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    result: dict[str, str | list[str]] = {}
    key = None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        item = re.match(r"^\s+-\s+(.+)$", line)
        if item and key is not None:
            existing = result.get(key)
            result[key] = [
                *(existing if isinstance(existing, list) else []),
                item.group(1).strip().strip("'\""),
            ]
            continue
        entry = re.match(r"^([\w\-]+):\s*(.*)$", line)
        if entry:
            key, value = entry.group(1), entry.group(2).strip().strip("'\"")
            result[key] = value
    return result


def card_facts(files: dict[str, Path]) -> list[ConfigFact]:
    """The ``base_model`` a model card (README.md front matter) declares."""
    path = files.get("README.md")
    try:
        front = front_matter(path.read_text(encoding="utf-8", errors="replace")) if path else {}
    except OSError:
        return []  # reported by the licence scan, which reads the same file
    values = front.get("base_model") or []
    return [
        ConfigFact(
            "base_model",
            "README.md",
            f"$.base_model[{i}]" if isinstance(values, list) else "$.base_model",
            value,
        )
        for i, value in enumerate(values if isinstance(values, list) else [values])
    ]


def config_facts(configs: dict[str, Any]) -> list[ConfigFact]:
    """Model types, architectures, name-or-path values, commit hashes, auto maps, versions, absolute paths."""
    facts: list[ConfigFact] = []
    for file, config in configs.items():
        for path, key, value in _walk(config):
            if isinstance(key, str) and key in _IDENTITY_KEYS:
                kind = "commit_hash" if key == "_commit_hash" else key
                facts.append(ConfigFact(kind, file, path, value))
            elif isinstance(key, str) and "name_or_path" in key.lower():
                facts.append(ConfigFact("name_or_path", file, path, value))
            elif isinstance(value, str):
                facts.extend(
                    ConfigFact("absolute_path", file, path, found) for found in absolute_paths(value)
                )
    return facts


def absolute_paths(text: str) -> list[str]:
    """Absolute file-system paths inside a string (URLs excluded)."""
    return [next(group for group in match.groups() if group) for match in _ABSOLUTE_PATH.finditer(text)]


def gguf_facts(metadata: dict[str, Any], file: str) -> list[ConfigFact]:
    """The identity keys of a GGUF header: ``general.*`` names, base models, source URLs, licence."""
    facts = []
    for key, value in metadata.items():
        if key.startswith("general.") and any(
            word in key
            for word in ("name", "base_model", "source", "url", "license", "architecture", "organization")
        ):
            # general.architecture is the GGUF's own model type, not a name it was derived from.
            kind = "model_type" if key == "general.architecture" else "gguf"
            facts.append(ConfigFact(kind, file, json_path("$", key), _jsonable(value)))
    return facts


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value.item() if hasattr(value, "item") else value


def diff_configs(suspect: dict[str, Any], reference: dict[str, Any]) -> ConfigDiff:
    """Recursive diff of config files paired by relative name (nested sub-configs included)."""
    shared = sorted(set(suspect) & set(reference))
    differences: list[ConfigDifference] = []
    equal = 0
    for file in shared:
        equal += _diff(file, "$", suspect[file], reference[file], differences)
    return ConfigDiff(
        files_compared=tuple(shared),
        only_suspect_files=tuple(sorted(set(suspect) - set(reference))),
        only_reference_files=tuple(sorted(set(reference) - set(suspect))),
        equal_values=equal,
        differences=tuple(differences),
    )


def _diff(file: str, path: str, a: Any, b: Any, out: list[ConfigDifference]) -> int:
    """Append the differences below one node; return how many leaf values were equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        equal = 0
        for key in list(a) + [k for k in b if k not in a]:
            child = json_path(path, key)
            if key not in b:
                out.append(ConfigDifference(file, child, "only_suspect", a[key], None))
            elif key not in a:
                out.append(ConfigDifference(file, child, "only_reference", None, b[key]))
            else:
                equal += _diff(file, child, a[key], b[key], out)
        return equal
    if (
        isinstance(a, list)
        and isinstance(b, list)
        and len(a) == len(b)
        and any(isinstance(x, dict | list) for x in a + b)
    ):
        return sum(
            _diff(file, json_path(path, i), x, y, out) for i, (x, y) in enumerate(zip(a, b, strict=True))
        )
    if a == b and type(a) is type(b):
        return 1
    out.append(ConfigDifference(file, path, "changed", a, b))
    return 0


def identifiers(facts: list[ConfigFact], name: str) -> dict[str, str]:
    """Normalised names a model goes by (model types, architecture stems, name-or-path parts, folder
    name), each with where it comes from, e.g. ``{"qwen25vl": "model_type 'qwen2_5_vl'"}``."""
    found: dict[str, str] = {}

    def add(value: str, origin: str) -> None:
        key = normalise(value)
        if len(key) >= 4 and key not in _GENERIC_NAMES and not key.isdigit():
            found.setdefault(key, origin)

    # model_type first: it is the plainest name when an architecture stem normalises to the same.
    for fact in sorted(facts, key=lambda f: f.kind != "model_type"):
        if fact.kind == "model_type" and isinstance(fact.value, str):
            add(fact.value, f"its model_type {fact.value!r}")
        elif fact.kind == "architectures" and isinstance(fact.value, list):
            for value in fact.value:
                if isinstance(value, str):
                    add(_CLASS_SUFFIXES.sub("", value), f"its architecture {value!r}")
        elif fact.kind in ("name_or_path", "base_model") and isinstance(fact.value, str):
            for part in re.split(r"[/\\]", fact.value):
                add(part, f"its recorded {fact.kind} {fact.value!r}")
    for part in re.split(r"[/\\]", name):
        add(part, f"its name {name!r}")
    return found


def normalise(text: str) -> str:
    """Lower case, letters and digits only: ``Qwen2.5-VL`` and ``qwen2_5_vl`` both become ``qwen25vl``."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def names_of(text: str, names: dict[str, str]) -> list[str]:
    """Where each of ``names`` (normalised, as from ``identifiers``) occurring in ``text`` comes from."""
    flat = normalise(text)
    return sorted({origin for name, origin in names.items() if name in flat})


def _is_top(fact: ConfigFact) -> bool:
    """Whether a fact is the model's own top-level type or architecture (not a sub-config's)."""
    if fact.file == "config.json":
        return fact.json_path in ("$.model_type", "$.architectures")
    return fact.json_path == '$["general.architecture"]'


def _top(facts: list[ConfigFact], kind: str) -> Any:
    return next((f.value for f in facts if f.kind == kind and _is_top(f)), None)


def config_observations(
    suspect: list[ConfigFact],
    reference: list[ConfigFact],
    suspect_name: str,
    reference_name: str,
    diff: ConfigDiff,
) -> list[Observation]:
    """Plain-language readings of the config channel, graded strong / weak / none."""
    notes: list[Observation] = []
    other_leaks: dict[str, list[str]] = {}
    ref_type, sus_type = _top(reference, "model_type"), _top(suspect, "model_type")
    ref_arch = _top(reference, "architectures")
    # Names that also describe the suspect itself are no evidence of the reference (Yi says "llama" too).
    own = identifiers([f for f in suspect if _is_top(f)], suspect_name)
    ref_names = {
        key: origin for key, origin in identifiers(reference, reference_name).items() if key not in own
    }
    named_leaks: dict[tuple[str, str], list[str]] = {}
    for fact in suspect:
        where = (f"{fact.file} {fact.json_path}",)
        nested = not _is_top(fact)
        if fact.kind == "model_type" and nested and fact.value == ref_type and fact.value != sus_type:
            notes.append(Observation(
                "config", "strong",
                f"The suspect's sub-config {fact.json_path} in {fact.file} declares model_type {fact.value!r}, "
                f"the reference's own model type.",
                "Evidence that this component was built with the reference's architecture and most likely "
                "loaded from its checkpoint; it does not say whether the weights were kept or retrained - "
                "the weight verdict for that component decides.",
                where,
            ))  # fmt: skip
        elif fact.kind == "architectures" and nested and ref_arch and fact.value == ref_arch:
            notes.append(Observation(
                "config", "strong",
                f"The suspect's {fact.json_path} in {fact.file} lists the reference's architectures {fact.value!r}.",
                "Evidence that this component uses the reference's model class; not by itself evidence about its weights.",
                where,
            ))  # fmt: skip
        elif fact.kind in ("name_or_path", "absolute_path", "base_model", "gguf") and isinstance(
            fact.value, str
        ):
            named = names_of(fact.value, ref_names)
            if named:
                named_leaks.setdefault((fact.value, "; ".join(named)), []).extend(where)
            elif fact.kind in ("name_or_path", "absolute_path") and fact.value:
                other_leaks.setdefault(fact.value, []).extend(where)
        elif fact.kind == "commit_hash" and any(
            r.kind == "commit_hash" and r.value == fact.value for r in reference
        ):
            notes.append(Observation(
                "config", "strong",
                f"The suspect's {fact.json_path} in {fact.file} is the reference's commit hash {fact.value!r}.",
                "The config was saved from a copy of the reference downloaded at that commit; evidence of "
                "provenance, not of which weights were kept.",
                where,
            ))  # fmt: skip
    for (value, named), wheres in named_leaks.items():
        notes.append(Observation(
            "config", "strong",
            f"The suspect's config records {value!r} (at {', '.join(wheres)}), which names the reference ({named}).",
            "A leaked path or model id records what the model was loaded from or built on: strong evidence "
            "that the reference (or its recorded origin) was used for the part it names, not proof that its "
            "weights survive.",
            tuple(wheres),
        ))  # fmt: skip
    for value, wheres in other_leaks.items():
        notes.append(Observation(
            "config", "weak",
            f"The suspect's config records {value!r} (at {', '.join(wheres)}).",
            "A path or model id from the suspect's build environment; it does not name the reference, but "
            "it may name an ancestor worth comparing against.",
            tuple(wheres),
        ))  # fmt: skip
    if sus_type is not None and sus_type == ref_type:
        notes.append(Observation(
            "config", "weak",
            f"Both models declare model_type {sus_type!r}.",
            "Same architecture family; many independent models share one (Yi and Llama-2 both load as "
            "'llama'). It is a precondition for copied weights, not evidence of them.",
            ("config.json $.model_type",),
        ))  # fmt: skip
    changed = [
        d
        for d in diff.differences
        if d.file == "config.json" and d.json_path.rsplit(".", 1)[-1] not in _VOLATILE_KEYS
    ]
    if "config.json" in diff.files_compared and not changed:
        notes.append(Observation(
            "config", "none",
            "config.json is identical apart from names, paths and versions.",
            "Identical hyperparameters are common for independent models of a standard architecture; they "
            "make the weights comparable, they do not show the weights are shared.",
            ("config.json",),
        ))  # fmt: skip
    return notes
