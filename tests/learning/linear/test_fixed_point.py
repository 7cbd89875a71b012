"""Mask and slot widths for up to 63 fintechs (riskfed.learning.linear.fixed_point): the
masks hide every gradient and packed slots never carry."""

from __future__ import annotations

import math

import pytest

from riskfed.crypto import paillier
from riskfed.crypto.encoding import STATISTICAL_SECURITY_BITS
from riskfed.errors import ConfigurationError
from riskfed.learning.linear.fixed_point import draw_masks, gradient_bound_bits, mask_bits, packing_slot_bits
from riskfed.learning.linear.hyperparameters import MAX_FINTECHS, Hyperparameters

SESSION = "s" * 32


# -- the schedule --------------------------------------------------------------------------


def test_mask_bits_cover_every_party_and_the_limit_is_enforced():
    rows = 1280
    for parties in range(2, MAX_FINTECHS + 2):
        extra = math.ceil(math.log2(parties))
        assert gradient_bound_bits(rows, parties) == gradient_bound_bits(rows, 2) - 1 + extra
        assert mask_bits(rows, parties) == gradient_bound_bits(rows, parties) + STATISTICAL_SECURITY_BITS
    for parties in (1, MAX_FINTECHS + 2):
        with pytest.raises(ConfigurationError, match="the bank and 1 to 63 fintechs"):
            gradient_bound_bits(rows, parties)
    with pytest.raises(ConfigurationError, match=r"'parties' parameter of VerticalLogisticRegression must be an int in the range \[2, 64\]"):
        Hyperparameters(parties=65)


@pytest.mark.parametrize("parties", [2, 3, 64])
def test_no_carry_between_packed_slots_at_the_worst_gradient(keypair, parties):
    """|g| just below the bound, masks at both ends of their range: packed, decrypted and
    unpacked, every slot gives back exactly g + m."""
    pk, sk = keypair
    hyper = Hyperparameters(batch_size=256, parties=parties)
    rows = hyper.batch_size + hyper.min_batch_size - 1  # the largest batch a folded tail makes
    bound = (1 << gradient_bound_bits(rows, parties)) - 1
    bits = mask_bits(rows, parties)
    low, high = 1 << (bits - STATISTICAL_SECURITY_BITS), (1 << bits) - 1
    gradients = [bound, -bound, bound, -bound, 0, 1]
    masks = [high, low, low, high, *draw_masks(2, bits)]
    masked = paillier.add_plain(pk, paillier.encrypt(pk, gradients), masks)
    packed = paillier.pack(pk, masked, packing_slot_bits(hyper))
    slots = paillier.unpack(paillier.decrypt(sk, packed, signed=False), len(gradients), packing_slot_bits(hyper), pk)
    assert [s - m for s, m in zip(slots, masks)] == gradients
