"""Validate plain data against the subset of JSON Schema the policy schema uses, one error at a time.

The policy schema file is the single description of a policy: ``jsonschema`` checks it in the tests,
and this small interpreter applies it at run time (jsonschema is not a dependency) so that an error
can name the offending key in one line: ``rule[2].min_coverage: must be at most 1``.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def first_error(
    data: Any, schema: dict[str, Any], root: dict[str, Any] | None = None
) -> tuple[str, str] | None:
    """``(key path, problem)`` of the first place ``data`` breaks ``schema`` (whose ``$ref`` point
    into ``root``, by default ``schema`` itself); None if it is valid."""
    return _check(data, schema, root or schema, "")


def _check(data: Any, schema: Any, root: dict[str, Any], path: str) -> tuple[str, str] | None:
    if schema is True:
        return None
    if schema is False:
        return path, "is not allowed here"
    if "$ref" in schema:
        found = _check(data, _resolve(root, schema["$ref"]), root, path)
        if found:
            return found
    for part in schema.get("allOf", ()):
        found = _check(data, part, root, path)
        if found:
            return found
    if "if" in schema and _check(data, schema["if"], root, path) is None and "then" in schema:
        found = _check(data, schema["then"], root, path)
        if found:
            return found
    expected = schema.get("type")
    if expected is not None and not _is_type(data, expected):
        return path, f"must be {_article(expected)}, not {_describe(data)}"
    if "const" in schema and data != schema["const"]:
        return path, f"must be {schema['const']!r}"
    if "enum" in schema and data not in schema["enum"]:
        return path, f"must be one of {', '.join(repr(v) for v in schema['enum'])}, not {data!r}"
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if "minimum" in schema and data < schema["minimum"]:
            return path, f"must be at least {schema['minimum']}, not {data}"
        if "maximum" in schema and data > schema["maximum"]:
            return path, f"must be at most {schema['maximum']}, not {data}"
    if isinstance(data, str):
        if len(data) < schema.get("minLength", 0):
            return path, "must not be empty"
        if "pattern" in schema and not re.search(schema["pattern"], data):
            return path, schema.get("description", f"must match {schema['pattern']}")
    if isinstance(data, list):
        for i, item in enumerate(data):
            found = _check(item, schema.get("items", True), root, f"{path}[{i}]")
            if found:
                return found
    if isinstance(data, dict):
        return _check_object(data, schema, root, path)
    return None


def _check_object(data: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str):
    for key in schema.get("required", ()):
        if key not in data:
            return path or "(top level)", f"missing required key {key!r}"
    properties = schema.get("properties", {})
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key in properties:
            found = _check(value, properties[key], root, where)
        elif schema.get("additionalProperties", True) is False:
            allowed = ", ".join(sorted(properties))
            return where, f"unknown key (allowed here: {allowed})"
        else:
            found = None
        if found:
            return found
    return None


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _is_type(data: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    return any(
        isinstance(data, _TYPES[name]) and not (isinstance(data, bool) and name in ("integer", "number"))
        for name in names
    )


def _article(expected: str | list[str]) -> str:
    names = [expected] if isinstance(expected, str) else expected
    return " or ".join(("an " if n[0] in "aeiou" else "a ") + n for n in names)


def _describe(data: Any) -> str:
    for name, kinds in _TYPES.items():
        if isinstance(data, kinds) and not isinstance(data, bool):
            return (
                f"{_article(name)} ({data!r})" if name in ("string", "number", "integer") else _article(name)
            )
    return "a boolean" if isinstance(data, bool) else type(data).__name__
