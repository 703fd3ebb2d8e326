"""``msinv scatter invert``: Born least squares or FWI on one datum or a slice of a dataset.

:func:`register` adds the command to the ``msinv scatter`` app (:mod:`msinv.cli.scatter`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from msinv.cli.errors import friendly
from msinv.core.errors import UserInputError

#: Figures are drawn for at most this many data of a run.
MAX_FIGURES = 8


class Method(StrEnum):
    """Inversion methods."""

    fwi = "fwi"
    born = "born"


def _floats(values: list[str], option: str) -> list[float]:
    out = []
    for item in (v for value in values for v in value.split(",") if v.strip()):
        try:
            f = float(item)
        except ValueError:
            raise UserInputError(f"{option} {item!r}: expected a number, e.g. 2.5 5 10") from None
        if not (0 < f < float("inf")):
            raise UserInputError(f"{option} {item!r}: expected a finite frequency > 0")
        out.append(f)
    return out


def parse_schedule(text: str | None) -> list[list[float]] | None:
    """``"2.5;5;10"`` (three stages) or ``"2.5,5;10"`` (two, the first with two frequencies)."""
    if text is None:
        return None
    stages = [_floats([s], "--schedule") for s in text.split(";")]
    if not stages or any(not s for s in stages):
        raise UserInputError(
            f"--schedule {text!r}: expected stages separated by ';', e.g. 2.5;5;10"
        )
    return stages


def parse_indices(values: list[str], count: int) -> list[int]:
    """``--index 3 --index 5:8`` -> [3, 5, 6, 7], each checked against ``count`` data."""
    out = []
    for item in (v for value in values for v in value.split(",") if v.strip()):
        try:
            if ":" in item:
                lo, hi = item.split(":")
                out.extend(range(int(lo or 0), int(hi) if hi else count))
            else:
                out.append(int(item))
        except ValueError:
            raise UserInputError(
                f"--index {item!r}: expected an integer or a range like 0:8"
            ) from None
    bad = [i for i in out if not 0 <= i < count]
    if bad:
        raise UserInputError(
            f"--index {bad}: expected indices in [0, {count}) (the store has {count} data)"
        )
    return out or [0]


def load_data(path: Path, index: list[str]):
    """Read DATA: an .npz, a ``msinv scatter simulate`` folder, or a dataset store (.zarr).

    Returns ``(spec, freqs, items)`` with ``spec`` the data's forward model
    (:class:`~msinv.scattering.spec.ForwardSpec`: a store's or a simulate run's record, else
    the geometry with the default reader) and ``items`` a list of ``(name, data, eta or None)``.
    """
    import numpy as np

    from msinv.core.inputs import read_npy, read_npz
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import upgrade_attrs
    from msinv.scattering.spec import ForwardSpec

    if not path.exists():
        raise UserInputError(f"{path}: no such file or folder")
    if path.is_dir() and (path / "data.npy").exists():
        run = path / "run.json"
        try:
            config = upgrade_attrs(json.loads(run.read_text())["config"])
            spec = ForwardSpec.from_dict(
                {k: v for k, v in config.items() if k in ForwardSpec.__dataclass_fields__}
            )
            freqs = [float(f) for f in config["freqs"]]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise UserInputError(
                f"{run}: expected the run.json of `msinv scatter simulate` ({exc})"
            ) from None
        eta = read_npy(path / "eta.npy") if (path / "eta.npy").exists() else None
        return spec, freqs, [(path.name, read_npy(path / "data.npy"), eta)]
    if path.is_dir():
        from msinv.scattering import open_dataset

        ds = open_dataset(path)
        idx = parse_indices(index, len(ds))
        missing = [i for i in idx if not ds.complete[i]]
        if missing:
            raise UserInputError(f"{path}: samples {missing} are not computed yet")
        items = [(f"{i}", np.asarray(ds.data[i]), np.asarray(ds.eta[i], dtype=float)) for i in idx]
        return ds.spec, [float(f) for f in ds.freqs], items
    z = read_npz(path, "DATA")
    missing = [k for k in ("data", "freqs") if k not in z]
    if missing:
        raise UserInputError(
            f"{path}: no array {' or '.join(map(repr, missing))}; expected an .npz with arrays "
            "'data' (n_freq, n_rec, n_src) and 'freqs'"
        )
    try:
        data, freqs = z["data"], [float(f) for f in np.atleast_1d(z["freqs"])]
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{path}: array 'freqs' is not a list of numbers ({exc})") from None
    if "geometry" in z:
        try:
            geometry = Geometry.from_dict(json.loads(str(z["geometry"])))
        except (ValueError, TypeError) as exc:
            raise UserInputError(
                f"{path}: field 'geometry' is not a Geometry JSON ({exc})"
            ) from None
    else:
        n = int(z["eta"].shape[0]) if "eta" in z else int(data.shape[-1])
        try:
            geometry = Geometry.paper(n)
        except ValueError as exc:
            raise UserInputError(
                f"{path}: no field 'geometry', and the paper geometry of n = {n} is invalid ({exc})"
            ) from None
    if data.ndim != 3 or data.shape != (len(freqs), geometry.n_receivers, geometry.n_sources):
        raise UserInputError(
            f"{path}: field 'data' has shape {data.shape}; expected (n_freq={len(freqs)}, "
            f"n_rec={geometry.n_receivers}, n_src={geometry.n_sources})"
        )
    eta = np.asarray(z["eta"], dtype=float) if "eta" in z else None
    return ForwardSpec(geometry), freqs, [(path.stem, data, eta)]


def _figure(name, eta, est, log, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if eta is not None else 2
    fig, ax = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    vmax = max(abs(est).max(), abs(eta).max() if eta is not None else 0)
    images = ([("truth", eta)] if eta is not None else []) + [("estimate", est)]
    for a, (title, img) in zip(ax, images, strict=False):
        im = a.imshow(img, origin="lower", cmap="viridis", vmin=min(0, img.min()), vmax=vmax)
        a.set_title(f"{name}: {title}")
        fig.colorbar(im, ax=a, shrink=0.8)
    ax[-1].semilogy([r["misfit"] for r in log], label="objective")
    if eta is not None:
        ax[-1].semilogy([r["rrmse"] for r in log], label="RRMSE")
    ax[-1].set(xlabel="record", title="convergence")
    ax[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


@friendly
def invert(
    data_path: Path = typer.Argument(
        ...,
        metavar="DATA",
        help="An .npz (data, freqs, optional eta, geometry JSON), a "
        "`msinv scatter simulate` folder, or a dataset store (*.zarr).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder for summary.json, log.jsonl, eta_hat.npy, figures."
    ),
    method: Method = typer.Option(
        Method.fwi,
        help="fwi: full-waveform inversion with frequency "
        "continuation; born: linearised least squares (LSQR).",
    ),
    freqs: list[str] = typer.Option(
        [], help="Frequencies to use (a subset of the data's), e.g. --freqs 2.5 5; default all."
    ),
    schedule: str | None = typer.Option(
        None,
        help="FWI stages, ';' between stages, ',' within: "
        "2.5;5;10 (default one stage per frequency, low to high).",
    ),
    iterations: int = typer.Option(
        100, min=1, max=100000, help="FWI: L-BFGS-B iterations per stage; Born: LSQR limit."
    ),
    reg: str | None = typer.Option(
        None,
        help="Regularisation KIND:WEIGHT, KIND in tikhonov, gradient, "
        "tv, e.g. tv:1e-3; Born also takes KIND:auto (L-curve).",
    ),
    scheme: str = typer.Option(
        "compact4",
        "--scheme",
        "--order",
        help="Scheme of the inversion: compact4, compact-opt, compact6, wide2-wide8 (or a wide order "
        "2, 4, 6, 8); compact4 differs from the data's default compact-opt (inverse-crime "
        "guard).",
    ),
    receivers: str | None = typer.Option(
        None,
        "--receivers",
        help="Receiver reader (representation, cubic, bilinear); default the data's "
        "(a store records it; an imported published store: bilinear).",
    ),
    lower: float | None = typer.Option(-0.9, help="FWI lower bound on eta (keeps 1 + eta > 0)."),
    upper: float | None = typer.Option(None, help="FWI upper bound on eta (default none)."),
    index: list[str] = typer.Option(
        [], help="Samples of a dataset store: --index 3, --index 0:8 or --index 1 4 9 (default 0)."
    ),
    progress: bool = typer.Option(True, help="Progress bar with the current stage and misfit."),
) -> None:
    """Reconstruct eta from scattering data by Born least squares or FWI.

    Writes `OUT/summary.json` (per datum: RRMSE when the truth is known, final relative data
    misfit, iterations, seconds; configuration and provenance), OUT/log.jsonl (one record per
    iteration: datum, stage, iteration, misfit, gradient norm, RRMSE), OUT/eta_hat.npy
    ((k, n, n) estimates), OUT/metrics.md and one figure per datum (at most 8). The output
    folder and every option are checked before any work; results are written atomically.
    Run time at n = 80 and three frequencies, one core: Born (L-curve) about 5 minutes, FWI
    with 25 iterations per stage about 10 minutes per datum (docs/benchmarks.md).

    **Examples**

    ```
    msinv scatter invert out/sim --method born --reg tikhonov:auto --out out/born
    msinv scatter invert data/test.zarr --index 0:8 --freqs 2.5 5 10 --out out/fwi
    msinv scatter invert data.npz --schedule "2.5;5;10" --reg tv:1e-3 --upper 2 --out out/tv
    ```
    """
    import time

    import numpy as np
    from tqdm import tqdm

    from msinv.core.inputs import require_finite
    from msinv.core.outputs import atomic_path, check_output_dir, write_text
    from msinv.core.provenance import provenance
    from msinv.core.regularisation import Regulariser
    from msinv.metrics import melr, rrmse, sinkhorn_divergence
    from msinv.scattering import invert as run_invert
    from msinv.scattering.fwi import Misfit
    from msinv.scattering.inversion import check_bounds
    from msinv.scattering.schemes import scheme_name

    check_output_dir(out, "--out")
    try:
        scheme = scheme_name(int(scheme) if scheme.isdigit() else scheme)
    except ValueError as exc:
        raise UserInputError(f"--scheme: {exc}") from None
    try:
        check_bounds((lower, upper))
    except UserInputError as exc:
        raise UserInputError(f"--lower {lower} --upper {upper}: {exc}") from None
    spec, data_freqs, items = load_data(data_path, index)
    for name, data, _ in items:
        require_finite(np.asarray(data), f"{data_path}: data of {name}")
    if receivers is not None and receivers != spec.receiver_interpolation:
        typer.echo(
            f"note: --receivers {receivers} overrides the data's receiver reader "
            f"({spec.receiver_interpolation})",
            err=True,
        )
    try:
        spec = spec.replace(receiver_interpolation=receivers)
    except ValueError as exc:
        raise UserInputError(f"--receivers: {exc}") from None
    use = _floats(freqs, "--freqs") or data_freqs
    missing = [f for f in use if not any(np.isclose(f, g) for g in data_freqs)]
    if missing:
        raise UserInputError(f"--freqs {missing}: not among the data's frequencies {data_freqs}")
    rows = [int(np.argmin(np.abs(np.array(data_freqs) - f))) for f in use]
    stages = parse_schedule(schedule)
    if stages is not None:
        extra = [f for s in stages for f in s if not any(np.isclose(f, g) for g in use)]
        if extra:
            raise UserInputError(f"--schedule: frequencies {extra} are not among {use}")
    if reg is not None and not reg.endswith(":auto"):
        Regulariser.parse(reg)  # fail before any work on a malformed --reg
    elif reg is not None and method != Method.born:
        raise UserInputError(f"--reg {reg}: an automatic weight is only offered for --method born")
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "data": str(data_path),
        "method": method.value,
        "freqs": use,
        "schedule": stages,
        "iterations": iterations,
        "reg": reg,
        "scheme": scheme,
        "bounds": [lower, upper],
        "index": [name for name, _, _ in items],
        "data_spec": spec.to_dict(),
    }
    results, estimates = [], []
    bar = tqdm(items, disable=None if progress else True, desc=f"{method.value}", unit="datum")
    with (out / "log.jsonl").open("w") as log_file:
        for k, (name, data, eta) in enumerate(bar):
            d = np.asarray(data)[rows]
            log = []

            def callback(rec, name=name, eta=eta, log=log):
                entry = {
                    "datum": name,
                    "stage": rec.label,
                    "iteration": rec.iteration,
                    "misfit": rec.misfit,
                    "grad_norm": rec.grad_norm,
                }
                if eta is not None:
                    entry["rrmse"] = float(np.linalg.norm(rec.model - eta) / np.linalg.norm(eta))
                log.append(entry)
                log_file.write(json.dumps(entry) + "\n")
                bar.set_postfix_str(
                    f"{name} stage {rec.label} it {rec.iteration} J={rec.misfit:.3g}"
                )

            t0 = time.perf_counter()
            est = run_invert(
                d,
                spec,
                use,
                method=method.value,
                schedule=stages,
                iterations=iterations,
                reg=reg,
                bounds=(lower, upper),
                scheme=scheme,
                callback=callback,
            )
            seconds = time.perf_counter() - t0
            misfit = Misfit(spec, d, use, scheme=scheme).relative_misfit(est)
            row = {
                "datum": name,
                "data_misfit": misfit,
                "seconds": seconds,
                "iterations": sum(1 for r in log if r["iteration"] > 0)
                if method == Method.fwi
                else iterations,
            }
            if eta is not None:
                row["rrmse"] = float(rrmse(est, eta))
                row["melr"] = float(melr(est, eta))
            results.append(row)
            estimates.append(est)
            if k < MAX_FIGURES:
                _figure(name, eta, est, log, out / f"datum_{name}.png")
    with atomic_path(out / "eta_hat.npy") as tmp:
        np.save(tmp, np.stack(estimates))
    mean = _means(results)
    if all(eta is not None for _, _, eta in items):
        truths = np.stack([eta for _, _, eta in items])
        mean["sinkhorn_divergence"] = float(sinkhorn_divergence(np.stack(estimates), truths))
    summary = {"data": results, "mean": mean, "provenance": provenance(config)}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    write_text(out / "metrics.md", _table(method.value, summary["mean"], len(results)))
    typer.echo(
        f"{method.value}: {len(results)} datum(s) -> {out}; mean "
        + ", ".join(f"{k} {v:.4g}" for k, v in summary["mean"].items())
    )


def _means(rows: list[dict]) -> dict[str, float]:
    import numpy as np

    keys = [k for k in ("rrmse", "melr", "data_misfit", "seconds") if all(k in r for r in rows)]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def _table(method: str, mean: dict[str, float], count: int) -> str:
    """One Markdown row with the columns of the learned engine's table (RRMSE, MELR, SD, misfit)."""
    head = (
        "| method | data | RRMSE | MELR | SD | data misfit | seconds / datum |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    cells = [
        f"{mean[k]:.4g}" if k in mean else "n/a" for k in ("rrmse", "melr", "sinkhorn_divergence")
    ]
    return head + (
        f"| {method} | {count} | {' | '.join(cells)} | {mean['data_misfit']:.3g} | "
        f"{mean['seconds']:.1f} |\n"
    )


def register(app: typer.Typer) -> None:
    """Add ``invert`` to the ``msinv scatter`` app."""
    app.command("invert")(invert)
