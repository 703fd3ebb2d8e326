"""Every file of the malformed corpus is rejected with a one-line error naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from msinv.cli.errors import friendly
from msinv.core.errors import UserInputError
from msinv.gravity.control import (
    read_inversion_control,
    read_pfweight_control,
    read_sensitivity_control,
)
from msinv.gravity.ubc import GravityFileError, read_active, read_mesh, read_model
from msinv.gravity.ubc_data import read_locations, read_observations, read_topography

CORPUS = Path(__file__).parent / "malformed"


def _on_small_mesh(reader):
    return lambda path: reader(path, read_mesh(CORPUS / "small_mesh.txt"))


#: file -> (reader, line the error must name, a word the message must contain)
CASES = {
    "mesh_truncated.txt": (read_mesh, 3, "east widths"),
    "mesh_too_many_widths.txt": (read_mesh, 5, "end of file"),
    "mesh_non_numeric.txt": (read_mesh, 4, "cell width"),
    "mesh_two_counts.txt": (read_mesh, 1, "NE NN NZ"),
    "mesh_negative_width.txt": (read_mesh, 4, "positive"),
    "mesh_repeat_overflow.txt": (read_mesh, 3, "past"),
    "model_too_few.den": (_on_small_mesh(read_model), 7, "ends after 7"),
    "model_too_many.den": (_on_small_mesh(read_model), 9, "no more"),
    "model_non_numeric.den": (_on_small_mesh(read_model), 4, "a number"),
    "active_bad_flag.txt": (_on_small_mesh(read_active), 6, "-1, 0 or 1"),
    "obs_zero_sigma.grv": (read_observations, 4, "σ > 0"),
    "obs_negative_sigma.grv": (read_observations, 3, "σ > 0"),
    "obs_ndat_too_big.grv": (read_observations, 4, "found 3"),
    "obs_ndat_too_small.grv": (read_observations, 4, "only 2"),
    "obs_missing_column.grv": (read_observations, 3, "E N ELEV g_z σ"),
    "obs_non_numeric.grv": (read_observations, 4, "column 3"),
    "obs_no_ndat.grv": (read_observations, 1, "number of data"),
    "loc_short_row.loc": (read_locations, 3, "E N ELEV"),
    "topo_truncated.txt": (read_topography, 3, "found 2"),
    "inv_bad_keyword.inp": (read_inversion_control, 11, "SMOOTH_MOD or SMOOTH_MOD_DIF"),
    "inv_bad_mode.inp": (read_inversion_control, 1, "inversion mode"),
    "inv_bounds_swapped.inp": (read_inversion_control, 9, "upper bound"),
    "inv_truncated.inp": (read_inversion_control, 10, "12 items"),
    "inv_bad_value.inp": (read_inversion_control, 5, "initial model"),
    "inv_norm_out_of_range.inp": (read_inversion_control, 13, "between 0 and 2"),
    "inv_five_alphas.inp": (read_inversion_control, 10, "αs αx αy αz"),
    "sens_bad_wavelet.inp": (read_sensitivity_control, 5, "wavelet"),
    "sens_bad_itol.inp": (read_sensitivity_control, 6, "itol"),
    "sens_truncated.inp": (read_sensitivity_control, 6, "7 items"),
    "pfweight_bad_type.inp": (read_pfweight_control, 1, "MAG, GRAV or GG"),
    "pfweight_bad_kind.inp": (read_pfweight_control, 5, "distance"),
}


def test_corpus_is_complete():
    files = {p.name for p in CORPUS.iterdir()} - {"small_mesh.txt"}
    assert files == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_file_is_rejected_with_its_line(name):
    reader, line, word = CASES[name]
    with pytest.raises(GravityFileError) as info:
        reader(CORPUS / name)
    message = str(info.value)
    assert message.startswith(f"{CORPUS / name}: line {line}: expected"), message
    assert word in message, message
    assert info.value.line == line
    assert "\n" not in message
    assert isinstance(info.value, UserInputError)


def test_cli_prints_one_line_and_exits_2():
    app = typer.Typer()

    @app.command()
    @friendly
    def mesh(path: Path):
        read_mesh(path)

    result = CliRunner().invoke(app, [str(CORPUS / "mesh_truncated.txt")])
    assert result.exit_code == 2
    out = result.output.strip()
    assert "line 3" in out and "Traceback" not in out and len(out.splitlines()) == 1
