"""What each entry point imports: the package nothing, ``--help`` no numerics, ``compare`` only the
comparison. Every module costs start-up time on each command, so an eager import that creeps back
fails here."""

import json
import subprocess
import sys

import numpy as np

from scratchcheck import synthetic as S

COMMAND = """
import sys
from scratchcheck.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
"""
LISTED = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"


def modules_after(code: str, *args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + LISTED, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_package_loads_nothing_until_a_name_is_used():
    loaded = modules_after("import scratchcheck")
    assert {m for m in loaded if m.startswith("scratchcheck.")} == set()
    assert "numpy" not in loaded
    used = modules_after("import scratchcheck; scratchcheck.open_model")
    assert "scratchcheck.io" in used and "scratchcheck.compare" not in used


def test_help_loads_no_numerics_no_rich_and_no_command_code():
    loaded = modules_after(COMMAND, "--help")
    assert "scratchcheck.cli.compare_cmd" in loaded  # it did run
    assert {"numpy", "rich", "scratchcheck.compare", "scratchcheck.registry"}.isdisjoint(loaded)


def test_compare_loads_neither_the_registry_nor_the_http_client(tmp_path):
    weights = S.llama_decoder(0, layers=2)
    S.save(weights, tmp_path / "a")
    S.save({k: v + np.float32(0.01) for k, v in weights.items()}, tmp_path / "b")
    loaded = modules_after(COMMAND, "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fast")
    assert "scratchcheck.evidence.verdict" in loaded  # it did compare
    heavy = {
        "scratchcheck.registry",
        "scratchcheck.inspection",
        "scratchcheck.audit",
        "http.client",
        "sqlite3",
    }
    assert heavy.isdisjoint(loaded), heavy & loaded
    assert not [m for m in loaded if m.startswith(("scipy", "jinja2"))]


def test_fingerprint_loads_no_pairing_code(tmp_path):
    S.save(S.llama_decoder(0, layers=2), tmp_path / "a")
    code = f"import scratchcheck\nscratchcheck.fingerprint({str(tmp_path / 'a')!r}, {str(tmp_path / 'a.scfp')!r})"
    loaded = modules_after(code)
    assert "scratchcheck.align.nonlearned" in loaded  # it did look for non-learned tensors
    pairing = {"pairing", "contentmatch", "layermap", "vocab", "gqa", "experts"}
    assert not {f"scratchcheck.align.{m}" for m in pairing} & loaded
