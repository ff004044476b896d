"""Drives the fuzzer: writes each mutated case to disk, has the capped worker read it, and judges
the outcome. Acceptable: a valid read, or a ``ScratchcheckError`` of one line naming a file of the
case. Anything else (crash, hang, memory blow-up, a canary file, a cross-file effect, an escaped link
followed) is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import scratchcheck

from .draw import Draw
from .mutators import mutate
from .seeds import FORMATS, Case, seed_cases

MEMORY_CAP = 4 << 30
ACCEPTABLE = ("read", "refused")


@dataclass(frozen=True)
class Outcome:
    fmt: str
    kind: str  # read | refused | crash | hang | memory | cross-file | canary | escape | bad-error
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind in ACCEPTABLE


class Fuzzer:
    """One worker process, seeds written once, cases numbered under ``root``."""

    def __init__(self, root: Path, timeout: float = 20.0, cap: int = MEMORY_CAP) -> None:
        self.root, self.timeout, self.count = root, timeout, 0
        self.seeds = seed_cases(root / "scratch")
        references = root / "references"
        for fmt, case in self.seeds.items():
            case.write(references / fmt)
        src = Path(scratchcheck.__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
        self.worker = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("worker.py")), str(references), str(cap)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert json.loads(self.worker.stdout.readline())["ready"] == len(FORMATS)

    def run(self, fmt: str, draw: Draw) -> Outcome:
        self.count += 1
        case_root = self.root / f"case{self.count}"
        canary = case_root / "CANARY"
        case = mutate(fmt, self.seeds[fmt], draw, str(canary))
        folder = case_root / "model"
        case.write(folder)
        self.worker.stdin.write(
            json.dumps({"folder": str(folder), "format": fmt, "timeout": self.timeout}) + "\n"
        )
        self.worker.stdin.flush()
        result = json.loads(self.worker.stdout.readline())
        outcome = judge(fmt, case, folder, result, canary.exists())
        if outcome.ok:
            shutil.rmtree(case_root, ignore_errors=True)
        return outcome

    def close(self) -> None:
        self.worker.stdin.close()
        self.worker.wait(timeout=30)


def judge(fmt: str, case: Case, folder: Path, result: dict, canary: bool) -> Outcome:
    kind, message = result["outcome"], result.get("message", "")
    if canary:
        return Outcome(fmt, "canary", "a pickle ran code: the canary file exists")
    if kind == "read" and case.escapes:
        return Outcome(fmt, "escape", f"a link out of {folder} was followed")
    if kind == "refused" and ("\n" in message or str(folder.parent) not in message):
        return Outcome(fmt, "bad-error", message)
    return Outcome(fmt, kind, message)
