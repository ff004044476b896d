"""Verdicts from fingerprints beside the full compare, on the lineage benchmark's trained families.

Runs ``bench/lineage.py`` (training, derivations, the independent null) and, for every comparison
it makes, also compares fingerprint with fingerprint and model with fingerprint. The lineage models
are tiny (hidden 64): under the default plan every tensor is kept whole, so the ``stress`` plan is
also run, which samples them as hard as a 7B model is sampled (1/16 to 1/32 of each matrix).

    python bench/fingerprint_lineage.py --seeds 12
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import lineage
from scratchcheck.fingerprint import DEFAULT_PLAN, Plan, fingerprint

PLANS = {
    "default": DEFAULT_PLAN,
    "stress": Plan(whole_below=1024, axis_target=16, min_shift=1, short_axis=16),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    full_compare = lineage.compare_case
    made: dict[tuple[Path, str], Path] = {}
    table: list[tuple[lineage.Row, dict[str, tuple[lineage.Row, lineage.Row]]]] = []

    def fp(folder: Path, plan: str) -> Path:
        if (folder, plan) not in made:
            made[folder, plan] = folder.parent / f"{folder.name}.{plan}.scfp"
            fingerprint(folder, made[folder, plan], plan=PLANS[plan])
        return made[folder, plan]

    def compare_case(case, truth, suspect, reference, *, focus=None):
        full = full_compare(case, truth, suspect, reference, focus=focus)
        sampled = {
            plan: (
                full_compare(case, truth, fp(suspect, plan), fp(reference, plan), focus=focus),
                full_compare(case, truth, suspect, fp(reference, plan), focus=focus),
            )
            for plan in PLANS
        }
        table.append((full, sampled))
        return full

    lineage.compare_case = compare_case
    lineage.run(args.seeds, steps=args.steps)
    print(markdown(table))


def markdown(table) -> str:
    head = "| case | truth | full: verdict (kind) | " + " | ".join(
        f"{plan} fp<->fp | {plan} model<->fp" for plan in PLANS
    )
    out = [head + " |", "|---" * (3 + 2 * len(PLANS)) + "|"]
    same = {plan: 0 for plan in PLANS}
    nulls = []
    for full, sampled in table:
        cells = []
        for plan, rows in sampled.items():
            same[plan] += all((r.verdict, r.kind) == (full.verdict, full.kind) for r in rows)
            cells += [f"{r.verdict} ({r.kind or '-'}) {lineage._p_text(r)}" for r in rows]
        if full.truth == "independent":
            nulls.append((full, sampled))
            if full.case.startswith("base"):
                continue
        out.append(
            f"| {full.case} | {full.truth} | {full.verdict} ({full.kind or '-'}) {lineage._p_text(full)} | "
            + " | ".join(cells)
            + " |"
        )
    from scipy.stats import kstest

    out.append("")
    out.append(f"- comparisons: {len(table)}; independent pairs: {len(nulls)}")
    for plan in PLANS:
        derived_ps = [r.p for full, s in table if full.truth == "derived" for r in s[plan]]
        false_pos = sum(r.verdict in ("derived", "identical") for _, s in nulls for r in s[plan])
        # One p per independent pair and mode: pooling the two modes would count each pair twice.
        ks = []
        for mode, name in enumerate(("fp<->fp", "model<->fp")):
            null_p = [
                s[plan][mode].p_lm
                for full, s in nulls
                if s[plan][mode].p_lm is not None and not full.case.startswith("VLM")
            ]
            pvalue = kstest(null_p, "uniform").pvalue if len(null_p) > 2 else float("nan")
            ks.append(f"{name} {pvalue:.3f} (n={len(null_p)})")
        out.append(
            f"- {plan}: same verdict and kind as the full compare in {same[plan]} of {len(table)} comparisons "
            f"(both fingerprint modes); largest derived p {max(derived_ps, default=np.nan):.2e}; "
            f"independent called derived: {false_pos}; KS-uniform p of independent LM p-values: {'; '.join(ks)}"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
