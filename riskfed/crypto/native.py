"""riskfed's optional C kernels (``riskfed/crypto/_native.c``) and the switch for them.

The kernels: fixed-base DJN randomness (the key holder's,
:func:`riskfed.crypto.paillier.crt_randomizers`, and a party's own,
:func:`riskfed.crypto.paillier.encrypt`), the bit-plane multi-exponentiation for many
columns (:func:`riskfed.crypto.multiexp.multiexp`), and — on CPUs with AVX-512 IFMA —
window-bucket multi-exponentiation and the bank's residual refresh
(:func:`riskfed.crypto.paillier.affine`), all with eight Montgomery products per vector
instruction sequence (``_ifma.h``). They compute exactly what the gmpy2 code paths
compute, faster; they are built by ``pip install`` where a C compiler and GMP's headers
exist (Debian: ``apt-get install gcc libgmp-dev``) and skipped otherwise.
"""

from __future__ import annotations

import os

import gmpy2

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


def use_ifma() -> bool:
    """Whether riskfed's kernels run on AVX-512 IFMA now (both switches on)."""
    return ENABLED and IFMA


def table_entry_bytes(modulus_bits: int) -> int:
    """Bytes per entry of a C fixed-base table: 52-bit limbs with IFMA, 64-bit otherwise."""
    if use_ifma():
        return 8 * ((modulus_bits + 2 + 51) // 52)
    return 8 * ((modulus_bits + 63) // 64)


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
