"""The paper's experiments as configs: full configs are what configs/generate.py writes and
parse; every reduced config trains at tiny size; the evaluation-only experiments (test-time
noise, another stencil, the posterior misfit distribution) run on a tiny model."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msinv.learned.train import TrainConfig, train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
REDUCED = sorted(CONFIGS.glob("learned-reduced-*.toml"))
TINY_SCORE = {"cond_rounds": 1, "width": 12, "bottleneck": 6, "blocks": 1, "groups": [3, 3]}


def _generator():
    spec = importlib.util.spec_from_file_location("configs_generate", CONFIGS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_configs_are_what_the_generator_writes_and_parse():
    expected = _generator().all_configs()
    on_disk = {p.stem: p.read_text() for p in CONFIGS.glob("learned-full-*.toml")}
    assert on_disk == expected
    for stem in expected:
        cfg = TrainConfig.from_toml(CONFIGS / f"{stem}.toml")
        text = expected[stem]
        for store in map(lambda t: Path(t).name, cfg.data.stores):
            assert f"--seed 0 --out data/{store}" in text  # the training store's command
            test_store = store.replace("-train.zarr", "-test.zarr")
            assert f"--seed 1 --out data/{test_store}" in text  # test store: another seed
        assert "--target-blur 0.5" in text


def test_readme_names_every_reduced_config_and_experiment():
    readme = (CONFIGS / "README.md").read_text()
    for path in REDUCED:
        assert path.stem.removeprefix("learned-reduced-") in readme, path.name
    for experiment in (
        "Table 1",
        "Sample complexity",
        "Single-frequency",
        "Noise robustness",
        "stencil",
        "MRI-like brains",
        "Table 5",
        "Ablations",
    ):
        assert experiment in readme


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Tiny stores at n = 16 with the reduced frequencies: training (seed 0), test (seed 1),
    and the test images simulated with the 4th-order stencil."""
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    root = tmp_path_factory.mktemp("configs")
    made = {}
    for name, seed, count, scheme in [
        ("train", 0, 6, "wide8"),
        ("test", 1, 2, "wide8"),
        ("wide4", 1, 2, "wide4"),
    ]:
        made[name] = root / f"{name}.zarr"
        generate(
            made[name],
            family="squares",
            count=count,
            geometry=Geometry.paper(16),
            freqs=[1.0, 2.0, 4.0],
            seed=seed,
            scheme=scheme,
            progress=False,
        )
    return made


def _tiny(path: Path, store: list[Path], out: Path) -> TrainConfig:
    """A config at tiny size on the tiny store(s) (a mixed config gets two)."""
    cfg = TrainConfig.from_toml(path)
    model = cfg.model
    if cfg.model.score:
        model = dataclasses.replace(model, score={**TINY_SCORE})
    if cfg.model.head:
        model = dataclasses.replace(model, head={"rounds": 2, "growth": 4})
    run = dataclasses.replace(
        cfg.run,
        steps=2,
        batch=2,
        checkpoint_every=2,
        out=str(out),
        progress=False,
        threads=1,
        device="cpu",
    )
    train = [str(s) for s in store] if len(cfg.data.stores) > 1 else str(store[0])
    count = 2 if len(cfg.data.stores) > 1 else min(cfg.data.count or 6, 6)  # wide4 holds 2
    data = dataclasses.replace(cfg.data, train=train, count=count)
    return dataclasses.replace(cfg, data=data, model=model, run=run)


@pytest.mark.parametrize("path", REDUCED, ids=lambda p: p.stem)
def test_every_reduced_config_trains_at_tiny_size(path, stores, tmp_path):
    torch.set_num_threads(1)
    cfg = _tiny(path, [stores["train"], stores["wide4"]], tmp_path / "run")
    ckpt = torch.load(train(cfg), weights_only=True)
    assert ckpt["step"] == 2
    resolved = TrainConfig.from_dict(__import__("tomllib").loads(ckpt["config"]))
    assert resolved.model.freqs == (cfg.data.freqs or [1.0, 2.0, 4.0])
    assert resolved.model.name == cfg.model.name
    assert len(ckpt["train_data"]) == len(cfg.data.stores)  # every training store recorded


def test_evaluation_experiments_single_frequency_noise_stencil_and_misfit(stores, tmp_path):
    from msinv.learned.evaluation import evaluate

    torch.set_num_threads(1)
    single = train(
        _tiny(
            CONFIGS / "learned-reduced-single-frequency.toml",
            [stores["train"]],
            tmp_path / "single",
        )
    )
    out = tmp_path / "eval"
    result = evaluate(
        {"single": single},
        {"squares": stores["test"], "wide4": stores["wide4"]},
        draws=3,
        n_levels=4,
        misfit="samples",
        noise=0.2,
        references={},
        out=out,
    )
    rows = {r["family"]: r for r in result["rows"]}
    assert rows["squares"]["freqs"] == [4.0]  # the checkpoint's frequency, taken from the store
    assert len(rows["squares"]["data_misfit_per_frequency"]) == 1
    assert rows["wide4"]["noise"] == 0.2 and rows["wide4"]["rrmse"] > 0
    with np.load(tmp_path / "eval-single-squares.npz") as f:
        assert f["data_misfit"].shape == (2, 3, 2)
    assert json.loads((tmp_path / "eval.json").read_text())["rows"][0]["noise"] == 0.2


def test_target_blur_is_recorded_and_a_mismatch_at_evaluation_warns(stores, tmp_path):
    """Item 4: the checkpoint records its training targets' blur (the published pipeline
    blurs by 0.5 pixel); evaluating against targets of another blur warns."""
    from msinv.learned.evaluation import evaluate
    from msinv.scattering import Geometry
    from msinv.scattering.dataset import generate

    torch.set_num_threads(1)
    blurred = tmp_path / "blurred.zarr"
    generate(
        blurred,
        family="squares",
        count=2,
        geometry=Geometry.paper(16),
        freqs=[1.0, 2.0, 4.0],
        seed=1,
        target_blur=0.5,
        progress=False,
    )
    ckpt = train(_tiny(CONFIGS / "learned-reduced-equinet.toml", [stores["train"]], tmp_path / "r"))
    assert torch.load(ckpt, weights_only=True)["train_data"][0]["target_blur"] == 0.0
    with pytest.warns(UserWarning, match=r"trained on targets blurred by 0 px, .* 0\.5 px"):
        rows = evaluate({"det": ckpt}, {"b": blurred}, n_levels=2, misfit="none", references={})[
            "rows"
        ]
    assert rows[0]["target_blur"] == 0.5 and rows[0]["train_target_blur"] == 0.0
