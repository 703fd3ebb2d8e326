"""Evaluation of models on held-out data in the layout of the paper's Table 1."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from msinv.core.errors import UserInputError
from msinv.core.outputs import atomic_path, write_text
from msinv.learned.figures import plot_posterior
from msinv.learned.loading import check_fits, load
from msinv.learned.physics import NoiseModel, resimulate
from msinv.learned.sampling import posterior


def evaluate(
    checkpoints: dict[str, str | os.PathLike],
    datasets: dict[str, str | os.PathLike],
    *,
    draws: int = 10,
    start: int = 0,
    count: int | None = None,
    n_levels: int = 256,
    misfit: str = "mean",
    seed: int = 0,
    device: str = "cpu",
    batch: int = 64,
    noise: float = 0.0,
    references: dict[str, tuple[str | os.PathLike, int, int | None]] | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate models on held-out data in the layout of the paper's Table 1.

    Parameters
    ----------
    checkpoints : dict
        Row label -> checkpoint.
    datasets : dict
        Column label (family) -> test store.
    draws : int, default 10
        Posterior samples per datum (deterministic models: 1).
    start, count : int
        The test pairs ``start .. start + count - 1`` of every store (default: all from
        ``start``). Pairs a checkpoint was trained on are refused before any work
        (:func:`msinv.learned.data.check_held_out`).
    n_levels : int, default 256
        Sampler noise levels.
    misfit : {"mean", "samples", "none"}, default 'mean'
        Re-simulate the posterior mean of each datum, every sample, or nothing, and report
        the relative data misfit over all frequencies and per frequency.
    seed : int, default 0
    device : str, default 'cpu'
    batch : int, default 64
        Images computed together (:func:`msinv.learned.sampling.posterior`).
    noise : float, default 0.0
        Test-time noise level (the paper's noise-robustness experiment: 0.1, 0.2, 0.4): each
        datum gets :meth:`msinv.learned.physics.NoiseModel.add` noise of this level times its
        standard deviation per frequency (seeded by ``seed``: each model sees the same noise).
        Misfits compare with the noisy data.
    references : dict, optional
        Family -> (training store, start, count) for the paper's "reference SD" between the
        training set and the test set (families left out: none). Default (None): the first
        :data:`REFERENCE_TRAIN_PAIRS` pairs of the first checkpoint's training slice, when its
        store exists.
    out : path-like, optional
        Prefix of ``.json``, ``.csv`` and ``.md`` tables, ``-<model>-<family>.png`` figures
        (truth, mean, std, error, zoom of the first test datum) and ``-<model>-<family>.npz``
        per-sample values (``rrmse``, ``melr``, ``melr_weighted`` (m, K), ``crps``,
        ``crps_fair`` (m,), ``data_misfit`` (m, K', 1 + n_freq), ``index`` (m,)).
    progress : bool, default False
        A progress bar of the posterior draws on stderr (shown only on a terminal).

    Returns
    -------
    dict
        ``{"rows": [...], "references": {...}, "markdown": str}``. Each row holds per-model,
        per-family means of RRMSE (over data and draws), RRMSE of the posterior mean, MELR
        (unweighted and energy-weighted), the Sinkhorn values between one draw per datum and
        the truths (``sd``: debiased, POT's convention; ``sd_paper``: the paper's Appendix-E
        formula, twice ``sd``; ``sd_reference``: the quantity of the paper's tables), CRPS
        (the paper's estimator) and ``crps_fair``, data misfit (all frequencies and per
        frequency), the sampling time and the targets' blur of test and training stores.
        ``references`` holds the same three Sinkhorn values between training and test truths.

    Notes
    -----
    The metric definitions are those of :mod:`msinv.metrics`.
    """
    from msinv.learned.data import check_held_out, store_slice

    if misfit not in ("mean", "samples", "none"):
        raise UserInputError(f"misfit must be 'mean', 'samples' or 'none', got {misfit!r}")
    loaded = {label: load(ckpt, device=device) for label, ckpt in checkpoints.items()}
    tests = {family: store_slice(store, start, count) for family, store in datasets.items()}
    for label, model in loaded.items():
        for test in tests.values():
            check_held_out(model.train_data, test, "evaluate")
            blurs = {t.get("target_blur") for t in model.train_data or []} - {None}
            trained_blur = max(blurs) if blurs else None
            if trained_blur is not None and blurs != {test["target_blur"]}:
                warnings.warn(
                    f"{label} was trained on targets blurred by {trained_blur:g} px, "
                    f"{test['path']} holds targets blurred by {test['target_blur']:g} px: "
                    "the errors include the blur difference",
                    UserWarning,
                    stacklevel=2,
                )
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    ref_rows = _reference_sd(datasets, start, count, references, next(iter(loaded.values())))
    settings = {
        "start": start,
        "count": count,
        "draws": draws,
        "n_levels": n_levels,
        "misfit": misfit,
        "seed": seed,
        "batch": batch,
        "noise": noise,
        "progress": progress,
    }
    rows = []
    for label, model in loaded.items():
        for family, store in datasets.items():
            row, values = _evaluate_one(model, store, label, family, settings)
            trained = (model.train_data or [{}])[0]
            row = {
                "model": label,
                "family": family,
                "checkpoint": str(checkpoints[label]),
                **row,
                "target_blur": tests[family]["target_blur"],
                "train_target_blur": trained.get("target_blur"),
            }
            rows.append(row)
            if out is not None:
                plot_posterior(
                    values.pop("truth0"),
                    values.pop("samples0"),
                    Path(f"{out}-{label}-{family}.png"),
                )
                np.savez_compressed(f"{out}-{label}-{family}.npz", **values)
    md = table_markdown(rows, ref_rows)
    if out is not None:
        import csv

        write_text(
            f"{out}.json",
            json.dumps(
                {"rows": rows, "references": ref_rows, "provenance": _provenance()}, indent=2
            ),
        )
        write_text(f"{out}.md", md)
        with atomic_path(f"{out}.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return {"rows": rows, "references": ref_rows, "markdown": md}


def _evaluate_one(loaded, store, label: str, family: str, settings: dict):
    """(summary row, per-sample arrays) of one model on one test slice (``settings``: the
    options of :func:`evaluate`)."""
    from msinv import metrics
    from msinv.learned.data import TRAINED_ON, load_pairs

    start, count, draws, seed = (settings[k] for k in ("start", "count", "draws", "seed"))
    misfit, noise = settings["misfit"], settings["noise"]

    pairs = load_pairs(store, start, count, loaded.freqs, TRAINED_ON)
    check_fits(loaded, pairs.data, pairs.freqs, f"{store}")
    if noise:
        pairs = dataclasses.replace(pairs, data=NoiseModel(noise).add(pairs.data, seed))
    t0 = time.perf_counter()
    k = 1 if loaded.kind == "deterministic" else draws
    with tqdm(
        total=len(pairs.data) * k,
        desc=f"{label} on {family}",
        unit="draw",
        disable=None if settings["progress"] else True,  # None: only on a terminal
    ) as bar:
        samples = posterior(
            loaded,
            pairs.data,
            draws,
            seed=seed,
            n_levels=settings["n_levels"],
            batch=settings["batch"],
            callback=lambda j, done, bar=bar, k=k: bar.update(j * k + done - bar.n),
        )
    seconds = time.perf_counter() - t0
    m, k = samples.shape[:2]
    truth = pairs.eta.astype(np.float64)
    s64 = samples.astype(np.float64)
    mean = s64.mean(axis=1)
    values = {
        "index": np.arange(start, start + m),
        "rrmse": metrics.rrmse(s64, truth[:, None]),
        "rrmse_mean": metrics.rrmse(mean, truth),
        "melr": metrics.melr(s64, truth[:, None]),
        "melr_weighted": metrics.melr(s64, truth[:, None], weighted=True),
        "crps": metrics.crps(s64, truth),
        "crps_fair": metrics.crps(s64, truth, fair=True) if k > 1 else np.full(m, np.nan),
    }
    row = {
        "test_pairs": m,
        "test_start": start,
        "noise": noise,
        "draws": k,
        **{key: float(np.mean(values[key])) for key in ("rrmse", "rrmse_mean", "melr")},
        "melr_weighted": float(np.mean(values["melr_weighted"])),
        **_sd_values(samples[:, 0], truth),
        "crps": float(np.mean(values["crps"])),
        "crps_fair": float(np.mean(values["crps_fair"])),
        "mean_std": float(samples.std(axis=1).mean()) if k > 1 else 0.0,
        "sampling_seconds": round(seconds, 2),
    }
    if misfit != "none":
        chosen = mean[:, None] if misfit == "mean" else samples
        pred = resimulate(chosen, pairs.spec or pairs.geometry, pairs.freqs)
        obs = np.asarray(pairs.data)[:, None]
        total = np.asarray(metrics.data_misfit(pred, obs), dtype=np.float64)
        each = np.asarray(metrics.data_misfit(pred, obs, ndim=2), dtype=np.float64)
        mis = np.concatenate([total[..., None], each], axis=-1)
        values["data_misfit"] = mis
        row["data_misfit"] = float(mis[..., 0].mean())
        row["data_misfit_per_frequency"] = [float(v) for v in mis[..., 1:].mean(axis=(0, 1))]
        row["freqs"] = [float(f) for f in pairs.freqs]
    values["truth0"], values["samples0"] = truth[0], samples[0]
    return row, values


def _sd_values(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The three Sinkhorn values between generated set x and true set y."""
    from msinv import metrics

    sd = metrics.sinkhorn_or_nan(metrics.sinkhorn_divergence, x, y)
    return {
        "sd": sd,
        "sd_paper": 2.0 * sd,  # metrics.sinkhorn_divergence_paper, without solving twice
        "sd_reference": metrics.sinkhorn_or_nan(metrics.sinkhorn_cost_reference, x, y),
    }


#: training pairs of the default reference SD (the debiased SD needs a square cost matrix of
#: them: 2,000 pairs at 80 x 80 are a 32 MB matrix, all 21,000 would be 3.5 GB)
REFERENCE_TRAIN_PAIRS = 2000


def _reference_sd(datasets, start, count, references, first) -> dict[str, dict]:
    """The paper's reference SD per family (training truths against test truths)."""
    from msinv.scattering import open_dataset

    out = {}
    for family, store in datasets.items():
        if references is not None:
            if family not in references:
                continue
            train_store, t_start, t_count = references[family]
        elif first.train_data and os.path.exists(first.train_data[0]["path"]):
            t = first.train_data[0]
            train_store, t_start = t["path"], t["start"]
            available = len(open_dataset(train_store)) - t_start
            stop = min(t["stop"], t_start + available)
            t_count = min(stop - t_start, REFERENCE_TRAIN_PAIRS)
        else:
            continue
        value = reference_sd(train_store, t_start, t_count, store, start, count)
        if value is not None:
            out[family] = value
    return out


def reference_sd(
    train_store: str | os.PathLike,
    train_start: int,
    train_count: int | None,
    test_store: str | os.PathLike,
    start: int = 0,
    count: int | None = None,
) -> dict | None:
    """The paper's "reference SD": Sinkhorn values between training and test truths.

    Returns
    -------
    dict or None
        ``train_store``, ``train_pairs``, ``test_pairs``, ``sd``, ``sd_paper``,
        ``sd_reference`` (as :func:`evaluate`'s rows); None when the grids differ.
    """
    from msinv.learned.data import load_pairs

    train = load_pairs(train_store, train_start, train_count).eta.astype(np.float64)
    test = load_pairs(test_store, start, count).eta.astype(np.float64)
    if train.shape[1:] != test.shape[1:]:
        return None
    return {
        "train_store": str(train_store),
        "train_pairs": len(train),
        "test_pairs": len(test),
        **_sd_values(train, test),
    }


def _provenance() -> dict:
    from msinv.core.provenance import provenance

    return provenance()


def table_markdown(rows: list[dict], references: dict[str, dict] | None = None) -> str:
    """Table 1 layout: one row per model, one column per family, cells RRMSE / MELR / SD
    (the paper's formula) / SD as reported in the paper's tables; the reference SD between
    training and test sets; then a detail table with every metric."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cell = {(r["model"], r["family"]): r for r in rows}
    lines = [
        "| model | "
        + " | ".join(f"{f}: RRMSE / MELR×100 / SD / SD as reported" for f in families)
        + " |",
        "|---|" + "---|" * len(families),
    ]
    for m in models:
        vals = []
        for f in families:
            r = cell.get((m, f))
            vals.append(
                ""
                if r is None
                else f"{100 * r['rrmse']:.3f}% / {100 * r['melr']:.3f} / {r['sd_paper']:.4g} / "
                f"{r['sd_reference']:.4g}"
            )
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    if references:
        vals = [
            ""
            if f not in references
            else f"- / - / {references[f]['sd_paper']:.4g} / {references[f]['sd_reference']:.4g}"
            for f in families
        ]
        lines.append("| reference SD (training vs test truths) | " + " | ".join(vals) + " |")
    lines += [
        "",
        "SD: the paper's Appendix-E formula 2W(μ,ν) − W(μ,μ) − W(ν,ν) (squared Euclidean "
        "cost, ε = 0.05 × mean cost); SD as reported: the entropic OT cost with the "
        "Euclidean cost that the paper's tables report (`msinv.metrics`).",
        "",
        "| model | family | RRMSE | RRMSE of mean | MELR×100 | MELR_w×100 | SD (debiased) | "
        "CRPS×10⁴ | fair CRPS×10⁴ | mean std | data misfit | per frequency | draws | "
        "sampling s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mis = f"{100 * r['data_misfit']:.2f}%" if "data_misfit" in r else "-"
        per = (
            ", ".join(
                f"f={f:g}: {100 * v:.2f}%"
                for f, v in zip(r["freqs"], r["data_misfit_per_frequency"], strict=True)
            )
            if "data_misfit" in r
            else "-"
        )
        lines.append(
            f"| {r['model']} | {r['family']} | {100 * r['rrmse']:.3f}% | "
            f"{100 * r['rrmse_mean']:.3f}% | {100 * r['melr']:.3f} | "
            f"{100 * r['melr_weighted']:.3f} | {r['sd']:.4g} | {1e4 * r['crps']:.3f} | "
            f"{1e4 * r['crps_fair']:.3f} | {r['mean_std']:.4f} | {mis} | {per} | {r['draws']} | "
            f"{r['sampling_seconds']} |"
        )
    return "\n".join(lines) + "\n"
