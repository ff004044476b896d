"""Peak memory and speed of ``compare`` on a checkpoint pair of several GB.

Builds two safetensors checkpoints (a reference and a noised copy of it) whose largest tensor is
``--largest-gib``, then, in fresh subprocesses so that each peak RSS is its own:
  1. baseline: read both files start to end with plain buffered reads (the I/O floor);
  2. compare:  ``scratchcheck.compare`` on the pair.
Prints a table with wall time and peak RSS of each, against the largest tensor's size. Both runs see
a warm page cache by default (compute against the I/O floor); ``--cold`` drops the cache before each
run instead (needs root), so both read from storage.

    python bench/memory.py --workdir bench/_work --largest-gib 1 --total-gib 3 [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from scratchcheck.io.writer import LazyTensor, write_safetensors

GIB = 1 << 30

# Peak RSS is read from VmHWM: unlike ru_maxrss it belongs to the new image after exec, so the
# parent's size at fork time does not leak into the child's figure.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024"

CHILD_READ = f"""
import sys, time
t = time.perf_counter()
for path in sys.argv[1:]:
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass
print(time.perf_counter() - t, {PEAK})
"""

CHILD_COMPARE = f"""
import sys, time
import scratchcheck

baseline = {PEAK}
t = time.perf_counter()
report = scratchcheck.compare(sys.argv[1], [sys.argv[2]])
elapsed = time.perf_counter() - t
print(elapsed, {PEAK}, baseline, report.verdict)
"""


def build_pair(workdir: Path, largest_gib: float, total_gib: float) -> tuple[Path, Path, int]:
    """Reference and noised copy; tensors are generated one at a time, never all in memory."""
    largest = int(largest_gib * GIB) // 4
    sizes = [largest]
    remaining = int(total_gib * GIB) // 4 - largest
    while remaining > 0:
        n = min(largest // 2, remaining)
        sizes.append(n)
        remaining -= n
    cols = 4096

    def tensor(i: int, n: int, noise: float) -> LazyTensor:
        shape = (n // cols, cols)

        def make() -> np.ndarray:
            values = np.random.default_rng(i).standard_normal(shape, dtype=np.float32)
            if noise:
                values += noise * np.random.default_rng(10_000 + i).standard_normal(shape, dtype=np.float32)
            return values

        return LazyTensor(shape, np.dtype(np.float32), make)

    ref_dir, sus_dir = workdir / "reference", workdir / "suspect"
    for folder, noise in ((ref_dir, 0.0), (sus_dir, 1 / 700)):
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "model.safetensors"
        if not target.exists():
            write_safetensors(
                target, {f"layers.{i}.weight": tensor(i, n, noise) for i, n in enumerate(sizes)}
            )
    return sus_dir, ref_dir, (sizes[0] // cols) * cols * 4


def drop_page_cache() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        sys.exit(f"--cold: cannot drop the page cache ({exc}); run as root or without --cold")


def run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("bench/_work"))
    parser.add_argument("--largest-gib", type=float, default=1.0)
    parser.add_argument("--total-gib", type=float, default=3.0)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    args = parser.parse_args()

    t = time.perf_counter()
    suspect, reference, largest_bytes = build_pair(args.workdir, args.largest_gib, args.total_gib)
    build_s = time.perf_counter() - t
    files = [str(suspect / "model.safetensors"), str(reference / "model.safetensors")]
    total_bytes = sum(Path(f).stat().st_size for f in files)

    # Both measurements must see the same storage state: both warm, or both cold.
    prepare = drop_page_cache if args.cold else lambda: run(CHILD_READ, *files)
    prepare()
    read_s, read_rss = (float(x) for x in run(CHILD_READ, *files))
    prepare()
    cmp_s, cmp_rss, import_rss, verdict = run(CHILD_COMPARE, str(suspect), str(reference))
    cmp_s, cmp_rss, import_rss = float(cmp_s), float(cmp_rss), float(import_rss)

    mib = 1 << 20
    rows = [
        ("read both files (baseline)", read_s, read_rss),
        ("scratchcheck.compare", cmp_s, cmp_rss),
    ]
    print(
        f"pair: 2 x {total_bytes / 2 / GIB:.2f} GiB, largest tensor {largest_bytes / GIB:.2f} GiB (built in {build_s:.0f} s), "
        f"page cache {'cold' if args.cold else 'warm'}"
    )
    print(f"{'run':<30} {'wall s':>8} {'GiB/s':>7} {'peak RSS MiB':>13} {'RSS / largest':>14}")
    for name, seconds, rss in rows:
        print(
            f"{name:<30} {seconds:>8.1f} {total_bytes / GIB / seconds:>7.2f} {rss / mib:>13.0f} {rss / largest_bytes:>14.2f}"
        )
    print(
        f"compare / read time: {cmp_s / read_s:.1f}x; interpreter + imports before compare: {import_rss / mib:.0f} MiB"
    )
    print(f"verdict: {verdict}")
    print(
        json.dumps(
            {
                "largest_bytes": largest_bytes,
                "compare_peak_rss": cmp_rss,
                "under_2x_largest": cmp_rss < 2 * largest_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
