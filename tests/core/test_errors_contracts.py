"""msinv's exceptions cross process boundaries intact (written from a survivor of the sampled
mutation run, docs/testing.md): a pool worker's error is pickled to the parent, which prints
its message."""

import inspect
import pickle

import pytest

from msinv.core import errors

CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, BaseException) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_exception_survives_a_pickle_round_trip(cls):
    exc = cls("kept 2 of 4 samples: run the same command to resume")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc) == "kept 2 of 4 samples: run the same command to resume"
    assert back.args == exc.args == ("kept 2 of 4 samples: run the same command to resume",)


def test_interrupted_given_its_message_by_keyword_carries_it_in_args():
    """Interrupted(message=...) is the same exception as Interrupted(...): its args (and so
    its repr in a log, and what a pickle rebuilds it from) hold the message."""
    exc = errors.Interrupted(message="stopped at step 2 of 10")
    assert exc.args == ("stopped at step 2 of 10",)
    assert repr(exc) == "Interrupted('stopped at step 2 of 10')"
    assert pickle.loads(pickle.dumps(exc)).args == exc.args
