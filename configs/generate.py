"""Write the full-scale learned configs of the paper's experiments (``configs/learned-full-*.toml``).

Run ``python configs/generate.py`` after changing a recipe here; ``tests/learned/test_configs.py``
checks that the files on disk are what this script writes. The reduced configs
(``learned-reduced-*.toml``) are written by hand. ``configs/README.md`` maps every table and
figure of the paper to these files and to the commands that make their data and evaluate them.
"""

from __future__ import annotations

import math
from pathlib import Path

from msinv.learned.models import MODELS

HERE = Path(__file__).resolve().parent
FAMILIES = {"squares": "squares", "triangles": "triangles", "shepp-logan": "shepp_logan"}
DIFFUSION = [name for name, (_, net) in MODELS.items() if net is not None]
DETERMINISTIC = [name for name, (_, net) in MODELS.items() if net is None]
TRAIN, TEST, BATCH = 21_000, 500, 16
FREQS = (2.5, 5.0, 10.0)


def data_commands(family: str, n: int = 80, freqs=FREQS) -> str:
    """The two `msinv scatter generate` lines of a family's training and test stores."""
    f = " ".join(f"{x:g}" for x in freqs)
    common = f"--family {FAMILIES.get(family, family)} --n {n} --freqs {f} --target-blur 0.5"
    return (
        f"# Data: msinv scatter generate {common} --count {TRAIN} --seed 0 "
        f"--out data/{family}{n}-train.zarr\n"
        f"#       msinv scatter generate {common} --count {TEST} --seed 1 "
        f"--out data/{family}{n}-test.zarr\n"
    )


def diffusion_recipe(lr: float, steps: int = 131_250) -> str:
    return (
        f"[optim]\nlr = {lr:g}\nlr_start = 1e-5\nlr_end = 1e-8\nwarmup = 0.05\n"
        f"betas = [0.9, 0.999]\n\n[run]\nsteps = {steps}\nbatch = {BATCH}\nema = 0.999\n"
    )


def deterministic_recipe(model: str) -> tuple[str, str]:
    """(comment, [optim] + [run] head) of the paper's §5.3 recipe for a deterministic model."""
    if model in ("equinet", "b-equinet"):
        steps = math.ceil(35 * TRAIN / BATCH)
        return (
            "# Recipe (paper §5.3): 35 epochs at batch 16, linear warm-up over 2,000 steps to\n"
            "# 5e-3, cosine to 1e-7; plain MSE.\n",
            f'[optim]\nschedule = "cosine"\nlr = 5e-3\nlr_start = 0.0\nlr_end = 1e-7\n'
            f"warmup_steps = 2000\nbetas = [0.9, 0.999]\n\n[run]\nsteps = {steps}\n"
            f"batch = {BATCH}\nema = 0.999\n",
        )
    steps = math.ceil(150 * TRAIN / BATCH)
    return (
        "# Recipe (paper §5.3): 150 epochs at batch 16, learning rate x 0.95 every 2,000 steps;\n"
        "# the peak rate is not stated there: 1e-3 (an assumption). Plain MSE.\n",
        f'[optim]\nschedule = "exponential"\nlr = 1e-3\nwarmup_steps = 0\ndecay_rate = 0.95\n'
        f"decay_steps = 2000\nbetas = [0.9, 0.999]\n\n[run]\nsteps = {steps}\n"
        f"batch = {BATCH}\nema = 0.999\n",
    )


def config(
    name: str,
    model: str,
    title: str,
    family: str,
    *,
    n: int = 80,
    freqs=FREQS,
    count: int = TRAIN,
    select: list[float] | None = None,
    steps: int = 131_250,
) -> str:
    lr = 5e-4 if family == "shepp-logan" else 1e-3
    head = f"# {title}\n" + data_commands(family, n, freqs)
    if model in DETERMINISTIC:
        comment, recipe = deterministic_recipe(model)
        head += comment
    else:
        head += (
            "# Recipe: Adam, warm-up cosine 1e-5 -> peak -> 1e-8 over the first 5 %, batch 16,\n"
            "# EMA 0.999 for sampling.\n"
        )
        recipe = diffusion_recipe(lr, steps)
    head += (
        f"# Train: msinv learn train configs/{name}.toml\n"
        f"# Evaluate: msinv learn evaluate -m {model}=out/runs/full/{name}/checkpoint.pt "
        f"-d {family}=data/{family}{n}-test.zarr --draws 10 --out out/evaluate/{name}\n"
    )
    freqs_line = (
        "" if select is None else f"freqs = [{', '.join(repr(float(x)) for x in select)}]\n"
    )
    return (
        f'{head}seed = 0\n\n[data]\ntrain = "../data/{family}{n}-train.zarr"\nstart = 0\n'
        f'count = {count}\n{freqs_line}\n[model]\nname = "{model}"\n\n{recipe}'
        f'checkpoint_every = 5000\nlog_every = 100\nout = "../out/runs/full/{name}"\n'
        f'device = "auto"\nprogress = true\n'
    )


def all_configs() -> dict[str, str]:
    """File stem -> text of every full-scale config."""
    out = {}
    for family in FAMILIES:
        for model in DIFFUSION + DETERMINISTIC:
            name = f"learned-full-{model}-{family}"
            out[name] = config(name, model, f"Table 1 row {model}, {family} (80x80).", family)
        name = f"learned-full-single-frequency-{family}"
        out[name] = config(
            name,
            "equinet-cnn",
            f"Single-frequency training (f = 10 only), equinet-cnn, {family}: the store's "
            "other frequencies are left out.",
            family,
            select=[10.0],
        )
    for k in (1000, 2000, 4000, 8000, 16000):
        name = f"learned-full-sample-complexity-{k // 1000}k-squares"
        out[name] = config(
            name,
            "equinet-cnn",
            f"Sample complexity: equinet-cnn on the first {k:,} squares pairs, 131,250 steps.",
            "squares",
            count=k,
        )
    name = "learned-full-mixed"
    text = config(
        name,
        "equinet-cnn",
        "Mixed training: equinet-cnn on 7,000 pairs of each of squares, triangles and "
        "Shepp-Logan (21,000 in all); evaluate it on each family's test store.",
        "squares",
        count=7000,
    )
    stores = ", ".join(f'"../data/{f}80-train.zarr"' for f in FAMILIES)
    text = text.replace('train = "../data/squares80-train.zarr"', f"train = [{stores}]")
    head = "".join(data_commands(f) for f in FAMILIES if f != "squares")
    out[name] = text.replace("# Recipe:", head + "# Recipe:", 1)
    for n in (60, 80, 120, 160):
        freqs = tuple(f * n / 80 for f in FREQS)
        name = f"learned-full-brain-{n}"
        out[name] = config(
            name,
            "equinet-cnn",
            f"MRI-like brains at n = {n}: frequencies scaled by n/80 (same points per "
            "wavelength), equinet-cnn.",
            "brain",
            n=n,
            freqs=freqs,
        )
    return out


def main() -> None:
    for stem, text in all_configs().items():
        (HERE / f"{stem}.toml").write_text(text)
    print(f"wrote {len(all_configs())} configs to {HERE}")


if __name__ == "__main__":
    main()
