"""The shape of one party's pre-binned characteristics: bins per characteristic and missing codes.

A party brings an integer matrix of bin codes, one column per characteristic. Codes of
characteristic ``j`` run over ``0 … n_bins[j] - 1`` and are *ordered*: a split sends the
non-missing codes ``≤ threshold`` left. One code per characteristic may be reserved for
missing values (``missing[j]``; ``-1`` when there is none); it takes no part in the order
and its rows follow the split's learned default direction. The missing code may sit
anywhere in the range (riskfed's binning puts it after the intervals and before the
special values).

The layout is public within a session: the label holder learns how many bins each
partner characteristic has and which code is missing, never the cut points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from riskfed.errors import ConfigurationError, SchemaError, format_rows

NO_MISSING = -1
# Codes are stored as int32 on the wire and in memory; a characteristic with more bins
# than this is not a pre-binned characteristic.
MAX_BINS = 4096


@dataclass(frozen=True)
class BinLayout:
    """Bins per characteristic of one party.

    Attributes
    ----------
    n_bins:
        Number of codes of each characteristic (including its missing code, if any).
    missing:
        The missing code of each characteristic, or ``-1`` for none.
    party:
        Name used in error messages.
    """

    n_bins: tuple[int, ...]
    missing: tuple[int, ...]
    party: str = "party"

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_bins", tuple(int(b) for b in self.n_bins))
        object.__setattr__(self, "missing", tuple(int(m) for m in self.missing))
        if len(self.n_bins) != len(self.missing):
            raise ConfigurationError(
                f"{self.party}: the layout needs one missing code per characteristic "
                f"({len(self.n_bins)} characteristics, {len(self.missing)} missing codes)."
            )
        for j, (nb, miss) in enumerate(zip(self.n_bins, self.missing)):
            if not 1 <= nb <= MAX_BINS:
                raise ConfigurationError(
                    f"{self.party}: characteristic {j} must have between 1 and {MAX_BINS} bins; got {nb}."
                )
            if not (miss == NO_MISSING or 0 <= miss < nb):
                raise ConfigurationError(
                    f"{self.party}: the missing code of characteristic {j} must be -1 or in [0, {nb}); got {miss}."
                )

    @property
    def n_features(self) -> int:
        return len(self.n_bins)

    # Derived arrays are cached: split finding reads them at every node. (The dataclass is
    # frozen, so they cannot go stale.)
    @cached_property
    def offsets(self) -> np.ndarray:
        """Start of each characteristic's bins in the party's flat histogram (length m + 1)."""
        return np.concatenate([[0], np.cumsum(self.n_bins, dtype=np.int64)])

    @property
    def total_bins(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def segment(self) -> np.ndarray:
        """The characteristic of each flat histogram position."""
        return np.repeat(np.arange(self.n_features), np.asarray(self.n_bins, dtype=np.int64))

    @cached_property
    def flat_missing(self) -> np.ndarray:
        """Flat histogram position of each characteristic's missing code, or -1."""
        miss = np.asarray(self.missing, dtype=np.int64)
        return np.where(miss >= 0, self.offsets[:-1] + miss, -1)

    @cached_property
    def non_missing(self) -> np.ndarray:
        """Boolean mask of the flat positions that are ordered (not missing) codes."""
        mask = np.ones(self.total_bins, dtype=bool)
        mask[self.flat_missing[self.flat_missing >= 0]] = False
        return mask

    @classmethod
    def uniform(cls, n_features: int, n_bins: int, *, missing_last: bool = True, party: str = "party") -> "BinLayout":
        """``n_features`` characteristics of ``n_bins`` codes each, the last one for missing."""
        return cls((n_bins,) * n_features, ((n_bins - 1) if missing_last else NO_MISSING,) * n_features, party)

    def to_dict(self) -> dict:
        return {"n_bins": list(self.n_bins), "missing": list(self.missing)}

    @classmethod
    def from_dict(cls, data: dict, *, party: str = "party") -> "BinLayout":
        return cls(tuple(data["n_bins"]), tuple(data["missing"]), party)

    def check_codes(self, codes: np.ndarray, *, names: Sequence[str] | None = None) -> np.ndarray:
        """Validate a code matrix against the layout and return it as int32.

        Raises
        ------
        SchemaError
            Not a 2-D integer matrix, the wrong number of columns, or a code outside its
            characteristic's range (naming the characteristic and up to five rows).
        """
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_features:
            raise SchemaError(
                f"{self.party}: expected a 2-D matrix of bin codes with {self.n_features} columns; "
                f"got shape {codes.shape}.",
                party=self.party,
            )
        if not np.issubdtype(codes.dtype, np.integer):
            raise SchemaError(
                f"{self.party}: bin codes must be integers; got dtype {codes.dtype}.", party=self.party
            )
        bad = (codes < 0) | (codes >= np.asarray(self.n_bins))
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            rows = np.flatnonzero(bad[:, j]).tolist()
            column = names[j] if names is not None else f"characteristic {j}"
            raise SchemaError(
                f"{self.party}: bin codes of {column} must lie in [0, {self.n_bins[j]}); "
                f"row position(s) {format_rows(rows)} do not.",
                party=self.party,
                column=column,
                rows=rows,
            )
        return codes.astype(np.int32, copy=False)
