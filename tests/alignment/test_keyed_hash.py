"""Keyed-hash digests: HMAC-SHA256 under a shared key."""

from __future__ import annotations

import hmac

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.alignment.keyed_hash import KEY_BYTES, keyed_digests, new_shared_key
from riskfed.errors import ConfigurationError, SchemaError

KEY = bytes(range(32))  # test-only key
OTHER_KEY = bytes(range(1, 33))


def test_new_shared_key_is_fresh_and_32_bytes():
    keys = {new_shared_key() for _ in range(4)}
    assert KEY_BYTES == 32
    assert len(keys) == 4 and all(len(k) == KEY_BYTES for k in keys)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=20), st.binary(min_size=32, max_size=32))
def test_digests_are_full_hmac_sha256_in_order(ids, key):
    out = keyed_digests(ids, key)
    assert out.dtype == np.dtype("S32") and out.shape == (len(ids),)
    raw = out.tobytes()
    expected = b"".join(hmac.digest(key, i.encode("utf-8"), "sha256") for i in ids)
    assert raw == expected


def test_deterministic_per_key_and_different_across_keys():
    ids = ["c001", "c002", "13800138000"]
    first = keyed_digests(ids, KEY)
    assert np.array_equal(first, keyed_digests(ids, KEY))
    assert not np.isin(first, keyed_digests(ids, OTHER_KEY)).any()
    assert len(set(first.tolist())) == len(ids)


def test_accepts_numpy_object_arrays_and_bytearray_keys():
    ids = np.array(["a", "b"], dtype=object)
    assert np.array_equal(keyed_digests(ids, bytearray(KEY)), keyed_digests(["a", "b"], KEY))


def test_empty_input():
    assert keyed_digests([], KEY).shape == (0,)


@pytest.mark.parametrize(
    "key, got",
    [(bytes(16), "16 bytes"), (bytes(33), "33 bytes"), ("k" * 32, "str"), (None, "NoneType")],
)
def test_key_must_be_32_bytes(key, got):
    with pytest.raises(ConfigurationError, match=rf"must be exactly 32 bytes\. Got {got} instead"):
        keyed_digests(["a"], key)


def test_non_str_ids_are_rejected():
    with pytest.raises(SchemaError, match=r"1 are not str \(positions 1\)") as err:
        keyed_digests(["a", 7, "b"], KEY)
    assert err.value.rows == [1]
