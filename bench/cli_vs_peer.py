"""``scratchcheck compare --fast`` against ``modeldna compare`` as whole processes, timed in turns.

On each pair of ``bench/speed.py`` the two commands run alternately (scratchcheck, modeldna,
scratchcheck, ...), ``--rounds`` times each, so that both meet the same machine load; the minimum
and the median of each are printed with their ratio, the verdicts (scratchcheck's per component,
modeldna's label) and the load average before and after. ``--before SRC`` adds, in the same turns,
the command from another checkout's ``src`` folder (e.g. a worktree of an earlier commit).

The package is byte-compiled first, as ``pip install`` does: a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile its ~100 modules again in every process
(about 0.15 s), where the peer's installed package does not.

    python bench/cli_vs_peer.py --workdir /tmp/speedwork --pairs flat smollm2-hf smollm2-gguf --flat-gib 1
    git worktree add /tmp/before COMMIT && python bench/cli_vs_peer.py ... --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import scratchcheck
from speed import pair_arguments, pairs, timed


def scratchcheck_verdicts(report: Path) -> str:
    data = json.loads(report.read_text())
    return ", ".join(f"{c['suspect_component']} {c['verdict']}" for c in data["components"])


def modeldna_verdict(stdout: str) -> str:
    try:
        return str(json.loads(stdout)["verdict"]["verdict"])
    except (ValueError, KeyError, TypeError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    pair_arguments(parser, ["flat", "smollm2-gguf", "smollm2-hf"], flat_gib=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout's src folder, timed in the same turns")
    args = parser.parse_args()
    modeldna = args.modeldna_venv / "bin" / "modeldna"
    if not modeldna.exists():
        sys.exit(f"modeldna is not installed at {args.modeldna_venv}")
    compileall.compile_dir(Path(scratchcheck.__file__).parent, quiet=1)
    if args.before is not None:
        compileall.compile_dir(args.before, quiet=1)

    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    report = args.workdir / "cli-vs-peer.json"
    rows = []
    for label, suspect, reference, _ in pairs(args):
        ours, before, peer, peer_out = [], [], [], ""
        mine = [sys.executable, "-m", "scratchcheck", "compare", str(suspect), str(reference), "--fast"]
        for _ in range(args.rounds):
            if args.before is not None:
                before.append(timed_before(args.before, [*mine, "--json", str(report)]))
            seconds, _ = timed([*mine, "--json", str(report)])
            ours.append(seconds)
            seconds, peer_out = timed([str(modeldna), "compare", str(suspect), str(reference), "--json"])
            peer.append(seconds)
        if None in ours or None in peer or None in before:
            print(
                f"{label}: a run failed (scratchcheck {ours}, before {before}, modeldna {peer}: {peer_out})"
            )
            continue
        rows.append((label, ours, before, peer, scratchcheck_verdicts(report), modeldna_verdict(peer_out)))
        print(f"measured {rows[-1]}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    print(f"{'pair':<26} {'scratchcheck min/median s':>26} {'modeldna min/median s':>22} {'ratio (min)':>12}")
    for label, ours, before, peer, verdict, peer_verdict in rows:
        print(
            f"{label:<26} {min(ours):>12.2f} / {statistics.median(ours):<11.2f} "
            f"{min(peer):>9.2f} / {statistics.median(peer):<10.2f} {min(ours) / min(peer):>11.2f}x"
        )
        if before:
            print(f"  before ({args.before}): {min(before):.2f} / {statistics.median(before):.2f} s")
        print(f"  verdicts: scratchcheck {verdict}; modeldna {peer_verdict}")


def timed_before(src: Path, command: list[str]) -> float | None:
    """``timed`` with ``src`` first on the path, so that ``-m scratchcheck`` is that checkout's."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return time.perf_counter() - t if done.returncode == 0 else None


if __name__ == "__main__":
    main()
