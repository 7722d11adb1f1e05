"""The examples of the suite's docstrings run (the default pytest run collects doctests of
``torchtopo/`` only)."""

import doctest
import importlib
import pkgutil

import pytest

import topkd

MODULES = [name for name in sorted(m.name for m in pkgutil.walk_packages(topkd.__path__, "topkd."))
           if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))]


def test_the_suite_has_examples():
    assert {"topkd.layout", "topkd.report", "topkd.distillers", "topkd.models"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
