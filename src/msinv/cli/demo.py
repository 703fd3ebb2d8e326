"""``msinv demo``: the main job on an embedded default.

1. Simulates wideband data for the built-in Shepp--Logan phantom at the paper geometry, writes a
   figure of eta and |Lambda| per frequency and prints a one-line summary.
2. With the ``learn`` extra installed, reconstructs the built-in 32x32 squares example with
   uncertainty from the shipped Back-Projection Diffusion checkpoint (EquiNet-CNN), writes the
   figure and the numbers (RRMSE of the posterior mean, mean posterior standard deviation, data
   misfit) and prints a one-line summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from msinv.cli.errors import friendly
from msinv.core.errors import UserInputError


@friendly
def demo(
    out: Path = typer.Option(Path("out/demo"), help="Folder for the figure and summary."),
    n: int = typer.Option(80, min=16, max=320, help="Grid nodes per axis (paper: 80)."),
    freqs: list[float] = typer.Option(
        [2.5, 5.0, 10.0], help="Frequencies f (omega = 2 pi f), e.g. --freqs 2.5 5 10."
    ),
    learned: bool = typer.Option(
        True, help="Also reconstruct the built-in example with the shipped diffusion model."
    ),
    draws: int = typer.Option(8, min=1, max=256, help="Posterior draws of the reconstruction."),
) -> None:
    """Run the main job: simulate the built-in Shepp-Logan phantom, then reconstruct the built-in
    squares example with uncertainty by Back-Projection Diffusion.

    Writes `OUT/scatter.png` and `OUT/summary.json`, and with the learn extra
    `OUT/learned/` (figure, posterior, summary). Run time: three frequencies at n = 80 (about
    1.7 CPU s each), then 8 posterior draws at n = 32 (about 0.6 s each; docs/benchmarks.md).

    **Examples**

    ```
    msinv demo
    msinv demo --out out/demo --n 64 --freqs 2.5 5 --no-learned
    ```
    """
    import numpy as np

    from msinv.core.outputs import check_output_dir, write_text
    from msinv.scattering import Geometry, simulate
    from msinv.scattering.geometry import check_resolution
    from msinv.scattering.phantoms import shepp_logan_reference
    from msinv.scattering.plotting import plot_eta_and_data

    if not freqs or any(not (0 < f < float("inf")) for f in freqs):
        raise UserInputError(f"--freqs {freqs}: expected one or more finite frequencies > 0")
    check_output_dir(out, "--out")
    geometry = Geometry.paper(n)
    check_resolution(geometry, freqs, 1.0)  # the phantom's peak contrast is 1
    out.mkdir(parents=True, exist_ok=True)
    eta = shepp_logan_reference(n)
    t0 = time.perf_counter()
    data = simulate(eta, geometry, freqs)
    seconds = time.perf_counter() - t0
    figure = plot_eta_and_data(eta, data, freqs, out / "scatter.png")
    summary = {
        "phantom": "shepp-logan",
        "n": n,
        "freqs": list(freqs),
        "n_sources": int(geometry.source_angles.size),
        "n_receivers": int(geometry.receiver_angles.size),
        "max_abs_data": [float(np.abs(d).max()) for d in data],
        "simulate_seconds": round(seconds, 2),
        "figure": str(figure),
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    typer.echo(
        f"simulated {n}x{n} Shepp-Logan at f={list(freqs)}: data {data.shape} "
        f"max|Lambda|={max(summary['max_abs_data']):.3g} in {seconds:.1f}s -> {figure}"
    )
    if not learned:
        return
    try:
        from msinv.learned.reconstruct import demo as learned_demo
    except ImportError as exc:
        typer.echo(f"skipped the learned reconstruction: {exc}")
        return
    result = learned_demo(out / "learned", draws=draws)
    typer.echo(
        f"reconstructed the built-in 32x32 squares example with {draws} posterior draws: "
        f"RRMSE of the mean {100 * result['rrmse_posterior_mean']:.1f}%, mean posterior std "
        f"{result['mean_posterior_std']:.3g}, data misfit of the mean "
        f"{100 * result['data_misfit_posterior_mean']:.1f}% -> {out / 'learned'}"
    )
