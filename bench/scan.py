"""Registry scale: add and scan against a registry of many synthetic fingerprints.

Builds ``--archs`` LLaMA-style architectures of different widths and depths (so that, as in real
families, models of one architecture share tensor shapes and others share few), fingerprints one
base model per architecture, and fills a registry with ``--entries`` fingerprints: the suspect's
parent, then copies of the bases with every kept array shuffled (unrelated models of the same
shapes), ``--same-arch`` of the suspect's architecture and the rest spread over the others. Measures:

  1. the time to add 1,000 entries (store only: the fingerprints are already made);
  2. the registry's size on disk (database + fingerprint files);
  3. for a suspect fingerprinted first (a fine-tune of one base): the candidate filter over the
     whole registry, and the full scan (filter + full test of every candidate) of a second registry
     holding only the ``--same-arch`` entries of the suspect's architecture, with the time per
     candidate, from which the whole registry's scan time is extrapolated (and labelled so);
  4. peak RSS of the process (VmHWM).

    python bench/scan.py --workdir bench/_scan --entries 10000 --archs 40 --same-arch 5
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from scratchcheck import synthetic as S
from scratchcheck.fingerprint import fingerprint, open_fingerprint, sampled_copy
from scratchcheck.fingerprint.format import Fingerprint, write
from scratchcheck.io import open_model
from scratchcheck.registry.candidates import shape_keys
from scratchcheck.registry.scan import scan
from scratchcheck.registry.store import Registry


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--same-arch", type=int, default=5, help="entries of the suspect's architecture")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    work = args.workdir
    (work / "models").mkdir(parents=True)
    rng = np.random.default_rng(0)

    bases, keys = [], []
    for i in range(args.archs):
        arch = architecture(i)
        model = S.save(S.llama_decoder(i, **arch), work / "models" / f"arch{i}", S.llama_config(**arch))
        fp = fingerprint(model, work / f"arch{i}.scfp")
        with open_fingerprint(work / f"arch{i}.scfp") as opened:
            keys.append(sorted(shape_keys(opened)))
        bases.append(fp)

    # The suspect: a fine-tune of architecture 0's base, fingerprinted before the clock starts.
    arch0 = architecture(0)
    suspect = S.save(S.fine_tune(S.llama_decoder(0, **arch0), 0.1), work / "suspect", S.llama_config(**arch0))

    staging = work / "staging.scfp"
    big, small = Registry(work / "registry.sqlite"), Registry(work / "same-arch.sqlite")
    add_times = []
    for n in range(args.entries):
        i = 0 if n < args.same_arch else 1 + n % (args.archs - 1)
        write(bases[0] if n == 0 else unrelated(bases[i], rng), staging)
        data = staging.read_bytes()
        meta = {"name": f"m{n:05d}-arch{i}", "params": bases[i].header["params"], "shapes": keys[i]}
        t = time.perf_counter()
        big.add([data], **meta)
        add_times.append(time.perf_counter() - t)
        if i == 0:
            small.add([data], **meta)
    disk = (work / "registry.sqlite").stat().st_size + sum(
        p.stat().st_size for p in (work / "registry.sqlite.blobs").rglob("*") if p.is_file()
    )
    with open_model(suspect) as model, sampled_copy(model) as fp:
        t = time.perf_counter()
        candidates = big.sharing_shapes(shape_keys(fp))
        filter_s = time.perf_counter() - t
        t = time.perf_counter()
        report = scan(fp, small)
        scan_s = time.perf_counter() - t
    per_candidate = scan_s / max(report.candidates, 1)
    lead = next(c for c in report.components if c.component == "language_model")
    print(f"entries                      {big.count()} ({args.archs} architectures)")
    print(f"add 1,000 entries            {sum(add_times[:1000]):.2f} s (store only: fingerprints made)")
    print(
        f"registry on disk             {disk / 2**20:.1f} MiB ({disk / big.count() / 1024:.0f} KiB per entry)"
    )
    print(
        f"candidate filter             {filter_s * 1000:.1f} ms over {big.count()} -> {len(candidates)} candidates"
    )
    print(
        f"full scan, {small.count()} same-arch entries  {scan_s:.2f} s ({per_candidate:.2f} s per candidate)"
    )
    print(
        f"  so the {big.count()}-entry scan  ~{filter_s + per_candidate * len(candidates):.0f} s (extrapolated)"
    )
    print(f"found                        {lead.sources[0].entry if lead.sources else None} ({lead.verdict})")
    print(f"peak RSS                     {peak_rss_mib():.0f} MiB")
    big.close()
    small.close()


if __name__ == "__main__":
    main()
