"""``msinv learn ...``: train, sample, evaluate and reconstruct with Back-Projection Diffusion.

Each command prints one line per result and exits with code 2 and a one-line message on bad
input (a missing file, a wrong field in a config, an index out of range).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import typer

from msinv.cli.errors import OneLineGroup, friendly
from msinv.core.errors import UserInputError

app = typer.Typer(
    cls=OneLineGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_THREADS_HELP = "Torch CPU threads (0: torch's default, one per core)."
_ALLOW_HELP = "Allow pairs the checkpoint was trained on (refused by default)."
_CHECK_SCHEME_HELP = (
    "Scheme of the re-simulation: a name (wide2-wide8) or a wide order (2-8); default the "
    "data store's own, another one avoids the inverse crime."
)
_NOISE_HELP = (
    "Stated noise level of the likelihood weights: Gaussian noise of LEVEL x the data's "
    "standard deviation per frequency."
)


def _set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise UserInputError(f"{what} {item!r}: expected LABEL=PATH")
        out[label] = path
    return out


@app.command("train")
@friendly
def train_cmd(
    config: Path = typer.Argument(..., help="TOML training config (see configs/learned-*.toml)."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Ignore an existing checkpoint and start over."
    ),
    stop_after: int = typer.Option(
        None, min=1, help="Checkpoint and stop at this step (resume later)."
    ),
) -> None:
    """Train a model from a TOML config; resumes the same run from `OUT/checkpoint.pt`.

    OUT is the config's `run.out`. Every config field is checked (name, type, range) before
    any work, and a checkpoint written with another configuration is refused (--fresh starts
    over). Ctrl-C or SIGTERM finishes the current step, writes the checkpoint and stops;
    the same command resumes bit for bit. The log `OUT/log.jsonl` gets one line per
    `run.log_every` steps. For K GPUs: `torchrun --nproc_per_node K -m msinv.learned.train
    CONFIG`. Run time: about 0.2 s per step (reduced EquiNet-CNN, n = 32, batch 16, 2 CPU
    cores: 5,000 steps in 1,020 s; docs/benchmarks.md).

    **Examples**

    ```
    msinv learn train configs/learned-reduced-equinet-cnn.toml
    msinv learn train my.toml --stop-after 1000
    msinv learn train my.toml --fresh
    ```
    """
    from msinv.learned.train import train

    path = train(config, resume=not fresh, stop_after=stop_after)
    typer.echo(f"checkpoint: {path}")


@app.command("sample")
@friendly
def sample_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `msinv learn train`."),
    data: Path = typer.Argument(..., help="Dataset store (zarr) holding the data to invert."),
    draws: int = typer.Option(
        10, "--draws", "-k", min=1, max=10_000, help="Posterior samples per datum."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output .npz (samples, mean, std, config)."),
    start: int = typer.Option(0, min=0, help="First datum."),
    count: int = typer.Option(None, min=1, help="Number of data (default: all from --start)."),
    levels: int = typer.Option(256, min=2, max=4096, help="Noise levels of the reverse SDE."),
    seed: int = typer.Option(0, help="Sampler seed (datum j uses seed + j)."),
    check: bool = typer.Option(
        False,
        "--check/--no-check",
        "--misfit/--no-misfit",
        help="Re-simulate every draw at every frequency: per-draw, per-frequency misfits, "
        "likelihood weights and ESS in the .npz, misfit summary STEM-check.json and figure "
        "STEM-misfits.png (STEM: OUT without .npz), OOD flags when the checkpoint holds a "
        "calibrated alarm.",
    ),
    check_scheme: str = typer.Option(None, help=_CHECK_SCHEME_HELP),
    noise_level: float = typer.Option(0.05, help=_NOISE_HELP),
    workers: int = typer.Option(1, min=1, help="Processes for the re-simulation."),
    device: str = typer.Option("cpu", help="Torch device (cpu, cuda)."),
    threads: int = typer.Option(0, min=0, help=_THREADS_HELP),
    allow_training_data: bool = typer.Option(False, help=_ALLOW_HELP),
) -> None:
    """Draw posterior samples for data in a store; writes samples, mean, std and the config.

    OUT is an .npz archive (the suffix .npz is added when missing) holding `samples`
    (count, draws, n, n), `mean`, `std`, `index`, the training `config` and `provenance`
    (with --check: `data_misfit` (count, draws), `data_misfit_freq` (count, draws, n_freq),
    `log_likelihood`, `weights`, `ess`, and `ood_flag`/`ood_score` when the checkpoint holds a
    calibrated alarm). The output, the device, the checkpoint and the fit of
    the data to the model are checked before sampling; the archive is written atomically.
    Run time: about 0.6 s per draw (reduced EquiNet-CNN, n = 32, 256 levels, 2 CPU cores;
    docs/benchmarks.md).

    **Examples**

    ```
    msinv learn sample runs/equinet-cnn/checkpoint.pt data/test.zarr --count 10 -k 20 --out post.npz
    msinv learn sample ckpt.pt data/test.zarr --misfit --device cuda --out post.npz
    ```
    """
    _set_threads(threads)
    import numpy as np

    from msinv.core.outputs import atomic_path, check_output_file
    from msinv.core.provenance import provenance
    from msinv.learned.data import TRAINED_ON, check_held_out, load_pairs, store_slice
    from msinv.learned.loading import check_fits, load
    from msinv.learned.sampling import posterior

    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    check_output_file(out, "--out")
    config = _check_config(check_scheme, noise_level, workers) if check else None
    loaded = load(checkpoint, device=device)
    if not allow_training_data:
        check_held_out(loaded.train_data, store_slice(data, start, count), "sample")
    pairs = load_pairs(data, start, count, loaded.freqs, TRAINED_ON)
    check_fits(loaded, pairs.data, pairs.freqs, str(data))
    with _Bar(pairs.data.shape[0] * (1 if loaded.kind == "deterministic" else draws)) as bar:
        samples = posterior(
            loaded, pairs.data, draws, seed=seed, n_levels=levels, callback=bar.draws(draws)
        )
    extra = {}
    if check:
        from msinv.core.outputs import write_text
        from msinv.learned.figures import plot_misfits
        from msinv.learned.physics import check_draws

        with _echo_warnings():
            result = check_draws(
                samples, pairs.data, pairs.spec or pairs.geometry, pairs.freqs, config
            )
        extra = result.arrays()
        summary = result.summary()
        if loaded.alarm is not None:
            from msinv.learned.alarm import score

            extra["ood_flag"] = loaded.alarm.flags(result.misfit)
            extra["ood_score"] = score(result.misfit)
            summary["ood"] = {
                "flagged": int(extra["ood_flag"].sum()),
                "of": len(extra["ood_flag"]),
                "threshold": loaded.alarm.threshold,
            }
        stem = out.with_suffix("")
        threshold = loaded.alarm.threshold if loaded.alarm is not None else None
        with atomic_path(Path(f"{stem}-misfits.png")) as tmp:
            plot_misfits(result, tmp, threshold=threshold)
        write_text(Path(f"{stem}-check.json"), json.dumps(summary, indent=2))
    with atomic_path(out) as tmp:
        np.savez_compressed(
            tmp,
            samples=samples,
            mean=samples.mean(axis=1),
            std=samples.std(axis=1),
            index=np.arange(start, start + samples.shape[0]),
            config=loaded.config.to_toml(),
            provenance=json.dumps(
                provenance(
                    {
                        "checkpoint": str(checkpoint),
                        "data": str(data),
                        "draws": draws,
                        "levels": levels,
                        "seed": seed,
                        "check": config.to_dict() if check else None,
                    }
                )
            ),
            **extra,
        )
    typer.echo(f"{samples.shape[0]} data x {samples.shape[1]} draws -> {out}")
    if check:
        a = summary["all"]
        typer.echo(
            f"data misfit of the draws: median {100 * a['median']:.2f}%, "
            f"range {100 * a['min']:.2f}-{100 * a['max']:.2f}%; mean ESS "
            f"{summary['ess']['mean']:.2f} of {draws} (noise level {noise_level:g})"
            + (
                f"; OOD flags {summary['ood']['flagged']}/{summary['ood']['of']}"
                if "ood" in summary
                else ""
            )
        )


@app.command("calibrate")
@friendly
def calibrate_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint to hold the alarm (rewritten)."),
    data: Path = typer.Argument(..., help="Held-out store of the training family."),
    start: int = typer.Option(0, min=0, help="First calibration datum."),
    count: int = typer.Option(None, min=1, help="Number of data (default: all from --start)."),
    draws: int = typer.Option(8, "--draws", "-k", min=1, help="Posterior samples per datum."),
    levels: int = typer.Option(256, min=2, help="Noise levels of the reverse SDE."),
    quantile: float = typer.Option(0.99, min=0.5, max=0.9999, help="Quantile of the scores."),
    seed: int = typer.Option(0, help="Sampler seed."),
    check_scheme: str = typer.Option(None, help=_CHECK_SCHEME_HELP),
    workers: int = typer.Option(1, min=1, help="Processes for the re-simulation."),
    device: str = typer.Option("cpu", help="Torch device."),
    threads: int = typer.Option(0, min=0, help=_THREADS_HELP),
) -> None:
    """Calibrate the out-of-distribution alarm on held-out in-family data; store it in the
    checkpoint (threshold = QUANTILE of the median misfit of the draws).

    Each calibration datum is scored by the median over its draws of the relative data misfit
    (every draw re-simulated with the store's forward model); the QUANTILE of the scores is
    written into CHECKPOINT (atomically) with the settings it holds for. `msinv learn sample
    --check` and `msinv learn reconstruct` then flag data whose score exceeds it. Use data the
    model was not trained on, and not the data you will report false alarms on.
    Every calibration datum is sampled (--draws) and its draws re-simulated, so the run time
    is that of `msinv learn sample --misfit` on the same data.

    **Examples**

    ```
    msinv learn calibrate runs/ecnn/checkpoint.pt data/squares-val.zarr --count 50 -k 8
    msinv learn calibrate ckpt.pt data/val.zarr --quantile 0.95 --workers 2
    ```
    """
    _set_threads(threads)
    from msinv.learned.alarm import calibrate

    alarm = calibrate(
        checkpoint,
        data,
        start=start,
        count=count,
        draws=draws,
        n_levels=levels,
        quantile=quantile,
        seed=seed,
        check=_check_config(check_scheme, 0.05, workers),
        device=device,
    )
    typer.echo(
        f"OOD alarm: threshold {100 * alarm.threshold:.3f}% (quantile {quantile:g} of "
        f"{alarm.count} held-out data, scores {100 * alarm.scores['min']:.3f}-"
        f"{100 * alarm.scores['max']:.3f}%) stored in {checkpoint}"
    )


class _Bar:
    """A tqdm bar of posterior draws (shown only on a terminal), fed by ``posterior``'s
    ``callback(datum, draws_done)``."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="draw", disable=None, dynamic_ncols=True)

    def draws(self, per_datum: int):
        def callback(datum: int, done: int) -> None:
            self.bar.update(datum * per_datum + done - self.bar.n)

        return callback

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


@app.command("evaluate")
@friendly
def evaluate_cmd(
    model: list[str] = typer.Option(..., "--model", "-m", help="LABEL=CHECKPOINT (repeat)."),
    data: list[str] = typer.Option(..., "--data", "-d", help="FAMILY=TEST_STORE (repeat)."),
    out: Path = typer.Option(
        Path("out/evaluate/table"), "--out", "-o", help="Prefix of .md/.csv/.json/.png."
    ),
    draws: int = typer.Option(10, "--draws", "-k", min=1, help="Posterior samples per datum."),
    start: int = typer.Option(0, min=0, help="First test pair of every --data store."),
    count: int = typer.Option(None, min=1, help="Test pairs from --start (default: all)."),
    noise: float = typer.Option(
        0.0, min=0.0, help="Test-time noise, fraction of each frequency's data std (0.1 = 10%)."
    ),
    reference: list[str] = typer.Option(
        [],
        "--reference",
        "-r",
        help="FAMILY=TRAIN_STORE[:START:COUNT] for the paper's reference SD (training set "
        "against test set; default: the first model's training slice).",
    ),
    levels: int = typer.Option(256, min=2, help="Noise levels of the reverse SDE."),
    misfit: str = typer.Option("mean", help="Re-simulate: mean | samples | none."),
    seed: int = typer.Option(0, help="Sampler seed."),
    device: str = typer.Option("cpu", help="Torch device."),
    threads: int = typer.Option(0, min=0, help=_THREADS_HELP),
) -> None:
    """Table 1 of the paper for any models and datasets (Markdown + CSV + JSON) and figures.

    Writes `OUT.md`, `OUT.csv`, `OUT.json` and one figure `OUT-MODEL-FAMILY.png` per pair
    (OUT is a prefix, default out/evaluate/table), with per-sample values in
    `OUT-MODEL-FAMILY.npz`. Refuses test pairs that a model was trained on (each checkpoint
    records its training stores and slices). Run time: about 0.6 s per draw and datum
    (reduced EquiNet-CNN, n = 32, 256 levels, 2 CPU cores; docs/benchmarks.md), plus one
    forward simulation per datum for the data misfit.

    **Examples**

    ```
    msinv learn evaluate --model ecnn=runs/ecnn/checkpoint.pt --data squares=data/test.zarr --count 100 -k 4
    msinv learn evaluate --model a=a.pt b=b.pt --data squares=sq.zarr triangles=tr.zarr --out out/t1
    ```
    """
    _set_threads(threads)
    from msinv.core.outputs import check_output_file
    from msinv.learned.checkpoint_file import check_device
    from msinv.learned.evaluation import evaluate

    check_device(device)
    for suffix in (".md", ".csv", ".json"):
        check_output_file(Path(f"{out}{suffix}"), "--out")

    result = evaluate(
        _pairs(model, "--model"),
        _pairs(data, "--data"),
        draws=draws,
        start=start,
        count=count,
        noise=noise,
        references={k: _store_range(v) for k, v in _pairs(reference, "--reference").items()}
        or None,
        n_levels=levels,
        misfit=misfit,
        seed=seed,
        device=device,
        out=out,
        progress=True,
    )
    typer.echo(result["markdown"])
    typer.echo(f"tables: {out}.md {out}.csv {out}.json")


@app.command("reconstruct")
@friendly
def reconstruct_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `msinv learn train`."),
    datum: str = typer.Argument(
        ..., help="STORE.zarr:INDEX, or an .npz with `data` (and optionally `eta`)."
    ),
    out: Path = typer.Option(
        Path("out/reconstruct"), "--out", "-o", help="Folder for figure and summary."
    ),
    draws: int = typer.Option(20, "--draws", "-k", min=1, help="Posterior samples."),
    levels: int = typer.Option(256, min=2, help="Noise levels of the reverse SDE."),
    seed: int = typer.Option(0, help="Sampler seed."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Store every draw's per-frequency misfits, weights and ESS; misfits.png figure.",
    ),
    check_scheme: str = typer.Option(None, help=_CHECK_SCHEME_HELP),
    noise_level: float = typer.Option(0.05, help=_NOISE_HELP),
    polish: str = typer.Option(
        None, help="FWI polish from the posterior mean (and --polish-draws draws): fwi[:ITER]."
    ),
    polish_draws: int = typer.Option(0, min=0, help="Draws polished besides the mean."),
    schedule: str = typer.Option(
        None, help="Polish stages, e.g. '1;2;4' (default one per frequency) or '4' (top only)."
    ),
    reg: str = typer.Option(None, help="Polish regulariser: tv:W, gradient:W, tikhonov:W."),
    scheme: str = typer.Option(
        None,
        "--scheme",
        "--order",
        help="Scheme of the polish's FWI: a name or a wide order (2-8); default that of "
        "`msinv scatter invert` (never the data's own).",
    ),
    lower: float = typer.Option(-0.9, help="Polish lower bound on eta."),
    upper: float = typer.Option(None, help="Polish upper bound on eta (default none)."),
    workers: int = typer.Option(1, min=1, help="Processes for re-simulation and polish."),
    device: str = typer.Option("cpu", help="Torch device."),
    threads: int = typer.Option(0, min=0, help=_THREADS_HELP),
    allow_training_data: bool = typer.Option(False, help=_ALLOW_HELP),
) -> None:
    """Reconstruct one datum with uncertainty: figure, posterior mean/std, data misfit, the OOD
    flag (when the checkpoint holds a calibrated alarm), and optionally an FWI polish.

    Writes `OUT/posterior.npz` (samples, mean, std; with --check every draw's per-frequency
    misfits, weights, ESS; with --polish the starts and polished models), `OUT/summary.json`
    (RRMSE when the truth is known, mean posterior std, data misfits and the OOD flag when the
    forward model is known, the polish's misfits before and after) and the figures
    `OUT/figure.png`, `OUT/misfits.png` (--check), `OUT/polish.png` (--polish). Run time:
    about 0.6 s per draw (reduced EquiNet-CNN, n = 32, 256 levels, 2 CPU cores;
    docs/benchmarks.md), plus the re-simulation and the FWI.

    **Examples**

    ```
    msinv learn reconstruct runs/ecnn/checkpoint.pt data/test.zarr:3 -k 20 --out out/rec3
    msinv learn reconstruct ckpt.pt data/test.zarr:3 -k 8 --check --polish fwi:10 --polish-draws 2
    msinv learn reconstruct ckpt.pt datum.npz --out out/mine
    ```
    """
    _set_threads(threads)
    from msinv.core.outputs import check_output_dir
    from msinv.learned.loading import check_fits, load
    from msinv.learned.reconstruct import ReconstructConfig, reconstruct, write

    check_output_dir(out, "--out")

    check_config = _check_config(check_scheme, noise_level, workers)
    polish_config = None
    if polish is not None:
        polish_config = _polish_config(
            polish, polish_draws, schedule, reg, scheme, (lower, upper), workers, draws
        )
    loaded = load(checkpoint, device=device)
    store, _, index = datum.rpartition(":")
    if not allow_training_data and index.isdigit() and Path(store).exists():
        from msinv.learned.data import check_held_out, store_slice

        check_held_out(loaded.train_data, store_slice(store, int(index), 1), "reconstruct")
    eta, data, geometry, freqs = _datum(datum, loaded.freqs)
    check_fits(loaded, data[None], freqs, datum)
    if polish_config is not None and geometry is None:
        raise UserInputError(f"{datum}: --polish needs the data's geometry and freqs")
    if polish_config is not None and polish_config.schedule is not None:
        missing = {f for g in polish_config.schedule for f in g} - {float(f) for f in freqs}
        if missing:
            raise UserInputError(f"--schedule: frequencies {sorted(missing)} are not in the data")
    config = ReconstructConfig(draws, levels, seed, check_config, polish_config)
    with _echo_warnings(), _Bar(1 if loaded.kind == "deterministic" else draws) as bar:
        rec = reconstruct(loaded, data, geometry, freqs, config, callback=bar.draws(draws))
    summary = write(
        rec, out, eta, detail=check, extra={"checkpoint": str(checkpoint), "datum": datum}
    )
    typer.echo(json.dumps({k: v for k, v in summary.items() if not isinstance(v, list | dict)}))
    if "ood" in summary and summary["ood"]["flagged"]:
        typer.echo(
            f"OOD ALARM: the draws cannot explain this datum (median misfit "
            f"{100 * summary['ood']['score']:.2f}% > threshold "
            f"{100 * summary['ood']['threshold']:.2f}%)"
        )
    if "polish" in summary:
        p = summary["polish"]
        typer.echo(
            "FWI polish (misfit before -> after): "
            + ", ".join(
                f"{lab} {100 * a:.2f}% -> {100 * b:.2f}%"
                for lab, a, b in zip(
                    p["starts"], p["data_misfit_before"], p["data_misfit_after"], strict=True
                )
            )
        )


