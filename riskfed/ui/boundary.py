"""The app's one error boundary: every failure becomes a message, never a traceback.

A :class:`~riskfed.errors.RiskfedError` was written for the person who caused it: its
message names the party, column and a few rows, and is shown as it is (prefixed with the
file it concerns when the analyst knows the table by its file name). Anything else is a
bug: the analyst sees a generic message with a short reference, and the server log gets
one line with that reference, the exception's type and where it was raised.

The log line leaves out the exception's text on purpose: an unexpected error may quote
whatever value it tripped over — a customer id, a feature value, a number from a key —
and the standards keep secrets and customer data out of logs. Type and frames locate the
bug; the reference ties the analyst's report to the line.

Use :func:`guarded` around an action (a button's work) and let the entry point wrap the
whole page in it too, so nothing slips through.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from riskfed.errors import RiskfedError

log = logging.getLogger("riskfed.ui")

UNEXPECTED = (
    "Something unexpected went wrong, and nothing was changed. "
    "Please report it with the steps that led here (reference {reference})."
)


def _strip_party(message: str, party: str | None) -> str:
    """Drop a leading "party: " when a file name already says whose table it is."""
    prefix = f"{party}: "
    return message[len(prefix):] if party and message.startswith(prefix) else message


def log_unexpected(exc: BaseException) -> str:
    """Log an unexpected error without its text; return the reference shown to the analyst."""
    reference = secrets.token_hex(4)
    frames = "".join(traceback.StackSummary.extract(traceback.walk_tb(exc.__traceback__)).format())
    log.error("Unexpected %s in the app (reference %s); raised at:\n%s", type(exc).__name__, reference, frames.rstrip())
    return reference


def analyst_message(exc: BaseException, *, label: str | None = None, labels: Mapping[str, str] | None = None) -> str:
    """The message an analyst sees for ``exc``.

    Parameters
    ----------
    exc:
        The error.
    label:
        What the analyst calls the thing that failed (e.g. an uploaded file's name);
        prefixed to the message.
    labels:
        Party name → label, used instead of ``label`` when the error names that party
        (uploads: ``{"fintech_2": "partner.csv"}``).

    Returns
    -------
    str
        The riskfed error's own message, or the generic message for anything else
        (which is logged once, see :func:`log_unexpected`).
    """
    party = exc.party if isinstance(exc, RiskfedError) else None
    prefix = (labels or {}).get(party or "", label)
    if isinstance(exc, RiskfedError):
        text = _strip_party(str(exc), party) if prefix else str(exc)
    else:
        text = UNEXPECTED.format(reference=log_unexpected(exc))
    return f"{prefix}: {text}" if prefix else text


@dataclass
class Outcome:
    """What :func:`guarded` caught (``None`` when the block finished)."""

    error: Exception | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@contextmanager
def guarded(
    where=None,
    *,
    label: str | None = None,
    labels: Mapping[str, str] | None = None,
    places: Mapping[str, object] | None = None,
) -> Iterator[Outcome]:
    """Run a block; show any error it raises as an error message in ``where``.

    Streamlit's own control flow (``st.rerun``, ``st.switch_page``, ``st.stop``) passes
    through: it is not an :class:`Exception`.

    Parameters
    ----------
    where:
        The container for the message (default: the current one).
    label, labels:
        As in :func:`analyst_message`.
    places:
        Party name → container, for an error that names that party (so a problem
        shows under the file it is about).

    Examples
    --------
    >>> with guarded(box, label=upload.name) as outcome:  # doctest: +SKIP
    ...     frame = read(upload)
    >>> if outcome.failed:  # doctest: +SKIP
    ...     return
    """
    outcome = Outcome()
    try:
        yield outcome
    except Exception as exc:  # noqa: BLE001 - the boundary: a message, never a traceback
        outcome.error = exc
        party = exc.party if isinstance(exc, RiskfedError) else None
        where = (places or {}).get(party or "", where)
        (where if where is not None else st).error(analyst_message(exc, label=label, labels=labels))
