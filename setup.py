"""Build hook for riskfed's one optional C extension (metadata lives in pyproject.toml).

``riskfed.crypto._native`` makes the key holder's randomness about 1.3x and wide
encrypted gradients about 1.15x faster. It needs a C compiler and GMP's headers (Debian:
``apt-get install gcc libgmp-dev``); where they are missing the build skips it and
riskfed uses its gmpy2 code, which computes the same values
(``riskfed.crypto.native.ENABLED`` says which one is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "riskfed.crypto._native",
            sources=["riskfed/crypto/_native.c"],
            depends=["riskfed/crypto/_ifma.h"],
            libraries=["gmp"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
