"""Figure of the perturbation families: four draws of each on the paper grid (80 x 80).

Run ``python examples/plot_families.py [--out OUT.png]`` (default ``out/examples/families.png``;
``--update-docs`` rewrites the committed ``docs/figures/families.png``).
Sample ``i`` of a family is the dataset's sample ``i`` for seed 0
(:func:`msinv.scattering.dataset.sample_eta`), so the figure shows what
``msinv scatter generate --seed 0`` stores first.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from msinv.scattering.dataset import sample_eta
from msinv.scattering.phantoms import FAMILIES

N, PER_FAMILY, SEED = 80, 4, 0


def main(out: Path) -> Path:
    """Draw the grid of examples and save it to ``out``."""
    fig, axes = plt.subplots(len(FAMILIES), PER_FAMILY, figsize=(2.2 * PER_FAMILY, 2.2 * 4))
    for row, name in enumerate(FAMILIES):
        for col in range(PER_FAMILY):
            eta = sample_eta(name, SEED, col, N)
            ax = axes[row, col]
            im = ax.imshow(eta, origin="lower", extent=(-0.5, 0.5, -0.5, 0.5), cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} #{col}  max {eta.max():.2f}", fontsize=8)
        fig.colorbar(im, ax=axes[row, -1], fraction=0.046, pad=0.04)
    fig.suptitle(f"perturbation families, eta[iy, ix] on {N}x{N} nodes (y up), seed {SEED}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    from _output import figure_parser, figure_target

    args = figure_parser(__doc__, "families.png").parse_args()
    print(main(figure_target(args, "families.png")))
