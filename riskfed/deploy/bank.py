"""The bank's side of a networked deployment: addresses, checkpoints, resume.

The bank runs no server: it drives every session by calling the fintech and coordinator
services (:class:`~riskfed.transport.network.NetworkTransport`), exactly as the
in-memory federation calls in-process roles. This module turns the operator's
``--fintech-at`` / ``--coordinator-at`` into a transport and wires the bank's per-epoch
checkpoints and ``--resume`` into :func:`riskfed.session.training.run_training_session`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from riskfed.certs import TlsIdentity, is_role
from riskfed.checkpoint import latest_checkpoint, read_checkpoint, table_fingerprint, write_checkpoint
from riskfed.data.schema import PartyTable
from riskfed.errors import ConfigurationError
from riskfed.protocol.messages import BANK, COORDINATOR, fintech_name
from riskfed.transport.network import NetworkLimits, NetworkTransport, parse_address

log = logging.getLogger("riskfed.bank")


def parse_fintech_addresses(values: Sequence[str], names: Sequence[str] | None = None) -> dict[str, str]:
    """``--fintech-at`` values → fintech name → ``HOST:PORT``.

    Each value is ``NAME=HOST:PORT`` or plain ``HOST:PORT``; plain values are the
    fintechs in order (``names``, default ``fintech_1``, ``fintech_2`` …).
    """
    values = list(values)
    if not values:
        raise ConfigurationError("Give at least one --fintech-at HOST:PORT.")
    out: dict[str, str] = {}
    for k, value in enumerate(values):
        name, sep, address = value.partition("=")
        if not sep:
            name, address = (names[k] if names is not None and k < len(names) else fintech_name(k + 1)), value
        if not is_role(name) or not name.startswith("fintech_"):
            raise ConfigurationError(f"--fintech-at {value!r}: {name!r} is not a fintech name (fintech_1, fintech_2, …).")
        if name in out:
            raise ConfigurationError(f"--fintech-at names {name} twice.")
        out[name] = parse_address(address, what=f"address of {name}")
    if names is not None and sorted(out) != sorted(names):
        raise ConfigurationError(
            f"The model has fintech(s) {', '.join(names)}; --fintech-at gives {', '.join(out)}."
        )
    return out


def bank_transport(
    identity: TlsIdentity,
    fintechs: dict[str, str],
    *,
    coordinator_at: str | None = None,
    limits: NetworkLimits | None = None,
) -> NetworkTransport:
    """The bank's connections to every fintech (and the coordinator, for training)."""
    if identity.role != BANK:
        raise ConfigurationError(f"The bank needs a certificate for 'bank'; this one is for {identity.role!r}.")
    peers = dict(fintechs)
    if coordinator_at is not None:
        peers[COORDINATOR] = parse_address(coordinator_at, what="coordinator address")
    return NetworkTransport(identity, peers, limits=limits)


def default_checkpoint_dir(out_dir: str | Path) -> Path:
    """``OUT.checkpoints`` next to the output directory (``--out`` is written atomically)."""
    out = Path(out_dir)
    return out.with_name(out.name + ".checkpoints")


def checkpoint_writer(directory: str | Path, table: PartyTable) -> Callable[[dict], None]:
    """A ``checkpoint`` callback that writes the bank's state after each epoch."""
    fingerprint = table_fingerprint(table.ids, table.features)

    def write(state: dict) -> None:
        epoch = len(state["history"])
        path = write_checkpoint(directory, BANK, state["session_id"], epoch, state | {"data_fingerprint": fingerprint})
        log.info("bank: session %s checkpointed after epoch %d (%s)", state["session_id"], epoch, path)

    return write


def load_resume_state(directory: str | Path, table: PartyTable) -> dict:
    """The bank's latest complete checkpoint in ``directory``, checked against its data.

    Raises
    ------
    ConfigurationError
        No checkpoint, or one made on different data.
    DataValidationError
        A damaged or tampered checkpoint (see :func:`riskfed.checkpoint.read_checkpoint`).
    """
    latest = latest_checkpoint(directory, BANK)
    if latest is None:
        raise ConfigurationError(f"bank: nothing to resume: no checkpoint in {str(Path(directory) / BANK)!r}.", party=BANK)
    session_id, epoch = latest
    # Checked against its schema and this table's size before the bank sees it.
    state = read_checkpoint(directory, BANK, session_id, epoch, table_rows=table.n_rows)
    if state.get("data_fingerprint") != table_fingerprint(table.ids, table.features):
        raise ConfigurationError(
            f"bank: the checkpoint of session {session_id!r} was made on other data than {table.source or 'this table'}; "
            "resume with the same bank file.",
            party=BANK,
        )
    log.info("bank: resuming session %s after epoch %d", session_id, epoch)
    return state


__all__ = [
    "bank_transport",
    "checkpoint_writer",
    "default_checkpoint_dir",
    "load_resume_state",
    "parse_fintech_addresses",
]
