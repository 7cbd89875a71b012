"""The deployment commands: ``serve`` (a fintech or the coordinator as a network service)
and ``certs`` (the federation's credentials)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.table import Table

from riskfed.cli.common import (
    _add_network_options,
    _apply_config,
    _identity,
    _limits,
    _positive_float,
    _positive_int,
    console,
    out_console,
)
from riskfed.data.io import read_table
from riskfed.errors import RiskfedError


def cmd_serve(args) -> int:
    import logging

    from riskfed.transport.network import parse_address

    if args.config is not None:
        _apply_config(args)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.role not in ("fintech", "coordinator"):
        raise RiskfedError("serve needs --role fintech or --role coordinator (or [serve] role in --config).")
    listen = parse_address(args.listen or "", what="--listen address")
    identity = _identity(args, "coordinator" if args.role == "coordinator" else args.name)
    if args.role == "coordinator":
        running, accepts = _start_coordinator(args, identity, listen), "bank and fintechs"
    else:
        running, accepts = _start_fintech(args, identity, listen), "bank"
    _serve_until_stopped(args, running, accepts)
    return 0


def _start_coordinator(args, identity, listen):
    from riskfed.deploy.service import start_coordinator

    n_jobs = args.n_jobs if args.n_jobs is not None else -1
    return start_coordinator(identity, listen, limits=_limits(args), allow_insecure_key=args.insecure_test_key, n_jobs=n_jobs)


def _start_fintech(args, identity, listen):
    from riskfed.data.schema import validate_table
    from riskfed.deploy.service import ScoringLimits, start_fintech
    from riskfed.transport.network import parse_address

    missing = [flag for flag, value in (("--data", args.data), ("--id-column", args.id_column), ("--coordinator-at", args.coordinator_at)) if not value]
    if missing:
        raise RiskfedError(f"serve --role fintech needs {', '.join(missing)}.")
    name = identity.role
    table = validate_table(read_table(args.data, party=name, id_column=args.id_column), party=name, id_column=args.id_column, source=str(args.data))
    checkpoints = args.checkpoint_dir or (Path(args.model_dir) / "checkpoints" if args.model_dir else None)
    scoring = ScoringLimits(
        **{k: v for k, v in (("max_rows", args.score_max_rows), ("rate", args.score_rate), ("burst", args.score_burst)) if v is not None}
    )
    return start_fintech(
        identity,
        listen,
        table,
        coordinator_at=parse_address(args.coordinator_at, what="coordinator address"),
        limits=_limits(args),
        model_dir=args.model_dir,
        checkpoint_dir=checkpoints,
        allow_insecure_key=args.insecure_test_key,
        n_jobs=args.n_jobs if args.n_jobs is not None else -1,
        scoring=scoring,
        **({"min_batch_size": args.min_batch_size} if args.min_batch_size is not None else {}),
    )


def _serve_until_stopped(args, running, accepts: str) -> None:
    """Announce the service (and its port, for a pilot's parent process); wait for a signal."""
    import json
    import signal
    import threading

    from riskfed.data.io import atomic_write

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if args.port_file:
            atomic_write(Path(args.port_file), json.dumps({"role": running.name, "address": running.address, "pid": os.getpid()}).encode())
        console.print(f"{running.name} serving on {running.address} (mutual TLS; accepts {accepts}); stop with Ctrl-C.", highlight=False)
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
    console.print(f"{running.name} stopped.", highlight=False)


def cmd_certs(args) -> int:
    from riskfed.certs import describe_certificate, init_federation

    if args.certs_command == "show":
        for path in args.files:
            info = describe_certificate(path)
            out_console.print(
                f"{path}: roles {', '.join(info['roles']) or 'none'}; subject {info['subject']}; issuer {info['issuer']}; "
                f"DNS {', '.join(info['dns']) or '-'}; valid until {info['not_after']}; sha256 {info['sha256'][:16]}…",
                highlight=False,
            )
        return 0
    hosts: dict[str, list[str]] = {}
    for item in args.host or ():
        role, sep, host = item.partition("=")
        if not sep or not host:
            raise RiskfedError(f"--host takes ROLE=HOSTNAME (e.g. fintech_1=fin1.example.org). Got {item!r} instead.")
        hosts.setdefault(role, []).append(host)
    written = init_federation(args.out, fintechs=args.fintechs, hosts=hosts, organization=args.organization, days=args.days, overwrite=args.force)
    table = Table(title=f"Federation credentials in {args.out}", title_justify="left")
    for col in ("party", "certificate", "private key (give only to that party)"):
        table.add_column(col)
    for role, files in written.items():
        table.add_row(role, str(files["cert"]), str(files["key"]))
    out_console.print(table)
    out_console.print(
        "Every party needs ca.crt plus its own .crt and .key. Keep ca.key offline: whoever holds it can issue any role."
    )
    return 0


def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run a fintech or the coordinator as a network service (mutual TLS)")
    p.add_argument("--role", choices=("fintech", "coordinator"), help="which party this process is")
    p.add_argument("--name", help="fintech name (default: the role its certificate names, e.g. fintech_1)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (port 0: any free port)")
    p.add_argument("--data", type=Path, help="fintech: its table (CSV or Parquet)")
    p.add_argument("--id-column", help="fintech: the customer id column")
    p.add_argument("--coordinator-at", metavar="HOST:PORT", help="fintech: where the coordinator listens")
    p.add_argument("--model-dir", type=Path, help="fintech: writes NAME/model.json here when training stops, and loads it at start to answer scoring")
    p.add_argument("--checkpoint-dir", type=Path, help="fintech: per-epoch checkpoints (default MODEL_DIR/checkpoints)")
    p.add_argument("--n-jobs", type=int, help="worker processes for the Paillier kernels (default -1: all cores)")
    p.add_argument("--score-max-rows", type=_positive_int, help="fintech: most applicants per scoring request (default 100000)")
    p.add_argument("--score-rate", type=_positive_float, help="fintech: scoring requests per second (default 5)")
    p.add_argument("--score-burst", type=_positive_int, help="fintech: scoring requests allowed back to back (default 20)")
    p.add_argument("--min-batch-size", type=_positive_int, help="fintech: smallest training batch it serves, whatever the bank's plan says (default 256; smaller batches expose single labels and scores)")
    p.add_argument("--insecure-test-key", action="store_true", help="TEST ONLY: accept Paillier keys below 2048 bits")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO", help="log verbosity (default INFO; logs never hold payloads)")
    p.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    _add_network_options(p)
    p.set_defaults(func=cmd_serve)


def add_certs_parser(sub) -> None:
    p = sub.add_parser("certs", help="create or inspect the federation's TLS credentials")
    certs = p.add_subparsers(dest="certs_command", required=True)
    c = certs.add_parser("init", help="make a private CA and a key + certificate per party")
    c.add_argument("--out", type=Path, required=True, help="directory for ca.crt, ca.key and ROLE.crt/ROLE.key")
    c.add_argument("--fintechs", type=_positive_int, default=1, help="number of fintechs (default 1)")
    c.add_argument("--host", action="append", metavar="ROLE=HOSTNAME", help="extra host name or IP for a party's certificate (repeatable)")
    c.add_argument("--organization", default="riskfed federation", help="organisation name in the certificates")
    c.add_argument("--days", type=_positive_int, default=825, help="validity in days (default 825)")
    c.add_argument("--force", action="store_true", help="overwrite existing files")
    c.set_defaults(func=cmd_certs)
    c = certs.add_parser("show", help="print the roles and names in certificates")
    c.add_argument("files", type=Path, nargs="+")
    c.set_defaults(func=cmd_certs)
