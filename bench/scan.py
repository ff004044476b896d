"""Registry scale: add and scan against a registry of many synthetic fingerprints.

Builds ``--archs`` LLaMA-style architectures of different widths and depths (so that, as in real
families, models of one architecture share tensor shapes and others share few), fingerprints one
base model per architecture, and fills a registry with ``--entries`` fingerprints: the suspect's
parent, then copies of the bases with every kept array shuffled (unrelated models of the same
shapes), ``--same-arch`` of the suspect's architecture and the rest spread over the others. Each
entry's screen sketches are computed from its own fingerprint (two worker processes), as
``registry add`` does. Measures:

  1. the time to add 1,000 entries (store only: fingerprints and sketches made);
  2. the registry's size on disk (database + fingerprint files);
  3. for three suspects, each fingerprinted first (fine-tunes of one base): the whole scan of the
     registry (filter, screen, full test of what the screen kept), the first in the process apart
     (it pays for importing the rest of compare), and the shape filter and the screen alone, with
     the number of entries each stage keeps (``--scan-only`` repeats this part on a registry a
     previous run built);
  4. peak RSS of the process (VmHWM).

    python bench/scan.py --workdir bench/_scan --entries 10000 --archs 40 --same-arch 5
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

from scratchcheck import synthetic as S
from scratchcheck.fingerprint import fingerprint, open_fingerprint, read, sampled_copy
from scratchcheck.fingerprint.format import Fingerprint, as_checkpoint, write
from scratchcheck.io import open_model
from scratchcheck.registry.candidates import shape_keys
from scratchcheck.registry.scan import scan
from scratchcheck.registry.screen import screen, sketch_fingerprint
from scratchcheck.registry.store import Registry

SUSPECTS = 3  # fine-tunes of the parent scanned one after another


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def architecture(i: int) -> dict:
    hidden = 16 + 4 * (i % 20)
    return {
        "layers": 2 + i % 5,
        "hidden": hidden,
        "heads": 4,
        "kv_heads": 2,
        "intermediate": 2 * hidden + 8 * (i // 20),
        "vocab": 64,
    }


def unrelated(base: Fingerprint, rng: np.random.Generator) -> Fingerprint:
    """The base fingerprint with every kept array's values shuffled: an unrelated model of the same
    shapes and value distributions."""
    arrays, tensors = {}, []
    for record in base.header["tensors"]:
        values = base.arrays[record["name"]]
        values = rng.permutation(values.ravel()).reshape(values.shape)
        arrays[record["name"]] = values
        tensors.append(
            {**record, "sha256": hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()}
        )
    return Fingerprint({**base.header, "tensors": tensors}, arrays, base.files)


@cache
def _base(path: Path) -> Fingerprint:
    return read(path)


def make_entry(work: Path, n: int, arch: int) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """Entry ``n``: the base of ``arch`` itself (n = 0, the suspects' parent) or shuffled; its bytes
    and its screen sketches (run in a worker process)."""
    base = _base(work / f"arch{arch}.scfp")
    staging = work / f"staging-{n}.scfp"
    made = base if n == 0 else unrelated(base, np.random.default_rng(n))
    write(made, staging)
    try:
        with as_checkpoint(made, staging) as checkpoint:
            sketches = {key: block.encode() for key, block in sketch_fingerprint(checkpoint).items()}
        return staging.read_bytes(), sketches
    finally:
        staging.unlink()


def build(work: Path, entries: int, archs: int, same_arch: int, workers: int) -> list[float]:
    """The registry at ``work`` and the suspects beside it; the time of each add."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    bases, keys = [], []
    for i in range(archs):
        arch = architecture(i)
        model = S.save(S.llama_decoder(i, **arch), work / "models" / f"arch{i}", S.llama_config(**arch))
        bases.append(fingerprint(model, work / f"arch{i}.scfp"))
        with open_fingerprint(work / f"arch{i}.scfp") as opened:
            keys.append(sorted(shape_keys(opened)))
    # The suspects: fine-tunes of architecture 0's base (each fingerprinted before its clock starts).
    arch0 = architecture(0)
    for seed in range(SUSPECTS):
        fine_tuned = S.fine_tune(S.llama_decoder(0, **arch0), 0.1, seed=seed)
        S.save(fine_tuned, work / f"suspect{seed}", S.llama_config(**arch0))
    chosen = [0 if n < same_arch else 1 + n % (archs - 1) for n in range(entries)]
    add_times = []
    with Registry(work / "registry.sqlite") as registry, ProcessPoolExecutor(workers) as pool:
        made = pool.map(make_entry, [work] * entries, range(entries), chosen, chunksize=8)
        for n, (i, (data, sketches)) in enumerate(zip(chosen, made, strict=True)):
            meta = {"name": f"m{n:05d}-arch{i}", "params": bases[i].header["params"], "shapes": keys[i]}
            t = time.perf_counter()
            registry.add([data], sketches=sketches, **meta)
            add_times.append(time.perf_counter() - t)
    return add_times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--same-arch", type=int, default=5, help="entries of the suspect's architecture")
    parser.add_argument("--workers", type=int, default=2, help="processes making the entries")
    parser.add_argument(
        "--scan-only", action="store_true", help="scan the registry a previous run left in --workdir"
    )
    args = parser.parse_args()
    work = args.workdir
    add_times = (
        None if args.scan_only else build(work, args.entries, args.archs, args.same_arch, args.workers)
    )
    big = Registry(work / "registry.sqlite", create=False)
    disk = (work / "registry.sqlite").stat().st_size + sum(
        p.stat().st_size for p in (work / "registry.sqlite.blobs").rglob("*") if p.is_file()
    )
    database = (work / "registry.sqlite").stat().st_size
    scan_s, found = [], []
    for n in range(SUSPECTS):
        with open_model(work / f"suspect{n}") as model, sampled_copy(model) as fp:
            if n == 1:  # the stages alone, once the process has imported what a scan needs
                t = time.perf_counter()
                candidates = big.sharing_shapes(shape_keys(fp))
                filter_s = time.perf_counter() - t
                t = time.perf_counter()
                sketches = sketch_fingerprint(fp)
                kept = [s.name for s in screen(sketches, big.sketches_sharing(sketches)) if s.kept]
                screen_s = time.perf_counter() - t
            t = time.perf_counter()
            report = scan(fp, big)
            scan_s.append(time.perf_counter() - t)
        lead = next(c for c in report.components if c.component == "language_model")
        found.append(f"{lead.sources[0].entry if lead.sources else None} ({lead.verdict})")
    tested = max(c.compared for c in report.components)
    print(f"entries                      {big.count()}")
    if add_times is not None:
        print(
            f"add 1,000 entries            {sum(add_times[:1000]):.2f} s (store only: fingerprints and"
            " sketches made)"
        )
    print(
        f"registry on disk             {disk / 2**20:.1f} MiB ({disk / big.count() / 1024:.0f} KiB per entry;"
        f" database {database / 2**20:.0f} MiB)"
    )
    print(
        f"stage 1, shape filter        {filter_s * 1000:.0f} ms: {big.count()} -> {len(candidates)} candidates"
    )
    print(
        f"stage 2, screen              {screen_s * 1000:.0f} ms: {len(candidates)} -> {len(kept)} kept {kept}"
    )
    print(
        f"whole scan, first suspect    {scan_s[0]:.2f} s (this process's first: it imports the rest of"
        " compare)"
    )
    print(
        f"whole scan, next suspects    {', '.join(f'{x:.2f}' for x in scan_s[1:])} s (filter, screen, full"
        f" test of {tested} entries: {report.screened} kept + the closest dropped)"
    )
    print(f"found                        {', '.join(found)}")
    print(f"peak RSS                     {peak_rss_mib():.0f} MiB")
    big.close()


if __name__ == "__main__":
    main()
