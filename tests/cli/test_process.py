"""The command's process settings: freed heap memory kept, one BLAS thread for --fast."""

import json
import os
import subprocess
import sys

import pytest

from scratchcheck import synthetic as S

# In a fresh process: the allocator setting is process-wide and must not leak into other tests.
FAULTS = """
import resource, sys
import numpy as np
from scratchcheck.cli.process import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
x = np.ones(1 << 17)  # 1 MiB
def temporaries():
    y = x * 2.0
    z = y + x
    return float((z * y).sum())
temporaries()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    temporaries()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_heap_stops_refaulting_temporaries():
    # Three 1 MiB temporaries a round: 256 pages each when they go back to the kernel every time.
    default = minor_faults("default")
    if default < 50 * 256:
        pytest.skip(f"this allocator keeps the pages already ({default} faults in 50 rounds)")
    assert minor_faults("keep") < 50 * 16


BLAS = """
import os, sys
from scratchcheck.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def blas_threads_after(*args: str, env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = subprocess.run(
        [sys.executable, "-c", BLAS, *args], capture_output=True, text=True, env={**clean, **env}
    )
    return run.stdout.splitlines()[-1]


def test_fast_compare_runs_blas_on_one_thread_unless_the_user_chose(tmp_path):
    weights = S.llama_decoder(0, layers=2)
    S.save(weights, tmp_path / "a")
    pair = [str(tmp_path / "a"), str(tmp_path / "a")]
    assert blas_threads_after("compare", *pair, "--fast", env={}) == "1"
    assert blas_threads_after("compare", *pair, env={}) == "None"
    assert blas_threads_after("compare", *pair, "--fast", env={"OMP_NUM_THREADS": "2"}) == "None"


def test_a_command_ended_without_teardown_leaves_its_output_whole(tmp_path):
    weights = S.llama_decoder(0, layers=2)
    S.save(weights, tmp_path / "a")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scratchcheck",
            "compare",
            str(tmp_path / "a"),
            str(tmp_path / "a"),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"written: {report}")  # the last line, through a pipe
    assert json.loads(report.read_text())["verdict"] == "identical"
