"""Matching tokens and building the aligned index."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.alignment.index import AlignedIndex, intersect_all, match_positions
from riskfed.errors import AlignmentError, ConfigurationError, ProtocolError


def tokens(*values: bytes) -> np.ndarray:
    return np.frombuffer(b"".join(values), dtype="S32").copy()


def tok(n: int) -> bytes:
    """A distinct 32-byte token per n, ending in zero bytes (the awkward case for S32)."""
    return n.to_bytes(8, "little") + bytes(24)


# ---------------------------------------------------------------------- match_positions


def test_match_positions_pairs_equal_tokens_in_bank_order():
    bank = tokens(tok(1), tok(2), tok(3), tok(4))
    partner = tokens(tok(4), tok(9), tok(2))
    i, j = match_positions(bank, partner)
    assert i.tolist() == [1, 3] and j.tolist() == [2, 0]
    assert i.dtype == np.int64 and j.dtype == np.int64


def test_match_positions_accepts_lists_of_bytes():
    i, j = match_positions([tok(1), tok(2)], [tok(2)])
    assert (i.tolist(), j.tolist()) == ([1], [0])


def test_empty_sides():
    empty = np.empty(0, dtype="S32")
    i, j = match_positions(empty, tokens(tok(1)))
    assert i.size == j.size == 0
    assert match_positions(tokens(tok(1)), empty)[0].size == 0


def test_tokens_sharing_their_first_eight_bytes_are_still_told_apart():
    same_prefix = [bytes(8) + bytes([k]) * 24 for k in range(1, 5)]
    bank = tokens(same_prefix[0], same_prefix[1], tok(7))
    partner = tokens(same_prefix[1], same_prefix[2], tok(7), same_prefix[3])
    i, j = match_positions(bank, partner)
    assert (i.tolist(), j.tolist()) == ([1, 2], [0, 2])


def test_prefix_equal_but_different_tokens_do_not_match():
    i, j = match_positions(tokens(bytes(8) + b"a" * 24), tokens(bytes(8) + b"b" * 24))
    assert i.size == 0 and j.size == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), unique=True, max_size=30),
    st.lists(st.binary(min_size=32, max_size=32), unique=True, max_size=30),
    st.integers(0, 8),
    st.randoms(use_true_random=False),
)
def test_match_positions_equals_a_dictionary_join(bank_only, partner_only, n_shared, rnd):
    # Hypothesis's binary() favours short prefixes of zeros, so prefixes collide often
    # and both the fast and the exact paths get exercised.
    shared = bank_only[:n_shared]
    bank = list(dict.fromkeys(bank_only))
    partner = list(dict.fromkeys([t for t in partner_only if t not in set(bank)] + shared))
    rnd.shuffle(partner)
    i, j = match_positions(tokens(*bank), tokens(*partner))
    where = {t: k for k, t in enumerate(partner)}
    expected = [(k, where[t]) for k, t in enumerate(bank) if t in where]
    assert list(zip(i.tolist(), j.tolist())) == expected


@pytest.mark.parametrize("side", ["bank", "partner"])
def test_duplicate_tokens_on_one_side_are_alignment_errors(side):
    dup = tokens(tok(1), tok(2), tok(1))
    other = tokens(tok(1))
    args = (dup, other) if side == "bank" else (other, dup)
    name = "bank" if side == "bank" else "fintech_2"
    with pytest.raises(AlignmentError, match=rf"^{name}: 2 tokens are not unique \(positions 0, 2\)") as err:
        match_positions(*args, partner="fintech_2")
    assert err.value.party == name and err.value.rows == [0, 2]


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(2, dtype="S16"), r"^fintech_1: tokens must be a 1-D array of 32-byte values"),
        ([tok(1), b"short"], r"^fintech_1: 1 of the 2 tokens are not 32-byte strings \(positions 1\)"),
    ],
)
def test_malformed_tokens_are_protocol_errors(bad, match):
    with pytest.raises(ProtocolError, match=match):
        match_positions(tokens(tok(1)), bad, partner="fintech_1")


# ---------------------------------------------------------------------- intersect_all


def two_partner_index(**kwargs) -> AlignedIndex:
    # bank rows 0..5; fintech_1 knows bank rows 0, 1, 3, 5; fintech_2 knows 1, 2, 3, 5.
    pairs = {
        "fintech_1": (np.array([0, 1, 3, 5]), np.array([10, 11, 13, 15])),
        "fintech_2": (np.array([5, 3, 2, 1]), np.array([0, 1, 2, 3])),
    }
    return intersect_all(
        6, pairs, method="ecdh", partner_counts={"fintech_1": 16, "fintech_2": 4}, **kwargs
    )


def test_intersection_across_two_partners():
    idx = two_partner_index()
    assert idx.bank_rows.tolist() == [1, 3, 5]
    assert idx.partner_rows["fintech_1"].tolist() == [11, 13, 15]
    assert idx.partner_rows["fintech_2"].tolist() == [3, 1, 0]
    assert idx.size == 3 and idx.method == "ecdh"
    assert idx.counts() == {
        "method": "ecdh",
        "bank_rows": 6,
        "fintechs": ["fintech_1", "fintech_2"],
        "fintech_rows": [16, 4],
        "intersection": 3,
        "match_rate": 0.5,
    }


def test_index_arrays_are_read_only_int64():
    idx = two_partner_index()
    assert idx.bank_rows.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        idx.bank_rows[0] = 99


def test_tiny_intersection_names_every_party_and_the_requirement():
    pairs = {"fintech_1": (np.array([3, 10, 999]), np.array([0, 1, 2]))}
    message = (
        "The intersection of bank (1,000 rows) and fintech_1 (800 rows) has 3 customers; "
        "at least 50 are required."
    )
    with pytest.raises(AlignmentError, match=f"^{re.escape(message)}$") as err:
        intersect_all(1000, pairs, method="keyed-hash", partner_counts={"fintech_1": 800}, min_size=50)
    assert err.value.party == "fintech_1"


def test_empty_intersection_with_several_partners_reports_pairwise_overlaps():
    pairs = {
        "fintech_1": (np.array([0, 1]), np.array([0, 1])),
        "fintech_2": (np.array([2]), np.array([0])),
    }
    with pytest.raises(
        AlignmentError,
        match=re.escape(
            "The intersection of bank (3 rows), fintech_1 (2 rows) and fintech_2 (1 rows) has "
            "0 customers (pairwise: bank ∩ fintech_1 = 2, bank ∩ fintech_2 = 1); at least 1 "
            "is required."
        ),
    ) as err:
        intersect_all(3, pairs, method="ecdh", partner_counts={"fintech_1": 2, "fintech_2": 1})
    assert err.value.party == "fintech_2"


def test_intersect_all_from_matched_tokens_is_independent_of_partner_row_order():
    rng = np.random.default_rng(3)
    bank = np.frombuffer(rng.bytes(32 * 200), dtype="S32").copy()
    perm = rng.permutation(200)[:120]
    partner = bank[perm]
    idx = intersect_all(
        200, {"f": match_positions(bank, partner)}, method="ecdh", partner_counts={"f": 120}
    )
    assert idx.bank_rows.tolist() == sorted(perm.tolist())
    assert np.array_equal(bank[idx.bank_rows], partner[idx.partner_rows["f"]])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": "psi"}, ConfigurationError, r"'method' parameter must be one of 'ecdh', 'keyed-hash'\. Got 'psi'"),
        ({"min_size": 0}, ConfigurationError, r"'min_size' parameter of intersect_all must be an int >= 1\. Got 0"),
        ({"pairs": {}}, ConfigurationError, r"at least one partner"),
        ({"partner_counts": {"other": 3}}, ConfigurationError, r"pairs names \['f'\] but partner_counts names \['other'\]"),
        ({"pairs": {"f": (np.array([0, 1]), np.array([0]))}}, AlignmentError, r"f has 1 matched positions but the bank side has 2"),
        ({"pairs": {"f": (np.array([0, 7]), np.array([0, 1]))}}, AlignmentError, r"bank: 1 row position\(s\) \(matches with f\) fall outside its table of 4 rows: 7"),
        ({"pairs": {"f": (np.array([0, 1]), np.array([2, 2]))}}, AlignmentError, r"f: row position\(s\) 2 occur more than once"),
    ],
)
def test_intersect_all_rejects_bad_arguments(kwargs, error, match):
    args = {
        "bank_count": 4,
        "pairs": {"f": (np.array([0, 1]), np.array([0, 1]))},
        "method": "ecdh",
        "partner_counts": {"f": 3},
    } | kwargs
    bank_count, pairs = args.pop("bank_count"), args.pop("pairs")
    with pytest.raises(error, match=match):
        intersect_all(bank_count, pairs, **args)


# ---------------------------------------------------------------------- AlignedIndex


def test_aligned_index_validates_lengths_and_ranges():
    with pytest.raises(AlignmentError, match=r"f has 1 aligned rows but the bank has 2"):
        AlignedIndex(np.array([0, 1]), {"f": np.array([0])}, "ecdh", 2, {"f": 1})
    with pytest.raises(AlignmentError, match=r"f: 1 row position\(s\) fall outside its table of 1 rows: 1"):
        AlignedIndex(np.array([0, 1]), {"f": np.array([0, 1])}, "ecdh", 2, {"f": 1})
    with pytest.raises(AlignmentError, match=r"bank: row positions must be a 1-D integer array"):
        AlignedIndex(np.array([0.5]), {"f": np.array([0])}, "ecdh", 2, {"f": 1})
    with pytest.raises(ConfigurationError, match=r"partner_rows names \['f'\] but partner_counts names \[\]"):
        AlignedIndex(np.array([0]), {"f": np.array([0])}, "ecdh", 2, {})


def test_aligned_index_equality():
    assert two_partner_index() == two_partner_index()
    other = AlignedIndex(np.array([0]), {"f": np.array([0])}, "ecdh", 1, {"f": 1})
    assert two_partner_index() != other
