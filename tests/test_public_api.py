"""The top-level API: every public name resolves, and the crypto kernels import without
the rest of riskfed (worker processes load only what they run)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import riskfed


def test_every_public_name_resolves():
    for name in riskfed.__all__:
        assert getattr(riskfed, name) is not None, name
    assert set(riskfed.__all__) == set(riskfed._EXPORTS) | {"__version__"}
    assert sorted(dir(riskfed)) == sorted(riskfed.__all__)


def test_unknown_names_are_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        riskfed.nope  # noqa: B018


def test_crypto_kernels_import_without_the_pipeline():
    code = (
        "import sys, riskfed.crypto.paillier, riskfed.crypto.multiexp; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'scipy', 'riskfed.job') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
