"""msinv's default layer against SimPEG's layer and Harmonica's cross-validated best, survey by survey.

Reads the cached results of ``gravity_eqs.py`` (``OUT/N2000[-SURVEY].json``, one per survey of
:data:`gravity_eqs.SURVEYS`, each holding the methods ``msinv``, ``simpeg`` and
``harmonica-cv`` of one run; the quiet surveys of :data:`gravity_eqs.QUIET` and the deep-source
ones of :data:`gravity_eqs.DEEP`, summarised apart,
``msinv`` and ``harmonica-cv``) and writes, for every survey and column (RMS error in mGal upward
at 300 m, on the surface outside the gap, in the gap), the errors and msinv's ratio to each
competitor, then per column the geometric mean of the ratios over the surveys, the worst and
best survey, and the number of surveys where msinv is the more accurate; and, from the cached
predictions (``OUT/<prefix>_<method>_pred.npz``), the correlation of msinv's error field with
each competitor's in each column: near 1, both methods make the same error, which then comes
from the data (the noise, the field between stations), not from either method. No method is
rerun: run ``gravity_eqs.py`` for the surveys first (its command is in each JSON).

``--msinv`` summarises another of msinv's cached methods in msinv's place (``msinv-auto``:
``EquivalentLayer(depth="auto")``), ``--competitors`` a subset of the competitors (for a
folder run without Harmonica).

Usage::

    python benchmarks/gravity_eqs_summary.py     # -> OUT/summary.json, OUT/summary.md
    python benchmarks/gravity_eqs_summary.py --out benchmarks/results/gravity_eqs/same-load \
        --competitors simpeg --msinv msinv-auto  # -> OUT/summary-msinv-auto.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gravity_eqs  # noqa: E402

COLUMNS = {
    "rms_upward_300m": "upward 300 m",
    "rms_surface_interior": "surface",
    "rms_surface_gap": "gap",
}  # columns: RMS error in mGal
COMPETITORS = {"simpeg": "SimPEG 0.26 layer", "harmonica-cv": "Harmonica, CV best"}
TIME = "fit_cpu_seconds"  # the final fit's CPU time (Harmonica's CV search not included)
WALL = "fit_seconds"  # and its wall-clock time


def load(out: Path, n: int, surveys, competitors: dict, msinv: str = "msinv") -> dict:
    """``{survey: {method: result}}`` for those of ``surveys`` whose run holds the method
    ``msinv`` (under the key ``"msinv"``) and the ``competitors``."""
    found = {}
    for survey in surveys:
        path = out / f"{gravity_eqs.prefix(n, survey)}.json"
        if not path.exists():
            continue
        methods = json.loads(path.read_text())["methods"]
        if all(m in methods for m in (msinv, *competitors)):
            found[survey] = {"msinv": methods[msinv], **{c: methods[c] for c in competitors}}
    return found


def correlations(out: Path, n: int, runs: dict, competitors: dict, msinv: str) -> dict:
    """``{competitor: {survey: {column: r}}}``: the correlation coefficient of the error field
    (prediction − exact field, on the column's evaluation points) of the method ``msinv`` with
    each competitor's, from the cached predictions."""
    found = {c: {} for c in competitors}
    for survey in runs:
        scored = gravity_eqs.columns(n, survey)  # the exact field, once per survey
        errors = {}
        for method in (msinv, *competitors):
            with np.load(out / f"{gravity_eqs.prefix(n, survey)}_{method}_pred.npz") as f:
                errors[method] = {
                    col: f[gravity_eqs.key_of(col)][mask] - true
                    for col, (mask, true) in scored.items()
                }
        for c in competitors:
            found[c][survey] = {
                col: float(np.corrcoef(errors[msinv][col], errors[c][col])[0, 1]) for col in COLUMNS
            }
    return found


def summarise(runs: dict, competitors: dict, corr: dict) -> dict:
    """Per competitor and column: geometric mean, worst and best of msinv's error ratio, and
    the correlations of the error fields (``corr[competitor][survey][column]``)."""
    out = {}
    for comp in competitors:
        for col in COLUMNS:
            ratios = {s: m["msinv"][col] / m[comp][col] for s, m in runs.items()}
            logs = [math.log(r) for r in ratios.values()]
            by_survey = {s: c[col] for s, c in corr[comp].items()}
            out[f"{comp}|{col}"] = {
                "error_correlation": by_survey,
                "error_correlation_median": float(np.median(list(by_survey.values()))),
                "geometric_mean": math.exp(sum(logs) / len(logs)),
                "worst": max(ratios.items(), key=lambda kv: kv[1]),
                "best": min(ratios.items(), key=lambda kv: kv[1]),
                "msinv_more_accurate": sum(r < 1 for r in ratios.values()),
                "surveys": len(ratios),
                "ratios": ratios,
            }
        for key, clock in (("speedup", TIME), ("speedup_wall", WALL)):
            speed = {s: m[comp][clock] / m["msinv"][clock] for s, m in runs.items()}
            out[f"{comp}|{key}"] = {"min": min(speed.values()), "max": max(speed.values()),
                                    "ratios": speed}  # fmt: skip
    return out


def _table(keys: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table: the ``keys`` columns, then one column per entry of :data:`COLUMNS`."""
    return [
        "| " + " | ".join([*keys, *COLUMNS.values()]) + " |",
        "|" + "---|" * (len(keys) + len(COLUMNS)),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markdown(runs: dict, summary: dict, competitors: dict) -> str:
    errors = [
        [survey, m, *(f"{methods[m][c]:.5f}" for c in COLUMNS)]
        for survey, methods in runs.items()
        for m in ("msinv", *competitors)
    ]
    ratios = []
    for comp, name in competitors.items():
        cells = []
        for col in COLUMNS:
            s = summary[f"{comp}|{col}"]
            cells.append(
                f"{s['geometric_mean']:.3f} ({s['worst'][0]} {s['worst'][1]:.3f}; "
                f"{s['msinv_more_accurate']}/{s['surveys']})"
            )
        ratios.append([name, *cells])
    correlation = []
    for comp, name in competitors.items():
        cells = []
        for col in COLUMNS:
            corr = summary[f"{comp}|{col}"]["error_correlation"].values()
            med = summary[f"{comp}|{col}"]["error_correlation_median"]
            cells.append(f"{med:.2f} ({min(corr):.2f}-{max(corr):.2f})")
        correlation.append([name, *cells])
    lines = [
        *_table(["survey", "method"], errors),
        "",
        "msinv's error over the competitor's: geometric mean over the surveys "
        "(worst survey; surveys where msinv is more accurate)",
        "",
        *_table(["against"], ratios),
        "",
        "Correlation of msinv's error field with the competitor's: median over the surveys "
        "(least-greatest)",
        "",
        *_table(["against"], correlation),
    ]
    lines.append("")
    for comp, name in competitors.items():
        sp, wall = summary[f"{comp}|speedup"], summary[f"{comp}|speedup_wall"]
        lines.append(
            f"{name}: its fit CPU time over msinv's {sp['min']:.1f}-{sp['max']:.1f}x, wall "
            f"{wall['min']:.1f}-{wall['max']:.1f}x (msinv's includes its choice of beta)."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "results" / "gravity_eqs")
    p.add_argument("--stations", type=int, default=2000)
    p.add_argument("--msinv", default="msinv", help="the msinv method summarised")
    p.add_argument("--competitors", nargs="+", default=list(COMPETITORS), choices=COMPETITORS)
    args = p.parse_args(argv)
    competitors = {c: COMPETITORS[c] for c in args.competitors}
    noisy = [s for s in gravity_eqs.SURVEYS if s not in gravity_eqs.APART]
    runs = load(args.out, args.stations, noisy, competitors, args.msinv)
    if not runs:
        sys.exit(f"no survey in {args.out} has {args.msinv} and {', '.join(competitors)} results")
    corr = correlations(args.out, args.stations, runs, competitors, args.msinv)
    summary = summarise(runs, competitors, corr)
    record = {"msinv": args.msinv, "surveys": list(runs), "summary": summary}
    command = " ".join(["python benchmarks/gravity_eqs_summary.py", *(argv or sys.argv[1:])])
    text = (
        f"`{command}` (from the cached runs of `gravity_eqs.py`; {gravity_eqs.MACHINE}; "
        f"msinv = method `{args.msinv}`)\n\n" + markdown(runs, summary, competitors)
    )
    apart_competitors = {c: n for c, n in competitors.items() if c == "harmonica-cv"}
    groups = (
        ("quiet", gravity_eqs.QUIET, "Quiet surveys (the benchmark surveys with σ = 0.001 and "
         "0.0002 mGal)"),
        ("deep", gravity_eqs.DEEP, "Deep-source surveys (prism tops 800-3,000 m deep)"),
    )  # fmt: skip
    for key, surveys, title in groups:
        runs = apart_competitors and load(
            args.out, args.stations, surveys, apart_competitors, args.msinv
        )
        if not runs:
            continue
        corr = correlations(args.out, args.stations, runs, apart_competitors, args.msinv)
        record[key] = {"surveys": list(runs), "summary": summarise(runs, apart_competitors, corr)}
        text += f"\n## {title}\n\n" + markdown(runs, record[key]["summary"], apart_competitors)
    stem = "summary" if args.msinv == "msinv" else f"summary-{args.msinv}"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
