"""Learned prior, physical finish: the physics-checked posterior, the OOD alarm and FWI polish on
held-out data of the reduced squares benchmark (32x32, f = 1, 2, 4; ``learned_reduced.py``).

Stages (all by default; each resumable, results under ``out/learned_physics/``):

* ``data``: the held-out squares store of the reduced benchmark (``squares32-test.zarr``, seed 1,
  made exactly as ``learned_reduced.py`` makes it) and two out-of-family stores
  (``shepp_logan32-ood.zarr``, ``triangles32-ood.zarr``, seed 2, same acquisition);
* ``alarm``: copy the checkpoint to ``out/learned_physics/checkpoint.pt``, calibrate its OOD
  alarm on held-out squares ``[calib-start, calib-start + calib-count)`` (the ``quantile`` of the
  median misfit of the draws), then score held-out squares ``[0, eval-count)`` (false alarms),
  Shepp-Logan, triangles and held-out squares with 40% noise (detections);
* ``compare``: for held-out squares ``[0, count)``: the learned posterior alone (mean of K
  draws; every draw re-simulated at every frequency), FWI from eta = 0, and FWI from the
  posterior mean (same schedule 1 -> 2 -> 4, same iterations per stage); the first
  ``spread-count`` data also polish ``polish-draws`` draws (the polished spread);
* ``cycle``: the top frequency alone (f = 4), ``3 x iterations`` L-BFGS-B iterations, from
  eta = 0 and from posterior draw 0;
* ``report``: ``benchmarks/results/learned_physics.{json,md}`` and figures
  ``docs/figures/learned_physics_*.png``.

Usage: ``nice python benchmarks/learned_physics.py [--checkpoint CKPT] [--count 16]
[--draws 8] [--levels 256] [--iterations 10] [--stages data,alarm,compare,cycle,report]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import learned_reduced as reduced

REPO = reduced.REPO
STATE = REPO / "out" / "learned_physics"
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "figures"
TEST = reduced.store(reduced.Sizes(), "test")
OOD = {f: TEST.parent / f"{f}{reduced.N}-ood.zarr" for f in ("shepp_logan", "triangles")}
#: Scheme of every FWI run here (the stores are made with wide8: no inverse crime).
SCHEME = "wide6"
MACHINE = "shared 2-core x86_64 VM, under load from parallel work (about 9 agents)"


def stage_data(args) -> dict:
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    t0 = time.perf_counter()
    common = {"geometry": Geometry.paper(reduced.N), "freqs": reduced.FREQS, "workers": 1}
    generate(
        TEST,
        family="squares",
        count=args.test_count,
        seed=1,
        family_params=reduced.FAMILY_PARAMS,
        progress=False,
        **common,
    )
    for family, path in OOD.items():
        generate(path, family=family, count=args.ood_count, seed=2, progress=False, **common)
    return {"seconds": round(time.perf_counter() - t0, 1)}


def _draws(loaded, data, k, levels, seed):
    """Posterior draws of each datum (datum j seeded seed + j) and the seconds they took."""
    from msinv.learned.sampling import posterior

    t0 = time.perf_counter()
    s = posterior(loaded, data, k, seed=seed, n_levels=levels)
    return s, time.perf_counter() - t0


def stage_alarm(args) -> dict:
    from msinv.learned.alarm import calibrate, score
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import load
    from msinv.learned.physics import CheckConfig, NoiseModel, check_draws

    STATE.mkdir(parents=True, exist_ok=True)
    ckpt = STATE / "checkpoint.pt"
    shutil.copyfile(args.checkpoint, ckpt)
    t0 = time.perf_counter()
    alarm = calibrate(
        ckpt,
        TEST,
        start=args.calib_start,
        count=args.calib_count,
        draws=args.alarm_draws,
        n_levels=args.levels,
        quantile=args.quantile,
        seed=1000,
        check=CheckConfig(),
    )
    print(f"alarm: threshold {alarm.threshold:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    loaded = load(ckpt)
    squares = load_pairs(TEST, 0, args.eval_count)
    sets = {"squares (held-out)": (squares.data, squares.spec, squares.freqs)}
    for family, path in OOD.items():
        p = load_pairs(path, 0, args.ood_count)
        sets[family] = (p.data, p.spec, p.freqs)
    noisy = NoiseModel(0.4).add(squares.data[: args.ood_count], seed=7)
    sets["squares + 40% noise"] = (noisy, squares.spec, squares.freqs)
    out = {"alarm": alarm.to_dict(), "sets": {}}
    for name, (data, geometry, freqs) in sets.items():
        t0 = time.perf_counter()
        samples, _ = _draws(loaded, data, args.alarm_draws, args.levels, 0)
        check = check_draws(samples, data, geometry, freqs, CheckConfig())
        s = score(check.misfit)
        flags = alarm.flags(check.misfit)
        out["sets"][name] = {
            "count": len(s),
            "flagged": int(flags.sum()),
            "rate": float(flags.mean()),
            "scores": s.tolist(),
            "misfit_freq_median": np.median(check.misfit_freq, axis=(0, 1)).tolist(),
        }
        print(
            f"alarm {name}: {int(flags.sum())}/{len(s)} flagged, median score "
            f"{np.median(s):.4f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    ood = [v for k, v in out["sets"].items() if k != "squares (held-out)"]
    out["false_alarm_rate"] = out["sets"]["squares (held-out)"]["rate"]
    out["detection_rate"] = sum(v["flagged"] for v in ood) / sum(v["count"] for v in ood)
    return out


def stage_compare(args) -> dict:
    """One record per datum, appended to ``compare.jsonl`` (a rerun resumes after the last)."""
    from msinv.learned.data import load_pairs
    from msinv.learned.loading import load
    from msinv.learned.physics import CheckConfig, check_draws
    from msinv.learned.polish import PolishConfig, fwi_from
    from msinv.metrics import melr, rrmse

    log = STATE / "compare.jsonl"
    done = (
        {json.loads(line)["index"] for line in log.read_text().splitlines()}
        if log.exists()
        else set()
    )
    loaded = load(args.checkpoint)
    pairs = load_pairs(TEST, 0, args.count)
    cfg = PolishConfig(iterations=args.iterations, scheme=SCHEME)
    check = CheckConfig()
    for j in range(args.count):
        if j in done:
            continue
        truth, data = pairs.eta[j].astype(np.float64), pairs.data[j]
        g, freqs = pairs.spec, pairs.freqs
        samples, t_sample = _draws(loaded, data[None], args.draws, args.levels, j)
        t0 = time.perf_counter()
        drawn = check_draws(samples, data[None], g, freqs, check)
        t_check = time.perf_counter() - t0
        mean = samples[0].mean(axis=0).astype(np.float64)
        starts = [np.zeros_like(mean), mean]
        if j < args.spread_count:
            starts += list(samples[0, : args.polish_draws].astype(np.float64))
        models, seconds = fwi_from(np.stack(starts), data, g, freqs, cfg)
        est = np.stack([mean, models[0], models[1]])
        mis = check_draws(est[:, None], np.repeat(data[None], 3, 0), g, freqs, check)
        rec = {
            "index": j,
            "seconds": {
                "sampling": t_sample,
                "check": t_check,
                "fwi_zero": float(seconds[0]),
                "polish_mean": float(seconds[1]),
            },
            "draw_misfit": drawn.misfit[0].tolist(),
            "draw_misfit_freq": drawn.misfit_freq[0].tolist(),
            "ess": float(drawn.ess[0]),
            "draw_rrmse": rrmse(samples[0], np.broadcast_to(truth, samples[0].shape)).tolist(),
        }
        for i, name in enumerate(["learned", "fwi_zero", "learned_polish"]):
            rec[name] = {
                "rrmse": float(rrmse(est[i][None], truth[None])[0]),
                "melr": float(melr(est[i][None], truth[None])[0]),
                "misfit": float(mis.misfit[i, 0]),
                "misfit_freq": mis.misfit_freq[i, 0].tolist(),
            }
        if len(starts) > 2:
            pol = models[2:]
            rec["polished_draws"] = {
                "rrmse_before": rrmse(
                    np.stack(starts[2:]), np.broadcast_to(truth, pol.shape)
                ).tolist(),
                "rrmse_after": rrmse(pol, np.broadcast_to(truth, pol.shape)).tolist(),
                "std_before": float(np.stack(starts[2:]).std(axis=0).mean()),
                "std_after": float(pol.std(axis=0).mean()),
                "seconds": seconds[2:].tolist(),
            }
        np.savez_compressed(
            STATE / f"compare-{j:03d}.npz", truth=truth, samples=samples[0], models=models
        )
        with open(log, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(
            f"compare {j}: RRMSE learned {rec['learned']['rrmse']:.4f}, FWI from 0 "
            f"{rec['fwi_zero']['rrmse']:.4f}, learned + polish {rec['learned_polish']['rrmse']:.4f}",
            flush=True,
        )
    return summarise_compare([json.loads(line) for line in log.read_text().splitlines()])


def summarise_compare(records: list[dict]) -> dict:
    records = sorted(records, key=lambda r: r["index"])
    out = {"count": len(records), "methods": {}}
    seconds = {
        "learned": [r["seconds"]["sampling"] + r["seconds"]["check"] for r in records],
        "fwi_zero": [r["seconds"]["fwi_zero"] for r in records],
        "learned_polish": [r["seconds"]["sampling"] + r["seconds"]["polish_mean"] for r in records],
    }
    for name in ("learned", "fwi_zero", "learned_polish"):
        out["methods"][name] = {
            key: float(np.mean([r[name][key] for r in records]))
            for key in ("rrmse", "melr", "misfit")
        }
        out["methods"][name]["misfit_freq"] = np.mean(
            [r[name]["misfit_freq"] for r in records], axis=0
        ).tolist()
        out["methods"][name]["rrmse_max"] = float(max(r[name]["rrmse"] for r in records))
        out["methods"][name]["seconds_per_datum"] = float(np.mean(seconds[name]))
    out["polish_beats_learned"] = sum(
        r["learned_polish"]["rrmse"] < r["learned"]["rrmse"] for r in records
    )
    out["polish_beats_fwi_zero"] = sum(
        r["learned_polish"]["rrmse"] < r["fwi_zero"]["rrmse"] for r in records
    )
    draws = np.array([r["draw_misfit"] for r in records])
    out["draws"] = {
        "per_datum": draws.shape[1],
        "misfit_median": float(np.median(draws)),
        "misfit_freq_median": np.median(
            [r["draw_misfit_freq"] for r in records], axis=(0, 1)
        ).tolist(),
        "rrmse_mean": float(np.mean([r["draw_rrmse"] for r in records])),
        "ess_mean": float(np.mean([r["ess"] for r in records])),
    }
    spread = [r["polished_draws"] for r in records if "polished_draws" in r]
    if spread:
        out["polished_draws"] = {
            "data": len(spread),
            "draws_each": len(spread[0]["rrmse_after"]),
            "rrmse_before": float(np.mean([s["rrmse_before"] for s in spread])),
            "rrmse_after": float(np.mean([s["rrmse_after"] for s in spread])),
            "std_before": float(np.mean([s["std_before"] for s in spread])),
            "std_after": float(np.mean([s["std_after"] for s in spread])),
        }
    return out


def stage_cycle(args) -> dict:
    from msinv.learned.data import load_pairs
    from msinv.learned.physics import CheckConfig, check_draws
    from msinv.learned.polish import PolishConfig, fwi_from
    from msinv.metrics import rrmse

    top = max(reduced.FREQS)
    cfg = PolishConfig(iterations=3 * args.iterations, schedule=[[top]], scheme=SCHEME)
    pairs = load_pairs(TEST, 0, args.cycle_count)
    rows = []
    for j in range(args.cycle_count):
        path = STATE / f"compare-{j:03d}.npz"
        if not path.exists():
            raise SystemExit(f"cycle: run the compare stage first ({path} missing)")
        with np.load(path) as f:
            truth, draw = f["truth"], f["samples"][0].astype(np.float64)
        starts = np.stack([np.zeros_like(draw), draw])
        models, seconds = fwi_from(starts, pairs.data[j], pairs.spec, pairs.freqs, cfg)
        mis = check_draws(
            np.stack([starts, models])[:, :, None].reshape(4, 1, *draw.shape),
            np.repeat(pairs.data[j][None], 4, 0),
            pairs.spec,
            pairs.freqs,
            CheckConfig(),
        ).misfit[:, 0]
        t = np.broadcast_to(truth, (2, *truth.shape))
        rows.append(
            {
                "index": j,
                "rrmse_from_zero": float(rrmse(models[0][None], truth[None])[0]),
                "rrmse_draw": float(rrmse(draw[None], truth[None])[0]),
                "rrmse_from_draw": float(rrmse(models[1][None], truth[None])[0]),
                "rrmse": rrmse(models, t).tolist(),
                "misfit_from_zero": float(mis[2]),
                "misfit_draw": float(mis[1]),
                "misfit_from_draw": float(mis[3]),
                "seconds": seconds.tolist(),
            }
        )
        np.savez_compressed(STATE / f"cycle-{j:03d}.npz", truth=truth, draw=draw, models=models)
        print(f"cycle {j}: {rows[-1]}", flush=True)
    return {
        "frequency": top,
        "iterations": cfg.iterations,
        "rows": rows,
        "rrmse_from_zero": float(np.mean([r["rrmse_from_zero"] for r in rows])),
        "rrmse_from_draw": float(np.mean([r["rrmse_from_draw"] for r in rows])),
    }


def figures(result: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    paths = []
    # 1. reconstructions: truth, learned mean, FWI from 0, learned + polish
    rows = []
    for path in sorted(STATE.glob("compare-*.npz"))[:3]:
        with np.load(path) as f:
            truth, mean, models = f["truth"], f["samples"].mean(axis=0), f["models"]
        rows.append(
            (
                truth,
                [
                    ("learned (mean)", mean),
                    ("FWI from 0", models[0]),
                    ("learned + FWI polish", models[1]),
                ],
            )
        )
    if rows:
        paths.append(_image_grid(rows, "learned_physics_compare.png"))
    # 2. misfit distribution of the draws per frequency (compare set) + OOD scores
    comp = result.get("compare_records")
    alarm = result.get("alarm")
    if comp:
        mf = np.array([r["draw_misfit_freq"] for r in comp])  # (m, K, n_freq)
        n_panels = mf.shape[-1] + (alarm is not None)
        fig, axes = plt.subplots(1, n_panels, figsize=(3.3 * n_panels, 3.0))
        for i, f in enumerate(reduced.FREQS):
            axes[i].hist(100 * mf[..., i].ravel(), bins=30, color="tab:blue")
            axes[i].set_title(f"draws' misfit at f = {f:g}")
            axes[i].set_xlabel("relative data misfit (%)")
        if alarm is not None:
            ax = axes[-1]
            every = 100 * np.concatenate([s["scores"] for s in alarm["sets"].values()])
            bins = np.geomspace(every.min(), every.max(), 40)
            for name, s in alarm["sets"].items():
                ax.hist(100 * np.array(s["scores"]), bins=bins, alpha=0.6, label=name)
            ax.axvline(100 * alarm["alarm"]["threshold"], color="k", ls="--", label="threshold")
            ax.set_xscale("log")
            ax.set_title("OOD score (median misfit of draws)")
            ax.set_xlabel("%")
            ax.legend(fontsize=6)
        fig.tight_layout()
        paths.append(_save(fig, "learned_physics_misfits.png"))
    # 3. cycle skipping at the top frequency
    rows = []
    for path in sorted(STATE.glob("cycle-*.npz"))[:2]:
        with np.load(path) as f:
            truth, draw, models = f["truth"], f["draw"], f["models"]
        rows.append(
            (
                truth,
                [
                    ("FWI at f = 4 alone from 0", models[0]),
                    ("posterior draw", draw),
                    ("FWI at f = 4 from the draw", models[1]),
                ],
            )
        )
    if rows:
        paths.append(_image_grid(rows, "learned_physics_cycle.png"))
    return paths


def _image_grid(rows: list, name: str) -> str:
    """One row per datum: its truth, then each (title, image) with its RRMSE."""
    import matplotlib.pyplot as plt

    cols = 1 + len(rows[0][1])
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.8 * cols, 2.8 * len(rows)), squeeze=False)
    for row, (truth, panels) in zip(axes, rows, strict=True):
        for ax, (title, img) in zip(row, [("truth", truth), *panels], strict=True):
            lo, hi = min(truth.min(), img.min()), truth.max()
            ax.imshow(img, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
            if title != "truth":
                title += f"\nRRMSE {np.linalg.norm(img - truth) / np.linalg.norm(truth):.3f}"
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, name)


def _save(fig, name: str) -> str:
    import matplotlib.pyplot as plt

    path = FIGURES / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path.relative_to(REPO))


def markdown(result: dict) -> str:
    c = result["compare"]
    cfg = result["stages"]["compare"]["config"]
    lines = [
        f"Held-out squares 0..{c['count'] - 1} of `{TEST.relative_to(REPO)}` "
        f"({cfg['draws']} draws per datum, {cfg['levels']} noise levels; "
        f"FWI: schedule 1 -> 2 -> 4, {cfg['iterations']} L-BFGS-B iterations per "
        f"stage, scheme {SCHEME}, bounds (-0.9, none), no regularisation, both from 0 and from the mean).",
        "",
        "| method | RRMSE (mean) | RRMSE (max) | MELR×100 | data misfit | misfit f=1 / 2 / 4 | s per datum |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {
        "learned": "learned alone (posterior mean)",
        "fwi_zero": "FWI from η = 0",
        "learned_polish": "learned + FWI polish (from the mean)",
    }
    for key, label in names.items():
        m = c["methods"][key]
        per = " / ".join(f"{100 * v:.2f}%" for v in m["misfit_freq"])
        lines.append(
            f"| {label} | {100 * m['rrmse']:.2f}% | {100 * m['rrmse_max']:.2f}% | "
            f"{100 * m['melr']:.2f} | {100 * m['misfit']:.2f}% | {per} | {m['seconds_per_datum']:.1f} |"
        )
    d = c["draws"]
    lines += [
        "",
        f"Every draw re-simulated with the data's own forward model (the store's spec): median misfit {100 * d['misfit_median']:.2f}% "
        f"(per frequency {' / '.join(f'{100 * v:.2f}%' for v in d['misfit_freq_median'])}); mean RRMSE "
        f"per draw {100 * d['rrmse_mean']:.2f}%; mean ESS {d['ess_mean']:.2f} of {d['per_datum']} under "
        "Gaussian noise of 5% of the data's std. Polish beats learned alone on "
        f"{c['polish_beats_learned']}/{c['count']} data and FWI from 0 on {c['polish_beats_fwi_zero']}/{c['count']}.",
    ]
    if "polished_draws" in c:
        p = c["polished_draws"]
        lines.append(
            f"Polished draws ({p['data']} data × {p['draws_each']} draws): RRMSE {100 * p['rrmse_before']:.2f}% -> "
            f"{100 * p['rrmse_after']:.2f}%, mean pixel std over the draws {p['std_before']:.4f} -> {p['std_after']:.4f}."
        )
    if "cycle" in result:
        cy = result["cycle"]
        lines.append(
            f"Top frequency alone (f = {cy['frequency']:g}, {cy['iterations']} iterations), "
            f"{len(cy['rows'])} data: RRMSE from η = 0 {100 * cy['rrmse_from_zero']:.2f}%, "
            f"from posterior draw 0 {100 * cy['rrmse_from_draw']:.2f}%."
        )
    if "alarm" in result:
        a = result["alarm"]
        lines += ["", "| OOD alarm set | data | flagged | rate |", "|---|---|---|---|"]
        for name, s in a["sets"].items():
            lines.append(f"| {name} | {s['count']} | {s['flagged']} | {100 * s['rate']:.1f}% |")
        lines.append(
            f"\nThreshold {100 * a['alarm']['threshold']:.3f}% = quantile {a['alarm']['quantile']} of "
            f"the scores ({a['alarm']['draws']} draws, {a['alarm']['n_levels']} noise levels) of "
            f"{a['alarm']['count']} held-out squares ({a['alarm']['data'].split('/')[-1]}); "
            f"false alarms {100 * a['false_alarm_rate']:.1f}%, detections {100 * a['detection_rate']:.1f}%."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", default="data,alarm,compare,cycle,report")
    ap.add_argument(
        "--checkpoint", default=str(REPO / "src/msinv/learned/checkpoints/equinet-cnn-squares32.pt")
    )
    ap.add_argument(
        "--test-count", type=int, default=reduced.Sizes().test_count, help="as learned_reduced.py"
    )
    ap.add_argument("--count", type=int, default=16, help="held-out data compared")
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--levels", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=10, help="L-BFGS-B per FWI stage")
    ap.add_argument("--spread-count", type=int, default=4)
    ap.add_argument("--polish-draws", type=int, default=2)
    ap.add_argument("--cycle-count", type=int, default=4)
    ap.add_argument("--alarm-draws", type=int, default=4)
    ap.add_argument("--calib-start", type=int, default=100)
    ap.add_argument("--calib-count", type=int, default=40)
    ap.add_argument("--eval-count", type=int, default=40)
    ap.add_argument("--ood-count", type=int, default=20)
    ap.add_argument("--quantile", type=float, default=0.99)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    from msinv.core.provenance import provenance

    torch.set_num_threads(args.threads)
    STATE.mkdir(parents=True, exist_ok=True)
    stages = args.stages.split(",")
    run = {
        "config": vars(args),
        "machine": MACHINE,
        "command": "nice python benchmarks/learned_physics.py " + " ".join(sys.argv[1:]),
        "checkpoint_sha256": hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest(),
    }
    for name, fn in [
        ("data", stage_data),
        ("compare", stage_compare),
        ("cycle", stage_cycle),
        ("alarm", stage_alarm),
    ]:
        if name in stages:  # one file per stage: stages may run in separate processes
            (STATE / f"{name}-run.json").write_text(json.dumps(run, indent=2))
            t0 = time.perf_counter()
            out = {**run, "result": fn(args), "seconds": round(time.perf_counter() - t0, 1)}
            (STATE / f"{name}.json").write_text(json.dumps(out, indent=2))
    if "report" in stages:
        result = {"stages": {}}
        for name in ("data", "compare", "cycle", "alarm"):
            path = STATE / f"{name}.json"
            if path.exists():
                stage = json.loads(path.read_text())
                result[name] = stage.pop("result")
                result["stages"][name] = stage
        # the per-datum records are the source: a compare stage still running is reported so far
        log = STATE / "compare.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        result["compare_records"] = sorted(records, key=lambda r: r["index"])
        result["compare"] = summarise_compare(records)
        result["stages"]["compare"] = json.loads((STATE / "compare-run.json").read_text())
        result["figures"] = figures(result)
        result["provenance"] = provenance(vars(args))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "learned_physics.json").write_text(json.dumps(result, indent=2))
        (RESULTS / "learned_physics.md").write_text(markdown(result))
        print(markdown(result))


if __name__ == "__main__":
    main()
