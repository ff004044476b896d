"""The long fuzzing run: ``python -m tests.fuzz --cases 20000 [--seed 0] [--timeout 20] [--minutes M]``.

Cases are spread evenly over the formats, choices come from a seeded ``random`` (so a run can be
repeated), outcomes are counted rather than stopping at the first failure, and every failing case
is kept on disk under ``--keep`` with its message. ``--minutes`` stops early (the table says how many
cases ran), as does Ctrl-C. Prints a table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import tempfile
import time
from pathlib import Path

from .draw import RandomDraw
from .harness import Fuzzer
from .seeds import FORMATS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--keep", type=Path, default=None, help="folder for failing cases")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="scratchcheck-fuzz-")) if args.keep is None else args.keep
    fuzzer = Fuzzer(root, timeout=args.timeout)
    counts: dict[str, collections.Counter] = {fmt: collections.Counter() for fmt in FORMATS}
    failures = []
    start = time.monotonic()
    try:
        for number in range(args.cases):
            if args.minutes is not None and time.monotonic() - start > 60 * args.minutes:
                break
            fmt = FORMATS[number % len(FORMATS)]
            outcome = fuzzer.run(fmt, RandomDraw(args.seed * 1_000_003 + number))
            counts[fmt][outcome.kind] += 1
            if not outcome.ok:
                failures.append(
                    {"case": fuzzer.count, "format": fmt, "kind": outcome.kind, "message": outcome.message}
                )
                print(
                    f"case {fuzzer.count} ({fmt}): {outcome.kind}: {outcome.message.splitlines()[-1:]}",
                    flush=True,
                )
            if (number + 1) % 100 == 0:
                print(
                    f"{number + 1} cases, {len(failures)} failures, {time.monotonic() - start:.0f} s",
                    flush=True,
                )
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        fuzzer.close()
    kinds = sorted({kind for c in counts.values() for kind in c})
    ran = sum(sum(c.values()) for c in counts.values())
    print(f"\n{ran} cases, seed {args.seed}, {time.monotonic() - start:.0f} s, failing cases kept in {root}")
    print("| format | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    for fmt, c in counts.items():
        print(f"| {fmt} | " + " | ".join(str(c[k]) for k in kinds) + " |")
    if failures or args.keep is not None:
        (root / "failures.json").write_text(json.dumps(failures, indent=1))
    else:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
