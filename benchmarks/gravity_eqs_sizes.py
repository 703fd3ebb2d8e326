"""One layer or windows: msinv's two fits against SimPEG's layer as the survey grows.

Reads the cached runs of ``gravity_eqs.py`` at 3,000 to 10,000 stations on the band and disc
surveys' ground (``OUT/N<n>[-disc].json``) and writes, for each, the errors (RMS, mGal: upward
at 300 m, on the surface outside the gap, in the gap) and fit times of

* one layer: ``EquivalentLayer(window=False)`` (method ``msinv-whole``; ``msinv`` where the
  default fits one layer),
* windows of 1,000 stations (``msinv-w1000``; ``msinv`` where the default fits windows),
* SimPEG 0.26's layer (``simpeg``),

marks the one ``EquivalentLayer()`` fits (windows above
:data:`msinv.gravity.equivalent.WINDOWS_ABOVE` stations), and SimPEG's fit time over the
default's (wall clock and CPU). No method is rerun.

Usage::

    python benchmarks/gravity_eqs_sizes.py     # -> OUT/sizes.json, OUT/sizes.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gravity_eqs  # noqa: E402

#: The sizes (2,000 stations: ``gravity_eqs_summary.py``, whose same-load runs time SimPEG).
SIZES = (3000, 3500, 4000, 5000, 10000)
COLUMNS = ("rms_upward_300m", "rms_surface_interior", "rms_surface_gap")


def pick(methods: dict, windows: bool, default_windows: bool):
    """The method name of one layer (``windows`` False) or of windows of 1,000, if run."""
    explicit = "msinv-w1000" if windows else "msinv-whole"
    if explicit in methods:
        return explicit
    return "msinv" if ("msinv" in methods and windows == default_windows) else None


def rows(out: Path) -> list[dict]:
    from msinv.gravity.equivalent import WINDOWS_ABOVE

    found = []
    for n in SIZES:
        for survey in ("band", "disc"):
            path = out / f"{gravity_eqs.prefix(n, survey)}.json"
            if not path.exists():
                continue
            methods = json.loads(path.read_text())["methods"]
            stations = len(gravity_eqs.survey_and_grids(n, survey)[0].data)
            default_windows = stations > WINDOWS_ABOVE
            row = {"n": n, "survey": survey, "stations": stations, "methods": {}}
            for label, windows in (("one layer", False), ("windows of 1,000", True)):
                name = pick(methods, windows, default_windows)
                if name is not None:
                    row["methods"][label] = {
                        "method": name,
                        "default": windows == default_windows,
                        **{
                            k: methods[name][k]
                            for k in (*COLUMNS, "fit_seconds", "fit_cpu_seconds")
                        },
                    }
            if "simpeg" in methods:
                row["methods"]["SimPEG 0.26 layer"] = {
                    "method": "simpeg",
                    **{
                        k: methods["simpeg"][k]
                        for k in (*COLUMNS, "fit_seconds", "fit_cpu_seconds")
                    },
                }
            found.append(row)
    return found


def table(found: list[dict]) -> str:
    lines = [
        "| survey | stations | fit | upward 300 m | surface | gap | wall s | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in found:
        for label, m in row["methods"].items():
            mark = " (default)" if m.get("default") else ""
            lines.append(
                f"| {row['survey']} | {row['stations']:,} | {label}{mark} | "
                + " | ".join(f"{m[k]:.5f}" for k in COLUMNS)
                + f" | {m['fit_seconds']:.1f} | {m['fit_cpu_seconds']:.1f} |"
            )
    lines += ["", "Windows' error over one layer's (upward, surface, gap):", ""]
    for row in found:
        ms = row["methods"]
        if "one layer" in ms and "windows of 1,000" in ms:
            ratios = [ms["windows of 1,000"][k] / ms["one layer"][k] for k in COLUMNS]
            lines.append(
                f"- {row['survey']}, {row['stations']:,} stations: "
                + ", ".join(f"{r:.2f}" for r in ratios)
            )
    lines += ["", "SimPEG's fit time over the default's (wall, CPU):", ""]
    for row in found:
        ms = row["methods"]
        default = next((m for m in ms.values() if m.get("default")), None)
        if default and "SimPEG 0.26 layer" in ms:
            sp = ms["SimPEG 0.26 layer"]
            lines.append(
                f"- {row['survey']}, {row['stations']:,} stations: "
                f"{sp['fit_seconds'] / default['fit_seconds']:.1f}x wall, "
                f"{sp['fit_cpu_seconds'] / default['fit_cpu_seconds']:.1f}x CPU"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "results" / "gravity_eqs")
    args = p.parse_args(argv)
    found = rows(args.out)
    (args.out / "sizes.json").write_text(json.dumps(found, indent=2) + "\n")
    text = (
        f"`python benchmarks/gravity_eqs_sizes.py` (from the cached runs of `gravity_eqs.py`; "
        f"{gravity_eqs.MACHINE})\n\n" + table(found)
    )
    (args.out / "sizes.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
