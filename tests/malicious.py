"""Pickles that run code when unpickled: what a trojaned checkpoint holds. Shared by the io and CLI tests."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path


class Evil:
    """Unpickling this runs ``func(*args)``: exactly what a trojaned checkpoint does."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def raw_global_call(module: str, name: str, argument: str) -> bytes:
    """A protocol-0 pickle calling ``module.name(argument)``, spelled out opcode by opcode."""
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


def malicious_payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that each create ``marker`` when loaded, keyed by the global they ask for."""
    touch = f"touch {marker}"
    return {
        "os.system": raw_global_call("os", "system", touch),
        "posix.system": pickle.dumps({"w": Evil(os.system, touch)}, protocol=2),
        "builtins.eval": pickle.dumps(Evil(eval, f"open({str(marker)!r}, 'w')"), protocol=4),
        "subprocess.Popen": pickle.dumps(Evil(subprocess.Popen, ["touch", str(marker)]), protocol=4),
        "builtins.exec": raw_global_call("builtins", "exec", f"open({str(marker)!r}, 'w')"),
    }
