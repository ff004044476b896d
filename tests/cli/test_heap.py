"""The command keeps freed heap memory: a numpy temporary is not page-faulted in again each time."""

import subprocess
import sys

import pytest

# In a fresh process: the allocator setting is process-wide and must not leak into other tests.
FAULTS = """
import resource, sys
import numpy as np
from scratchcheck.cli.heap import keep_freed_memory
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
    assert minor_faults("default") > 50 * 256
    assert minor_faults("keep") < 50 * 16
