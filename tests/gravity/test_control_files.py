"""GRAV3D control files: v5/v6 variants, resolved values, relative paths, exact round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from msinv.gravity.control import (
    DEFAULT_ALPHAS,
    ForwardArguments,
    InversionControl,
    PredictArguments,
    SensitivityControl,
    read_inversion_control,
    read_pfweight_control,
    read_sensitivity_control,
    write_inversion_control,
    write_pfweight_control,
    write_sensitivity_control,
)

INV = """2                  ! mode
0.5 0                ! beta, tolc (0 -> default)
"obs data.grv"       ! quoted name with a space
../sens/gzinv3d.mtx
ref.den              ! initial model from a file
null                 ! reference -> 0
active.txt
null                 ! no lower bound
upper.den
{alphas}
SMOOTH_MOD_DIF
w.dat
"""


def _write(folder: Path, text: str, name="inv.inp") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_inversion_control_resolves_values_and_paths(tmp_path):
    path = _write(tmp_path / "run", INV.format(alphas="VALUE 1e-3 1 2 3"))
    c = read_inversion_control(path)
    run = (tmp_path / "run").resolve()
    assert (c.mode, c.par, c.tolc) == (2, 0.5, 0.02)
    assert c.obs_file == run / "obs data.grv"
    assert c.sensitivity_file == run / "../sens/gzinv3d.mtx"
    assert c.initial_model == run / "ref.den" and c.reference_model == 0.0
    assert c.active_file == run / "active.txt" and c.weights_file == run / "w.dat"
    assert c.lower == -math.inf and c.upper == run / "upper.den"
    assert c.alphas == (1e-3, 1.0, 2.0, 3.0) and c.length_scales is None
    assert c.smooth == "SMOOTH_MOD_DIF" and c.norms is None
    assert c.beta == 0.5
    with pytest.raises(ValueError, match="mode 1 only"):
        c.target_misfit(10)
    with pytest.raises(ValueError, match="mode 1 only"):
        _ = c.chifact


@pytest.mark.parametrize(
    ("line", "alphas", "scales"),
    [("null", None, None), ("DEFAULT", None, None), ("50 50 20", None, (50.0, 50.0, 20.0))],
)
def test_alpha_line_variants(tmp_path, line, alphas, scales):
    c = read_inversion_control(_write(tmp_path, INV.format(alphas=line)))
    assert c.alphas == alphas and c.length_scales == scales
    a_s, a_x, a_y, a_z = c.resolved_alphas
    if scales is None:
        assert c.resolved_alphas == DEFAULT_ALPHAS
    else:  # L = sqrt(alpha_i / alpha_s)
        for a, length in zip((a_x, a_y, a_z), scales, strict=True):
            assert math.sqrt(a / a_s) == pytest.approx(length, rel=1e-14)


def test_sparse_norm_lines(tmp_path):
    base = INV.format(alphas="null")
    c = read_inversion_control(_write(tmp_path, base + "VALUE 0 1 1 2\nnull\nnull\n"))
    assert c.norms == (0.0, 1.0, 1.0, 2.0) and c.norm_scaling == (0.5, None, None)
    c = read_inversion_control(_write(tmp_path, base + "VALUE 1 2 2 2\n0.3 1e-4 2e-4\n"))
    assert c.norm_scaling == (0.3, 1e-4, 2e-4)
    c = read_inversion_control(_write(tmp_path, base + "null\n0.3 1e-4 2e-4\n"))
    assert c.norms is None and c.norm_scaling is None  # scaling ignored for least squares


def test_per_cell_norm_and_scaling_files(tmp_path):
    base = INV.format(alphas="null")
    for name in ("p.txt", "q z.txt", "scale.txt"):
        (tmp_path / name).write_text("1\n")
    text = base + 'p.txt 1 1 "q z.txt"\nscale.txt 1e-4 2e-4\n'
    c = read_inversion_control(_write(tmp_path, text))
    folder = tmp_path.resolve()
    assert c.norms == (folder / "p.txt", 1.0, 1.0, folder / "q z.txt")
    assert c.norm_scaling == (folder / "scale.txt", 1e-4, 2e-4)
    write_inversion_control(tmp_path / "again.inp", c)
    assert read_inversion_control(tmp_path / "again.inp") == c
    assert (tmp_path / "again.inp").read_text().splitlines()[12].startswith("p.txt 1.0 1.0")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("p.txt 1 1\nnull\n", r"inv.inp: line 13: expected 'VALUE p qx qy qz', four items"),
        ("p.txt 1 missing.txt 2\nnull\n", r"line 13: expected norm qy: a number or an existing "
         r"file, found 'missing.txt'"),
        ("0 1 1 3\nnull\n", "line 13: expected norm exponents between 0 and 2"),
        ("VALUE 0 1 1 2\nscale.txt 1e-4\n", "line 14: expected 'scale eps epsGrad'"),
        ("VALUE 0 1 1 2\nnope.txt 1e-4 1e-4\n", "line 14: expected Lq scaling: a number or an "
         "existing file, found 'nope.txt'"),
        ("VALUE 0 1 1 2\n1.5 1e-4 1e-4\n", "line 14: expected 0 <= scale <= 1"),
    ],
)  # fmt: skip
def test_bad_norm_lines_name_the_line(tmp_path, lines, message):
    (tmp_path / "p.txt").write_text("1\n")
    (tmp_path / "scale.txt").write_text("1\n")
    with pytest.raises(ValueError, match=message):
        read_inversion_control(_write(tmp_path, INV.format(alphas="null") + lines))


def test_per_cell_values_out_of_range_name_the_file_line(tmp_path):
    import numpy as np
    from discretize import TensorMesh

    from msinv.gravity.ubc import read_model_within

    mesh = TensorMesh([[10.0] * 3, [10.0] * 2, [10.0] * 2])
    values = np.full(mesh.n_cells, 1.0)
    values[7] = 2.5
    path = tmp_path / "p.txt"
    path.write_text("! per-cell p\n" + "\n".join(map(str, values)) + "\n")
    with pytest.raises(ValueError, match=r"p.txt: line 9: expected norm exponents p in \[0, 2\], "
                       r"found '2.5'"):  # fmt: skip
        read_model_within(path, mesh, 0.0, 2.0, "norm exponents p")
    values[7] = 0.5
    path.write_text("\n".join(map(str, values)) + "\n")
    got = read_model_within(path, mesh, 0.0, 2.0, "norm exponents p")
    assert sorted(got) == sorted(values)


@pytest.mark.parametrize("norms", [None, (0.0, 2.0, 2.0, 2.0)])
def test_inversion_control_roundtrip(tmp_path, norms):
    c = InversionControl(
        mode=1, par=1.0, tolc=0.02, obs_file=tmp_path / "d.grv",
        sensitivity_file=tmp_path / "sub" / "g.mtx", initial_model=1e-4, reference_model=0.0,
        active_file=None, lower=-1.0, upper=tmp_path / "up per.den", alphas=None,
        length_scales=(40.0, 40.0, 15.0), smooth="SMOOTH_MOD", weights_file=None, norms=norms,
        norm_scaling=None if norms is None else (0.5, 1e-3, 1e-3),
    )  # fmt: skip
    write_inversion_control(tmp_path / "inv.inp", c)
    assert read_inversion_control(tmp_path / "inv.inp") == c


def test_sensitivity_control_v5_and_v6(tmp_path):
    v5 = "mesh.msh\nobs.grv ! data\ntopo.dat\nnull\nnull\nnull\n1\n"
    c = read_sensitivity_control(_write(tmp_path, v5, "sens.inp"))
    assert c.version == 5 and c.scale_sensitivity is True
    assert c.wavelet == "daub2" and (c.itol, c.eps) == (1, 0.05)  # null -> the defaults
    assert c.topography_file == tmp_path.resolve() / "topo.dat" and c.weights_file is None
    assert c.diagnostics is True
    v6 = "mesh.msh\nobs.grv\nnull\nw.txt\nNONE\n2 1e-6\n0\n0\n"
    c = read_sensitivity_control(_write(tmp_path, v6, "sens.inp"))
    assert c.version == 6 and c.wavelet is None and (c.itol, c.eps) == (2, 1e-6)
    assert c.scale_sensitivity is False and c.topography_file is None
    write_sensitivity_control(tmp_path / "again.inp", c)
    assert read_sensitivity_control(tmp_path / "again.inp") == c
    with pytest.raises(ValueError, match="wavelet"):
        SensitivityControl(tmp_path, tmp_path, None, None, "db2")


def test_pfweight_control(tmp_path):
    text = "GRAV\nmesh.txt\nobs.grv\ntopo.txt\n1\n2.0 5.5 ! alpha z0\n"
    c = read_pfweight_control(_write(tmp_path, text, "pf.inp"))
    assert c.weighting == "depth" and (c.exponent, c.offset) == (2.0, 5.5)
    assert c.topography_file == tmp_path.resolve() / "topo.txt"
    write_pfweight_control(tmp_path / "again.inp", c)
    assert read_pfweight_control(tmp_path / "again.inp") == c


def test_gzfor3d_and_gzpre3d_arguments():
    f = ForwardArguments.from_argv(["mesh.msh", "obs.loc", "model.den"])
    assert f.topography_file is None and f.output_file == Path("gzfor3d.grv")
    assert ForwardArguments.from_argv(["m", "o", "d", "t"]).topography_file == Path("t")
    p = PredictArguments.from_argv(["gzinv3d.mtx", "obs.loc", "model.den"])
    assert p.output_file == Path("gzpre3d.grv")
    with pytest.raises(ValueError, match="expected"):
        PredictArguments.from_argv(["a", "b"])
