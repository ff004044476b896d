"""A/B of the element-wise pass: ``pair_metrics`` from two source trees on the same in-memory pairs.

Each tree runs in its own subprocess on float32 pairs (a noised copy, a bit-identical copy) and a
bf16 pair of ``--mib`` MiB per tensor; both see the same machine in the same minute, so the ratio
is what counts on a shared machine:

    python bench/pass_ab.py --a /work/main/src --b src --mib 256
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import sys, time
import ml_dtypes, numpy as np
sys.path.insert(0, sys.argv[1])
from scratchcheck.evidence.metrics import pair_metrics
n = int(sys.argv[2]) << 18
rng = np.random.default_rng(0)
a = rng.standard_normal(n, dtype=np.float32)
b = a + np.float32(0.01) * rng.standard_normal(n, dtype=np.float32)
pairs = {"fp32 noised": (a, b), "fp32 identical": (a, a.copy()),
         "bf16 noised": (a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16))}
for name, (x, y) in pairs.items():
    t = time.perf_counter()
    m = pair_metrics(x, y)
    print(f"{name.replace(' ', '_')}|{time.perf_counter() - t:.3f}|{m.pearson:.9f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", default="/work/main/src", help="source tree A (e.g. before)")
    parser.add_argument("--b", default="src", help="source tree B (e.g. after)")
    parser.add_argument("--mib", type=int, default=256, help="MiB per float32 tensor")
    args = parser.parse_args()
    runs = {}
    for tree in (args.a, args.b):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, tree, str(args.mib)], capture_output=True, text=True, check=True
        )
        runs[tree] = [line.split("|") for line in out.stdout.split()]
    print(f"{'pair':<16} {'A s':>7} {'B s':>7} {'A/B':>6}  pearson A / B")
    for (name, sa, ra), (_, sb, rb) in zip(runs[args.a], runs[args.b], strict=True):
        print(f"{name:<16} {float(sa):>7.2f} {float(sb):>7.2f} {float(sa) / float(sb):>5.1f}x  {ra} / {rb}")


if __name__ == "__main__":
    main()
