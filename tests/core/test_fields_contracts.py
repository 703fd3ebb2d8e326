"""The words a config error uses for what was expected (written from a survivor of the sampled
mutation run, docs/testing.md): built from the annotation, item by item."""

import pytest

from msinv.core.fields import expected_type


@pytest.mark.parametrize(
    ("value", "hint", "words"),
    [
        (True, int, "an integer"),
        ("x", list[float], "a list (a number each)"),
        ([1, "a"], list[int], "a list (an integer each)"),
        (3, dict[str, int], "a table"),
        ("x", tuple[float, ...], "a list of numbers"),
        ([1.0], tuple[float, float], "a list of 2 values (a number, a number)"),
        ("x", int | None, "an integer"),
    ],
)
def test_expected_type_says_what_the_annotation_asks_for(value, hint, words):
    assert expected_type(value, hint) == words


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ([1.0, 2], list[float]),
        ({"a": 1}, dict[str, int]),
        (None, int | None),
        ([1.0, 2.0, 3.0], tuple[float, ...]),  # any length
        ([], tuple[float, ...]),
    ],
)
def test_values_that_fit_their_annotation_pass(value, hint):
    assert expected_type(value, hint) is None


def test_a_variable_length_tuple_checks_every_item():
    """tuple[float, ...] takes a list of any length whose every item is a number."""
    assert expected_type([1.0, 2, 3.5], tuple[float, ...]) is None
    assert expected_type([], tuple[float, ...]) is None
    assert expected_type([1.0, "a"], tuple[float, ...]) == "a list of numbers"
    assert expected_type([True], tuple[float, ...]) == "a list of numbers"


def test_any_classes_and_unknown_annotations():
    """``Any`` takes everything; a class takes its instances only and is named by its name; an
    annotation the checker does not know (``Literal``) is not refused here (documented)."""
    import typing
    from pathlib import Path, PurePosixPath

    for value in (None, 1, "x", [1], {"a": 1}):
        assert expected_type(value, typing.Any) is None
    assert expected_type(Path("a"), PurePosixPath) is None
    assert expected_type("a", Path) == "Path"
    assert expected_type(1.5, typing.Literal["a"]) is None


@pytest.mark.parametrize(
    ("hint", "fits", "refused"),
    [
        (int, [0, -3, 10**20], [True, 2.0, "1", None]),
        (float, [0, 2.5, -1e300, 7], [True, False, float("inf"), float("-inf"), float("nan"), "1"]),
        (bool, [True, False], [1, 0, "true", None]),
        (str, ["", "a"], [1, None, ["a"]]),
        (tuple[float, float], [(1, 2.0), [1.0, 2.0]], ["ab", [1.0], [1.0, 2.0, 3.0], [1.0, "a"]]),
        (list[float], [[], (1.0, 2)], ["1.0", [True], {"a": 1.0}]),
        (int | None, [None, 3], ["a", 2.5, True]),
        (dict[str, float], [{}, {"a": "not checked"}], [[("a", 1.0)], "a"]),
        (tuple[str, str], [["a", "b"]], ["ab"]),  # a string is not its characters
        (list[str], [["ab"], []], ["ab", ""]),
    ],
)
def test_each_annotation_takes_exactly_its_values(hint, fits, refused):
    """Per annotation, the values that fit and the nearest ones that do not: a bool is neither
    an integer nor a number, a number must be finite (inf and NaN are refused), an integer is
    a number but 2.0 is not an integer, a string is not a list (of characters), a fixed tuple
    needs its exact length, ``X | None`` takes None and X only, and a table is any dict (its
    values are the field's own business)."""
    for value in fits:
        assert expected_type(value, hint) is None, value
    for value in refused:
        assert expected_type(value, hint) is not None, value
