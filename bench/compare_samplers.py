"""Compare quality-bench reports of other samplers or step counts with a reference and its seed spread.

    python bench/compare_samplers.py REFERENCE_SEED_A REFERENCE_SEED_B CANDIDATE [CANDIDATE ...]

Each argument is a ``report.json`` written by ``bench/quality.py`` (``--out``); the first two are the
same settings with two seed sets (``--first-seed``). A candidate is "as good" on a metric of a set
when it is no further from the first reference than the two references are from each other, or better
than the first reference where the metric has a better direction (lower PFC, FID, skating and
penetration; higher BA and Div). The unheard sets are matched by position (their names carry the seed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = {"pfc": -1, "ba": 1, "div_k": 1, "div_g": 1, "fid_k": -1, "fid_g": -1, "skate": -1, "penetration": -1}
"""Metric -> +1 higher is better, -1 lower is better."""


def generated_sets(report: dict) -> list[tuple[str, dict]]:
    return [(name, row) for name, row in report["table"].items() if name.startswith("generated")]


def compare(ref_a: dict, ref_b: dict, candidate: dict) -> list[tuple[str, str, float, float, float, bool]]:
    """Rows (set, metric, reference, spread, candidate, as good)."""
    rows = []
    for (name, a), (_, b), (_, c) in zip(generated_sets(ref_a), generated_sets(ref_b), generated_sets(candidate)):
        for metric, better in METRICS.items():
            spread = abs(a[metric] - b[metric])
            ok = abs(c[metric] - a[metric]) <= spread or better * (c[metric] - a[metric]) >= 0
            rows.append((name.replace("generated, ", ""), metric, a[metric], spread, c[metric], ok))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    reports = [json.loads(Path(p).read_text()) for p in argv]
    ref_a, ref_b = reports[:2]
    label = lambda r: f"{r['post']['sampler']} {r['post']['steps']}"  # noqa: E731
    for path, cand in zip(argv[2:], reports[2:]):
        rows = compare(ref_a, ref_b, cand)
        missed = [r for r in rows if not r[5]]
        print(f"\n{label(cand)} ({path}, {cand['seconds']:.0f} s) against {label(ref_a)} "
              f"({ref_a['seconds']:.0f} s) and its seed spread:")
        for set_name, metric, ref, spread, value, ok in rows:
            print(f"  {set_name:28s} {metric:12s} {ref:8.3f} ± {spread:6.3f}  ->  {value:8.3f}  "
                  f"{'ok' if ok else 'OUTSIDE'}")
        print(f"  => {'as good on every metric' if not missed else f'{len(missed)} of {len(rows)} outside the spread'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
