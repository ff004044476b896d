"""``audit --registry``: the same policies judged against every registered model at once."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from audit_builders import DECLARATION, DECLARED_POLICY, declare, write_policy

from scratchcheck.audit import Outcome, audit, load_policy
from scratchcheck.registry.against import compare_with_registry
from scratchcheck.registry.sources import add_source
from scratchcheck.registry.store import Registry

SCHEMA = Path(__file__).resolve().parents[2] / "src/scratchcheck/report/audit.schema.json"


@pytest.fixture(scope="module")
def registry(hcx, solar, unrelated_shapes, tmp_path_factory) -> Path:
    """The HCX dispute's reference registered under its hub name, beside two unrelated models.

    The reference's LICENSE file is left out of its fingerprint, so that its licence is known only
    from the registry entry."""
    root = tmp_path_factory.mktemp("audit-registry")
    bare = shutil.copytree(hcx.reference, root / "qwen2.5-vl-mini")
    (bare / "LICENSE").unlink()
    path = root / "known.sqlite"
    with Registry(path) as reg:
        add_source(reg, str(bare), name="Qwen/Qwen2.5-VL-mini", license="Apache-2.0")
        add_source(reg, str(solar.reference), name="glm-mini")
        add_source(reg, str(unrelated_shapes.reference), name="large-mini")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchcheck", "audit", *args], capture_output=True, text=True
    )


def audited(suspect: Path, registry: Path, policy: str = "strict"):
    with Registry(registry, create=False) as reg:
        report, searched = compare_with_registry(suspect, reg)
    return audit(report, load_policy(policy), searched)


def test_hcx_against_the_registry_fails_strict_and_names_the_registered_source(hcx, registry):
    declare(hcx.suspect, DECLARATION)
    result = audited(hcx.suspect, registry)
    assert result.outcome == Outcome.FAIL and result.registry.entries == 3
    original = next(r for r in result.rules if r.type == "original" and r.severity == "fail")
    vision = next(e for e in original.evidence if e.subject == "vision")
    assert vision.outcome == Outcome.FAIL and vision.verdict == "derived" and vision.p_value < 1e-6
    assert vision.reference == "registry:Qwen/Qwen2.5-VL-mini"
    assert "registry:Qwen/Qwen2.5-VL-mini" in vision.note  # the full registry name, not its last part
    language = next(e for e in original.evidence if e.subject == "language_model")
    assert language.outcome == Outcome.PASS
    leak = next(r for r in result.rules if r.type == "metadata_leak" and r.severity == "fail")
    assert leak.outcome == Outcome.FAIL


def test_a_declared_borrowing_passes_with_the_licence_the_registry_recorded(hcx, registry, tmp_path):
    declare(hcx.suspect, DECLARATION)
    policy = write_policy(tmp_path, DECLARED_POLICY)
    result = audited(hcx.suspect, registry, str(policy))
    assert result.outcome == Outcome.PASS, result.summary
    vision = next(e for r in result.rules for e in r.evidence if e.subject == "vision")
    assert "confirm Apache-2.0" in vision.note
    declare(hcx.suspect, None)  # the same borrowing, undeclared
    assert audited(hcx.suspect, registry, str(policy)).outcome == Outcome.FAIL


def test_the_norm_gain_trap_against_the_registry_still_passes_strict(solar, registry):
    result = audited(solar.suspect, registry)
    assert result.outcome == Outcome.PASS, result.summary
    assert result.registry.candidates >= 1  # the GLM-style entry was compared, not filtered out


def test_nothing_in_the_registry_to_compare_with_is_undetermined_through_the_cli(unrelated_shapes, tmp_path):
    path = tmp_path / "only-large.sqlite"
    with Registry(path) as reg:
        add_source(reg, str(unrelated_shapes.reference), name="large-mini")
    out = tmp_path / "audit.json"
    result = run(str(unrelated_shapes.suspect), "--registry", str(path), "--json", str(out))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Audit: UNDETERMINED" in result.stdout and "1 registered model(s), 0 sharing" in result.stdout
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    assert data["registry"] == {"path": str(path), "entries": 1, "candidates": 0, "compared": 0}
    assert data["references"] == []


def test_the_cli_gates_on_the_registry_audit(hcx, registry, tmp_path):
    declare(hcx.suspect, DECLARATION)
    out = tmp_path / "audit.json"
    failed = run(str(hcx.suspect), "--registry", str(registry), "--json", str(out))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "registry:Qwen/Qwen2.5-VL-mini" in failed.stdout
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(json.loads(out.read_text()))
    policy = write_policy(tmp_path, DECLARED_POLICY)
    passed = run(str(hcx.suspect), "--registry", str(registry), "--policy", str(policy))
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--registry", "{tmp}/missing.sqlite"], "no registry here"),
        (["--registry", "{tmp}/missing.sqlite", "--against", "ref"], "not both"),
    ],
)
def test_a_missing_registry_or_two_kinds_of_reference_is_a_one_line_error(tmp_path, args, fragment):
    result = run(str(tmp_path), *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr
    assert not (tmp_path / "missing.sqlite").exists()  # a read-only command creates no registry
