"""riskfed's optional C kernels (``riskfed/crypto/_native.c``) and the switch for them.

The kernels: fixed-base DJN randomness (the key holder's,
:func:`riskfed.crypto.randomness.crt_randomizers`, and a party's own,
:func:`riskfed.crypto.paillier.encrypt`), the bit-plane multi-exponentiation for many
columns (:func:`riskfed.crypto.multiexp.multiexp`), and — on CPUs with AVX-512 IFMA —
window-bucket multi-exponentiation and the bank's residual refresh
(:func:`riskfed.crypto.paillier.affine`), all with eight Montgomery products per vector
instruction sequence (``_ifma.h``). They compute exactly what the gmpy2 code paths
compute, faster; they are built by ``pip install`` where a C compiler and GMP's headers
exist (Debian: ``apt-get install gcc libgmp-dev``) and skipped otherwise.

Sizes: the IFMA kernels take moduli of up to :data:`IFMA_MAX_BITS` (8,318) bits, so
``n^2`` of keys up to 4,158 bits; a larger modulus goes to GMP's kernels (tables, bit
planes) or to gmpy2, which take any size (:func:`use_ifma` with the modulus decides).
Every kernel checks its counts and the buffer sizes made from them before allocating;
:func:`refusals` turns what it refuses into riskfed's errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import gmpy2

from riskfed.errors import CryptoError, EncodingOverflowError

try:
    from riskfed.crypto import _native as kernels
except ImportError:  # built without a C compiler or GMP's headers
    kernels = None

#: Whether riskfed uses the C kernels: they were built, and ``RISKFED_NATIVE`` is not ``0``.
ENABLED = kernels is not None and os.environ.get("RISKFED_NATIVE", "1") != "0"

#: Whether the C tables multiply with AVX-512 IFMA, eight products at a time (about 2.5x
#: GMP's Montgomery product on the project's machine, see ``_ifma.h``): the kernels are
#: enabled, the CPU has the instructions, and ``RISKFED_IFMA`` is not ``0``.
IFMA = ENABLED and kernels.ifma_supported() and os.environ.get("RISKFED_IFMA", "1") != "0"


#: The largest modulus (bits) the IFMA kernels take: ``n^2`` of a 4096-bit key has 8,192.
IFMA_MAX_BITS = kernels.IFMA_MAX_BITS if kernels is not None else 0


def use_ifma(modulus=None) -> bool:
    """Whether riskfed's kernels run on AVX-512 IFMA now (both switches on) and, given a
    ``modulus``, whether the IFMA kernels take it (larger ones go to GMP or gmpy2)."""
    if not (ENABLED and IFMA):
        return False
    return modulus is None or int(modulus).bit_length() <= IFMA_MAX_BITS


def table_entry_bytes(modulus_bits: int) -> int:
    """Bytes per entry of a C fixed-base table: 52-bit limbs with IFMA, 64-bit otherwise."""
    if use_ifma() and modulus_bits <= IFMA_MAX_BITS:
        return 8 * ((modulus_bits + 2 + 51) // 52)
    return 8 * ((modulus_bits + 63) // 64)


@contextmanager
def refusals(kernel: str) -> Iterator[None]:
    """Run a C kernel call (and the packing of its input) with riskfed's errors.

    The kernels refuse counts whose buffer sizes overflow, and values wider than the
    modulus fail to pack (``OverflowError``, raised before anything is allocated): that
    becomes :class:`~riskfed.errors.EncodingOverflowError`. Any other refusal
    (``ValueError``: an even modulus, unreduced residues, negative exponents, mismatched
    lengths) becomes :class:`~riskfed.errors.CryptoError`. Both name the kernel.
    """
    try:
        yield
    except OverflowError as exc:
        raise EncodingOverflowError(f"riskfed's C kernel {kernel!r} cannot take input of this size: {exc}.") from exc
    except ValueError as exc:
        raise CryptoError(f"riskfed's C kernel {kernel!r} refused its input: {exc}.") from exc


def modulus_bytes(modulus) -> tuple[bytes, int]:
    """The modulus as the kernels take it (little-endian, unpadded) and the byte width of
    each residue they take and return (whole 64-bit limbs)."""
    bits = int(modulus).bit_length()
    return int(modulus).to_bytes((bits + 7) // 8, "little"), -(-bits // 64) * 8


def residue_bytes(values, width: int) -> bytes:
    """Residues as the kernels take them: consecutive little-endian, ``width`` bytes each."""
    return b"".join(gmpy2.mpz(v).to_bytes(width, "little") for v in values)


def residues(blob: bytes, width: int) -> list:
    """The kernels' output: consecutive little-endian residues of ``width`` bytes each."""
    frm = gmpy2.mpz.from_bytes
    return [frm(blob[i : i + width], "little") for i in range(0, len(blob), width)]


def mode() -> str:
    """Which code multiplies in fixed-base tables: ``"ifma"``, ``"mpn"`` (GMP) or ``"gmpy2"``."""
    if not ENABLED:
        return "gmpy2"
    return "ifma" if use_ifma() else "mpn"
