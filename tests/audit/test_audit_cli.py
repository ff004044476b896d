"""``scratchcheck audit`` as a release gate: exit 0 pass, 1 fail, 3 undetermined, 2 bad input."""

import json
import subprocess
import sys

import pytest
from audit_builders import DECLARATION, DECLARED_POLICY, declare, write_policy


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchcheck", "audit", *args], capture_output=True, text=True
    )


def test_pass_fail_and_undetermined_exit_codes(hcx, unrelated_shapes, tmp_path):
    declare(hcx.suspect, DECLARATION)
    policy = write_policy(tmp_path, DECLARED_POLICY)
    out = tmp_path / "audit.json"
    passed = run(
        str(hcx.suspect), "--against", str(hcx.reference), "--policy", str(policy), "--json", str(out)
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.startswith("Audit: PASS") and json.loads(out.read_text())["outcome"] == "PASS"
    failed = run(str(hcx.suspect), "--against", str(hcx.reference))  # strict by default
    assert failed.returncode == 1, failed.stderr
    assert "every-component-original" in failed.stdout and "vision_model_name_or_path" in failed.stdout
    undetermined = run(str(unrelated_shapes.suspect), "--against", str(unrelated_shapes.reference))
    assert undetermined.returncode == 3, undetermined.stderr
    assert "Audit: UNDETERMINED" in undetermined.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--policy", "lenient", "--against", "ref"], "lenient: no such preset or policy file"),
        ([], "--against REF (one or more) or --registry"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_2(tmp_path, args, fragment):
    result = run(str(tmp_path), *args)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_policy_file_names_the_key_before_any_model_is_read(tmp_path):
    policy = write_policy(
        tmp_path, '[[rule]]\nid = "c"\ntype = "coverage"\nmin_coverage = 2\nmax_detectable_r = 0.5'
    )
    result = run(str(tmp_path / "no-such-model"), "--against", "ref", "--policy", str(policy))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{policy}: rule[0].min_coverage: must be at most 1" in line
