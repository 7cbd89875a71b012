"""Number formats and names used on every page, so the app reads consistently.

Conventions (credit-risk usage):

* AUC and Brier score as decimals (``0.843``, ``0.067``); KS, Gini, rates and shares as
  percentages (``52.3%``); AUC differences as signed decimals (``+0.128``).
* Probabilities of default as percentages with one decimal (``6.4%``), or two below 1%.
* Scorecard points as whole points (``565 pts``).
* Bytes in decimal units (``1.9 MB``); durations in seconds, or minutes and seconds.
"""

from __future__ import annotations

import math
import re

_PARTY = re.compile(r"^fintech_(\d+)$")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value) -> str:
    """``5000`` → ``"5,000"``."""
    return "–" if _missing(value) else f"{int(value):,}"


def percent(value, digits: int = 1) -> str:
    """``0.7`` → ``"70.0%"``."""
    return "–" if _missing(value) else f"{100.0 * float(value):.{digits}f}%"


def probability(value) -> str:
    """A probability of default: ``0.064`` → ``"6.4%"``, ``0.0042`` → ``"0.42%"``."""
    if _missing(value):
        return "–"
    value = float(value)
    return percent(value, 2 if value < 0.01 else 1)


def decimal(value, digits: int = 3) -> str:
    """``0.84253`` → ``"0.843"``."""
    return "–" if _missing(value) else f"{float(value):.{digits}f}"


def signed(value, digits: int = 3) -> str:
    """``0.128`` → ``"+0.128"``; ``-0.01`` → ``"−0.010"`` (a true minus sign)."""
    if _missing(value):
        return "–"
    text = f"{float(value):+.{digits}f}"
    return text.replace("-", "−")


def points(value) -> str:
    """Scorecard points: ``564.5`` → ``"565 pts"``."""
    return "–" if _missing(value) else f"{float(value):,.0f} pts"


def lift(value) -> str:
    """Lift over the average: ``2.345`` → ``"2.35×"``."""
    return "–" if _missing(value) else f"{float(value):.2f}×"


def data_size(n_bytes) -> str:
    """Decimal units: ``1_930_000`` → ``"1.9 MB"``; ``512`` → ``"512 B"``."""
    if _missing(n_bytes):
        return "–"
    n = float(n_bytes)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def duration(seconds) -> str:
    """``0.84`` → ``"0.8 s"``; ``12.3`` → ``"12 s"``; ``65`` → ``"1 min 05 s"``."""
    if _missing(seconds):
        return "–"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    minutes, rest = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def party(name: str) -> str:
    """Display name of a party: ``"fintech_2"`` → ``"Fintech 2"``, ``"bank"`` → ``"Bank"``."""
    match = _PARTY.match(name)
    if match:
        return f"Fintech {match.group(1)}"
    return name.replace("_", " ").capitalize()


def column_label(name: str) -> str:
    """A feature column as a label: ``"debt_to_income"`` → ``"Debt to income"``."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else str(name)


def key_fingerprint(fingerprint: str | None) -> str:
    """Group a hex fingerprint in fours for reading aloud: ``"ab12cd34"`` → ``"ab12 cd34"``."""
    text = str(fingerprint or "")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4)) or "–"