def _check_config(scheme: str | None, noise_level: float, workers: int):
    """The physics-check settings: the data's own forward model unless ``scheme`` is given."""
    from msinv.learned.physics import CheckConfig, NoiseModel

    try:
        noise = NoiseModel(noise_level)
    except ValueError as exc:
        raise UserInputError(f"--noise-level: {exc}") from None
    return CheckConfig(noise=noise, scheme=_scheme(scheme, "--check-scheme"), workers=workers)


def _scheme(text: str | None, option: str) -> str | None:
    """A scheme name from ``wide6`` or ``6`` (None stays None)."""
    from msinv.scattering.schemes import scheme_name

    if text is None:
        return None
    try:
        return scheme_name(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise UserInputError(f"{option} {text}: {exc}") from None


@contextmanager
def _echo_warnings():
    """Show warnings of the library (e.g. a forward model overridden) as one line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)


def _polish_config(text, draws, schedule, reg, scheme, bounds, workers, sampled):
    from msinv.cli.scatter_invert import parse_schedule
    from msinv.core.regularisation import Regulariser
    from msinv.learned.polish import PolishConfig

    if draws > sampled:
        raise UserInputError(f"--polish-draws {draws}: only {sampled} draws are sampled")
    if reg is not None:
        try:
            Regulariser.parse(reg)
        except ValueError as exc:
            raise UserInputError(f"--reg {reg}: {exc}") from None
    try:
        return PolishConfig.parse(
            text,
            draws=draws,
            schedule=parse_schedule(schedule),
            reg=reg,
            bounds=bounds,
            scheme=_scheme(scheme, "--scheme"),
            workers=workers,
        )
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def _store_range(spec: str) -> tuple[str, int, int | None]:
    """(store, start, count) of STORE or STORE:START:COUNT."""
    parts = spec.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return spec, 0, None


def _datum(spec: str, freqs: list[float] | None = None):
    """(eta or None, data, forward model or None, freqs or None) of STORE:INDEX or an .npz
    (the store's spec, and only the frequencies ``freqs`` of a store; an .npz's geometry)."""
    import numpy as np

    store, sep, index = spec.rpartition(":")
    if sep and index.isdigit() and Path(store).exists():
        from msinv.learned.data import TRAINED_ON, load_pairs

        p = load_pairs(store, int(index), 1, freqs, TRAINED_ON)
        return p.eta[0], p.data[0], p.spec or p.geometry, p.freqs
    from msinv.core.inputs import read_npz, require_finite

    path = Path(spec)
    if path.suffix != ".npz" or not path.is_file():
        raise UserInputError(f"{spec}: expected STORE.zarr:INDEX or an existing .npz file")
    f = read_npz(path, "DATUM")
    if "data" not in f or f["data"].ndim != 3 or not np.iscomplexobj(f["data"]):
        raise UserInputError(
            f"{spec}: expected a complex `data` array (n_freq, n_rec, n_src) in the .npz"
        )
    require_finite(f["data"], f"{spec}: data")
    geometry = freqs = None
    if "geometry" in f and "freqs" in f:
        from msinv.scattering import Geometry

        try:
            geometry = Geometry.from_dict(json.loads(str(f["geometry"])))
        except (ValueError, TypeError, AttributeError) as exc:
            raise UserInputError(f"{spec}: `geometry` is not a Geometry JSON ({exc})") from None
        freqs = f["freqs"]
    return f.get("eta"), f["data"], geometry, freqs


@app.command("paper-row")
@friendly
def paper_row_cmd(
    out: Path = typer.Option(..., help="Output folder (stores, run, samples, row.json/row.md)."),
    family: str = typer.Option("squares", help="squares, triangles or shepp_logan."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    budget_minutes: float = typer.Option(
        None, min=0.1, help="Wall-clock budget of the whole run; sizes and steps are cut to fit."
    ),
    n: int = typer.Option(80, min=8, help="Grid size (paper: 80)."),
    train_count: int = typer.Option(21000, min=1, help="Training pairs (paper: 21,000)."),
    test_count: int = typer.Option(500, min=1, help="Test pairs (paper: 500)."),
    steps: int = typer.Option(131250, min=1, help="Training steps (paper: 131,250)."),
    draws: int = typer.Option(10, min=1, help="Posterior draws per test datum."),
    levels: int = typer.Option(256, min=2, help="Sampler noise levels (paper: 256)."),
    solver: str = typer.Option("auto", help="auto (torch on cuda, fd on cpu), torch or fd."),
    workers: int = typer.Option(1, min=1, help="CPU workers of the fd solver."),
    precision: str = typer.Option("auto", help="auto (bf16 on cuda), fp32, tf32 or bf16."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks."),
    stages: str = typer.Option("data,train,evaluate,report", help="Comma-separated stages."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Measure rates with tiny probes, print the plan, stop."
    ),
    seed: int = typer.Option(0, help="Seed of the training data and run (test: seed + 1000)."),
    target_blur: float = typer.Option(
        0.5, min=0.0, help="Pixels of the stored targets' blur (published pipeline: 0.5; 0: none)."
    ),
) -> None:
    """A row of the paper's Table 1 in one command: data, training, sampling, metrics.

    Generates the training and test pairs at the paper's geometry, trains EquiNet-CNN with the
    paper's recipe (131,250 steps, or what --budget-minutes allows: stated in the report),
    samples the test set and writes row.json / row.md beside the paper's numbers with every
    timing. Each stage resumes what a killed run left. On one H100/H200-class GPU the whole
    paper recipe is meant to fit in minutes; on a CPU use toy sizes.

    **Examples**

    ```
    msinv learn paper-row --family squares --device cuda --budget-minutes 12 --out out/row
    msinv learn paper-row --out out/toy --n 16 --train-count 64 --test-count 4 --steps 20 --levels 8 --dry-run
    ```
    """
    from msinv.core.outputs import check_output_dir
    from msinv.learned import paper_row

    check_output_dir(out, "--out")
    try:
        cfg = paper_row.PaperRowConfig(
            family=family,
            out=str(out),
            device=device,
            n=n,
            train_count=train_count,
            test_count=test_count,
            steps=steps,
            draws=draws,
            levels=levels,
            budget_minutes=budget_minutes,
            solver=solver,
            workers=workers,
            precision=precision,
            compile=compile_,
            seed=seed,
            target_blur=target_blur,
        )
    except ValueError as exc:
        raise UserInputError(f"paper-row: {exc}") from None
    if dry_run:
        paper_row.plan(cfg, log=typer.echo)
        return
    state = paper_row.run(cfg, [s.strip() for s in stages.split(",") if s.strip()], log=typer.echo)
    if "report" in state:
        typer.echo(f"row: {Path(out) / 'row.md'}")
