"""The examples in riskfed.validation's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "calibration",
    "calibrators",
    "discrimination",
    "gains",
    "impact",
    "stability",
    "stopping",
    "strategy",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"riskfed.validation.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names_resolve():
    import riskfed.validation as validation

    for name in validation.__all__:
        assert getattr(validation, name) is not None, name
