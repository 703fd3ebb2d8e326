"""Input files are never unpickled (written from a survivor of the sampled mutation run,
docs/testing.md)."""

import re

import numpy as np
import pytest

from msinv.core.errors import FileFormatError
from msinv.core.inputs import npz_errors, open_npz, read_npz


def test_an_npz_holding_python_objects_is_refused_not_unpickled(tmp_path):
    """numpy.savez pickles object arrays; msinv's readers refuse them in one line instead of
    running the pickle (arbitrary code) while the numeric members stay readable."""
    path = tmp_path / "objects.npz"
    np.savez(path, numbers=np.arange(3.0), objects=np.array([{"x": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="holds Python objects, which are not loaded"):
        read_npz(path)
    with open_npz(path) as z, npz_errors(path):
        np.testing.assert_array_equal(z["numbers"], np.arange(3.0))
        with pytest.raises(FileFormatError, match="holds Python objects"):
            with npz_errors(path):
                z["objects"]


@pytest.mark.parametrize("reader", [read_npz, open_npz])
def test_an_empty_file_is_refused_as_empty(tmp_path, reader):
    """A zero-byte file (an interrupted copy) is named as empty, with the option it came from."""
    path = tmp_path / "model.npz"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"--model .*model\.npz: the file is empty; expected"):
        reader(path, "--model")


def test_an_empty_npy_file_is_refused_as_empty(tmp_path):
    from msinv.core.inputs import read_npy

    path = tmp_path / "x.npy"
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="the file is empty; expected"):
        read_npy(path)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_a_damaged_member_and_a_missing_one_are_named_in_one_line(tmp_path, save, rng):
    """Bytes damaged inside a member (the zip directory intact: a bad CRC, or a broken deflate
    stream when compressed) and a member the archive lacks are one-line FileFormatErrors."""
    path = tmp_path / "m.npz"
    save(path, eta=rng.standard_normal(4000))
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(64)  # zeros over the member's data
    path.write_bytes(bytes(raw))
    with open_npz(path, "--model") as z:
        with pytest.raises(FileFormatError, match=r"--model .*m\.npz: truncated or damaged"):
            with npz_errors(path, "--model"):
                z["eta"]
        with pytest.raises(FileFormatError, match="the archive has no array 'density'"):
            with npz_errors(path, "--model"):
                z["density"]


def test_a_check_of_the_content_inside_npz_errors_keeps_its_own_message(tmp_path):
    """npz_errors turns numpy's errors of a damaged archive into one FileFormatError line; a
    UserInputError raised by a check of what was read (a wrong field, other stations) is
    already that line and passes unchanged, not relabelled "truncated or damaged"."""
    from msinv.core.errors import UserInputError

    path = tmp_path / "a.npz"
    np.savez(path, x=np.ones(3))
    with pytest.raises(UserInputError) as info, npz_errors(path):
        raise UserInputError("a.npz: x must hold 4 values")
    assert str(info.value) == "a.npz: x must hold 4 values"
    assert type(info.value) is UserInputError
    with pytest.raises(FileFormatError, match=r"a\.npz: truncated or damaged \.npz archive"):
        with npz_errors(path):
            raise ValueError("cannot reshape")


def test_read_npy_reads_an_array_and_names_each_kind_of_bad_file(tmp_path):
    """read_npy returns the saved array; a folder, a text file, a truncated file and an array
    of Python objects are each one FileFormatError line naming the file (and the option, when
    one is given)."""
    from msinv.core.inputs import read_npy

    good = tmp_path / "eta.npy"
    np.save(good, np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(read_npy(good), np.arange(12.0).reshape(3, 4))
    text = tmp_path / "eta.txt"
    text.write_text("1 2 3\n")
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:-20])
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    for path, message in [
        (tmp_path, "is a folder; expected a .npy file"),
        (text, "not a .npy file (it does not start with the NumPy header)"),
        (cut, "truncated or damaged .npy file"),
        (objects, "holds Python objects, which are not loaded"),
    ]:
        with pytest.raises(FileFormatError, match="^" + re.escape(f"--eta {path}: {message}")):
            read_npy(path, "--eta")
    with pytest.raises(FileFormatError, match="^" + re.escape(f"{text}: not a .npy file")):
        read_npy(text)  # no option: the path alone


def test_read_npz_returns_every_member_and_refuses_a_file_that_is_not_a_zip(tmp_path):
    """Every array of the archive, by name; a .npy given where an .npz is expected, and a
    zip header with no zip directory behind it, are one line each."""
    path = tmp_path / "m.npz"
    np.savez(path, a=np.ones(3), b=np.arange(4))
    got = read_npz(path)
    assert sorted(got) == ["a", "b"]
    np.testing.assert_array_equal(got["a"], np.ones(3))
    np.testing.assert_array_equal(got["b"], np.arange(4))
    npy = tmp_path / "x.npy"
    np.save(npy, np.ones(2))
    with pytest.raises(FileFormatError, match=re.escape(f"{npy}: not an .npz archive")):
        read_npz(npy)
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(FileFormatError, match=r"truncated or damaged \.npz archive \(no zip"):
        read_npz(fake)


def test_require_finite_passes_finite_arrays_through_and_counts_the_others():
    """Finite arrays (real or complex) come back as they are (the same object); otherwise one
    line says how many of how many values are NaN or inf, whichever part holds them."""
    from msinv.core.inputs import require_finite

    real, cplx = np.array([1.0, -2.0]), np.array([1 + 2j, 0j])
    assert require_finite(real, "x") is real and require_finite(cplx, "y") is cplx
    bad = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    with pytest.raises(FileFormatError, match=r"^d\.h5: /v: 3 of 5 values are NaN or inf"):
        require_finite(bad, "d.h5: /v")
    with pytest.raises(FileFormatError, match="1 of 2 values are NaN or inf"):
        require_finite(np.array([1.0, complex(0.0, np.inf)]), "z")


def test_open_npz_names_the_file_it_expected(tmp_path):
    """open_npz's ``what`` is the expected file in the message of a file that is not a zip
    ("<path>: not <what>"), so that each reader can say which format it wanted."""
    text = tmp_path / "model.npz"
    text.write_text("1 2 3\n")
    with pytest.raises(FileFormatError, match=re.escape(f"{text}: not an .npz archive (a file")):
        open_npz(text)
    with pytest.raises(FileFormatError, match=re.escape(f"--model {text}: not a GZES layer file")):
        open_npz(text, "--model", what="a GZES layer file")
