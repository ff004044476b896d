"""The capped reader: a process that reads each case in a forked child under memory and time caps.

Run by ``harness.Fuzzer`` as ``python worker.py REFERENCES CAP_BYTES``. It reads one JSON request a
line (``{"folder": ..., "format": ..., "timeout": ...}``) and answers one JSON line. The child opens
the model, reads every tensor as float32, its config and metadata, then re-reads two untouched
reference models, the case's own format and a torch zip (whose unpickler state is what a hostile
file once poisoned): a digest that changed is a cross-file effect.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from scratchcheck.errors import ScratchcheckError
from scratchcheck.io.resolve import open_model
from scratchcheck.metadata import inspect_metadata


def read_everything(folder: Path, metadata: bool = True) -> str:
    """A digest of every value the model gives, after reading all of it (and its metadata)."""
    digest = hashlib.sha256()
    with open_model(folder) as model:
        for info in model.tensors():
            values = np.ascontiguousarray(model.read_float(info.name))
            digest.update(info.name.encode("utf-8", "surrogatepass") + values.tobytes())
        model.config()
        if metadata:
            inspect_metadata(model)
    return digest.hexdigest()


def child(folder: Path, references: dict[Path, str], cap: int, timeout: float) -> dict:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.alarm(int(timeout) + 1)
    try:
        read_everything(folder)
        result = {"outcome": "read"}
    except ScratchcheckError as exc:
        result = {"outcome": "refused", "message": str(exc)}
    except MemoryError:
        result = {"outcome": "memory", "message": traceback.format_exc()[-2000:]}
    except BaseException:  # noqa: BLE001 - anything else is what the fuzzer looks for
        result = {"outcome": "crash", "message": traceback.format_exc()[-4000:]}
    changed = [str(path) for path, digest in references.items() if _digest_or_error(path) != digest]
    if changed:
        result = {"outcome": "cross-file", "message": f"reading {folder} changed how {changed} read"}
    return result


def _digest_or_error(folder: Path) -> str:
    try:
        return read_everything(folder, metadata=False)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def run(folder: Path, references: dict[Path, str], cap: int, timeout: float) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            payload = json.dumps(child(folder, references, cap, timeout), ensure_ascii=True).encode()
        except BaseException:  # noqa: BLE001
            payload = json.dumps({"outcome": "crash", "message": "the child could not report"}).encode()
        os.write(write_end, payload[:60000])
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return {"outcome": "hang", "message": f"no answer within {timeout} s"}
        time.sleep(0.002)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        return {
            "outcome": "hang" if sig == "SIGALRM" else "memory" if sig == "SIGKILL" else "crash",
            "message": sig,
        }
    return json.loads(data) if data else {"outcome": "crash", "message": "the child died without a word"}


def main() -> None:
    warnings.simplefilter("ignore")
    digests = {f: read_everything(f, metadata=False) for f in sorted(Path(sys.argv[1]).iterdir())}
    cap = int(sys.argv[2])
    print(json.dumps({"ready": len(digests)}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        references = {f: d for f, d in digests.items() if f.name in (request["format"], "torch-zip")}
        print(json.dumps(run(Path(request["folder"]), references, cap, request["timeout"])), flush=True)


if __name__ == "__main__":
    main()
