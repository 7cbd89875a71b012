"""``riskfed`` — the command line: pilot, run, score, generate, serve, certs.

``serve`` runs a fintech or the coordinator as a long-running network service; ``run``
and ``score`` drive sessions over the network with ``--fintech-at`` and
``--coordinator-at``; ``certs`` makes the federation's credentials; ``pilot
--processes`` runs every party as its own process (docs/deployment.md).

A thin layer over the public API. User mistakes end in one readable line on stderr and
exit status 2 (never a traceback); Ctrl-C ends with status 130; nothing half-written is
left in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from riskfed import __version__, settings
from riskfed.data.io import atomic_output_dir, check_output_dir, read_table, write_json, write_table
from riskfed.errors import RiskfedError
from riskfed.session.progress import Cancelled, ProgressEvent

console = Console(stderr=True)
out_console = Console()

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


# -- argument types ------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


# The options of the job (run, pilot), generated from riskfed.settings: same defaults,
# checks and help as the library's.
_JOB_OPTIONS = [p.name for p in settings.params(owner="estimator", cli=True)] + ["centralized"]
_SEED_HELP = {
    # A pilot's data are synthetic: its printed figures stay reproducible.
    "pilot": "seed of the synthetic data and of the training split and batch order (the pilot's figures are "
    "reproducible; a known seed reveals the split, so never fix one on real data)",
}


def _add_training_options(p: argparse.ArgumentParser, *, command: str) -> None:
    overrides = {"random_state": 0} if command == "pilot" else {}
    helps = {"random_state": _SEED_HELP[command]} if command in _SEED_HELP else {}
    for group, about in settings.GROUPS.items():
        names = [n for n in _JOB_OPTIONS if settings.param(n).group == group]
        if names:
            settings.add_cli_options(p.add_argument_group(f"{group}: {about}"), names, defaults=overrides, helps=helps)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _estimator(args):
    from riskfed.models.estimator import VerticalLogisticRegression

    values = settings.cli_values(args, _JOB_OPTIONS)
    values.pop("centralized")
    return VerticalLogisticRegression(**values)


class _Bars:
    """Rich progress bars fed by :class:`ProgressEvent`."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=quiet,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        task = self.tasks.get(event.phase)
        if task is None:
            task = self.progress.add_task(event.phase, total=event.total, info="")
            self.tasks[event.phase] = task
        info = event.message
        if event.loss is not None:
            info += f"  loss {event.loss:.4f}"
        self.progress.update(task, completed=event.done, total=event.total, info=info)

    def step(self, phase: str, done: int, total: int | None, info: str = "") -> None:
        self(ProgressEvent(phase, done, total or max(done, 1), info))


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _print_comparison(report: dict) -> None:
    from riskfed.job import MODEL_NAMES

    table = Table(title="Holdout performance (shared customers)", title_justify="left")
    table.add_column("model")
    for col in ("AUC", "KS", "Gini", "Brier"):
        table.add_column(col, justify="right")
    for name, m in report["metrics"].items():
        table.add_row(MODEL_NAMES.get(name, name), f"{m['auc']:.4f}", f"{m['ks']:.4f}", f"{m['gini']:.4f}", f"{m['brier']:.4f}")
    out_console.print(table)
    a = report["alignment"]
    t = report["training"]
    c = report["comparison"]
    out_console.print(
        f"Alignment ({a['method']}): bank {a['bank_rows']:,} rows, fintech(s) "
        + ", ".join(f"{n:,}" for n in a["fintech_rows"])
        + f" rows → {a['intersection']:,} shared ({a['match_rate']:.1%} of the bank) in {a['seconds']:.1f} s"
    )
    sent = ", ".join(f"{p} {_size(b)}" for p, b in t["bytes_sent"].items())
    out_console.print(
        f"Training: {t['key_bits']}-bit Paillier key {t['key_fingerprint']}, {t['epochs']} epoch(s), batch {t['batch_size']}, "
        f"{t['seconds']:.1f} s; sent: {sent}"
    )
    line = f"AUC lift from the fintech data: {c['auc_lift_over_bank_only']:+.4f}"
    if "auc_gap_to_centralized" in c:
        line += f"; gap to the centralised reference: {c['auc_gap_to_centralized']:+.4f}"
    out_console.print(line)


# -- commands --------------------------------------------------------------------------
def cmd_pilot(args) -> int:
    from riskfed.data.synthetic import generate_pilot
    from riskfed.job import run_pipeline
    from riskfed.scoring.score import score_applicants

    check_output_dir(args.out)
    if args.processes:
        return _pilot_processes(args)
    t0 = time.perf_counter()
    with _Bars(args.quiet) as bars:
        bars.step("data", 0, 1, f"generating {args.customers:,} customers")
        pilot = generate_pilot(args.customers, overlap=args.overlap, fintechs=args.fintechs, seed=args.seed)
        bars.step("data", 1, 1, "done")
        result = run_pipeline(
            pilot.bank,
            list(pilot.fintechs),
            id_column=pilot.id_column,
            label_column=pilot.label_column,
            estimator=_estimator(args),
            centralized=args.centralized,
            progress=bars,
        )
        bars.step("scoring", 0, 1, f"{len(pilot.applicants):,} new applicants")
        scores = score_applicants(result.estimator.model_, pilot.applicants, list(pilot.fintechs), n_jobs=1)
        bars.step("scoring", 1, 1, "done")
    _save_pilot(args, pilot, result, scores, result.estimator.model_)
    _print_comparison(result.report)
    _print_pilot_end(args, scores, t0)
    return 0


def _save_pilot(args, pilot, result, scores, model) -> None:
    """Data, report, every party's model part and applicant scores, all-or-nothing."""
    from riskfed.data.synthetic import write_pilot

    with atomic_output_dir(args.out) as stage:
        write_pilot(pilot, stage / "data", formats=("parquet",) if args.customers > 200_000 else ("parquet", "csv"))
        write_json(result.report, stage / "report.json")
        model.save(stage / "model")
        write_table(scores, stage / "applicant_scores.csv")


def _print_pilot_end(args, scores, t0: float, *, how: str = "") -> None:
    fed = int((scores["model"] == "federated").sum())
    out_console.print(
        f"Scored {len(scores):,} new applicants{how} ({fed:,} federated, {len(scores) - fed:,} by the bank-only fallback)."
    )
    out_console.print(f"Wrote {args.out}/report.json, {args.out}/model/, {args.out}/data/ and {args.out}/applicant_scores.csv in {time.perf_counter() - t0:.1f} s.")


def cmd_run(args) -> int:
    from riskfed.job import run_pipeline

    if args.config is not None:
        _apply_config(args)
    check_output_dir(args.out)
    if args.fintech_at or args.coordinator_at:
        return _run_networked(args)
    if not args.fintech:
        raise RiskfedError("Give each fintech's table with --fintech FILE, or run over the network with --fintech-at HOST:PORT and --coordinator-at HOST:PORT.")
    if args.resume:
        raise RiskfedError("--resume continues a networked run (--fintech-at/--coordinator-at); an in-memory run simply starts again.")
    bank = read_table(args.bank, party="bank", id_column=args.id_column)
    fintech_ids = args.fintech_id_column or [args.id_column] * len(args.fintech)
    if len(fintech_ids) != len(args.fintech):
        raise RiskfedError(f"Got {len(args.fintech)} --fintech file(s) but {len(fintech_ids)} --fintech-id-column value(s).")
    fintechs = [read_table(path, party=f"fintech_{k + 1}", id_column=col) for k, (path, col) in enumerate(zip(args.fintech, fintech_ids))]
    sources = {"bank": str(args.bank)} | {f"fintech_{k + 1}": str(p) for k, p in enumerate(args.fintech)}
    with _Bars(args.quiet) as bars:
        result = run_pipeline(
            bank,
            fintechs,
            id_column=args.id_column,
            label_column=args.label_column,
            fintech_id_columns=fintech_ids,
            categorical=args.categorical or (),
            out_dir=args.out,
            centralized=args.centralized,
            estimator=_estimator(args),
            progress=bars,
            sources=sources,
        )
    _print_comparison(result.report)
    out_console.print(f"Wrote {args.out}/report.json and {args.out}/model/ (one part per party).")
    return 0


def cmd_score(args) -> int:
    from riskfed.models.artifact import FederatedModel
    from riskfed.scoring.score import score_file
    from riskfed.scoring.scorecard import Scorecard

    if args.config is not None:
        _apply_config(args)
    model = FederatedModel.load(args.model)
    names = model.fintech_names
    id_column = args.id_column or model.bank.get("id_column")
    transport = _scoring_transport(args, names)
    if transport is None and len(args.fintech or ()) != len(names):
        raise RiskfedError(
            f"The model was trained with {len(names)} fintech(s) ({', '.join(names)}); got {len(args.fintech or ())} --fintech file(s) "
            "(or score over the network with --fintech-at HOST:PORT)."
        )
    tables = None
    if transport is None:
        fintech_ids = args.fintech_id_column or [id_column] * len(names)
        from riskfed.data.schema import validate_table

        tables = {
            name: validate_table(read_table(path, party=name, id_column=col), party=name, id_column=col)
            for name, path, col in zip(names, args.fintech, fintech_ids)
        }
    card = model.scorecard
    if args.base_points or args.base_odds or args.pdo:
        card = Scorecard(
            base_points=args.base_points or card.base_points,
            base_odds=args.base_odds or card.base_odds,
            pdo=args.pdo or card.pdo,
        )
    t0 = time.perf_counter()
    with _Bars(args.quiet) as bars:
        summary = score_file(
            model,
            args.bank,
            tables,
            args.out,
            id_column=id_column,
            psi=args.psi,
            chunk_rows=args.chunk_rows,
            scorecard=card,
            n_jobs=args.n_jobs,
            transport=transport,
            progress=lambda rows, total: bars.step("scoring", rows, total, f"{rows:,} applicants"),
        )
    if transport is not None:
        transport.close()
    s = summary.to_dict()
    out_console.print(
        f"Scored {s['rows']:,} applicants in {time.perf_counter() - t0:.1f} s: {s['scored_federated']:,} by the federated model, "
        f"{s['scored_fallback']:,} by the bank-only fallback (not known to every fintech). "
        f"Points: {card.base_points:g} at odds {card.base_odds:g}:1, {card.pdo:g} points to double the odds."
    )
    for col, count in s["unseen_categories"].items():
        console.print(f"[yellow]note:[/] {count:,} applicant(s) have a {col!r} value not seen in training (scored as no level).")
    out_console.print(f"Wrote {args.out}.")
    return 0


def cmd_generate(args) -> int:
    from riskfed.data.synthetic import generate_pilot, write_pilot

    pilot = generate_pilot(args.customers, overlap=args.overlap, fintechs=args.fintechs, applicants=args.applicants, seed=args.seed)
    written = write_pilot(pilot, args.out, formats=tuple(args.formats.split(",")))
    for kind, paths in written.items():
        out_console.print(f"{kind}: " + ", ".join(str(p) for p in paths))
    return 0


# -- networked deployment ------------------------------------------------------------------
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _add_network_options(p: argparse.ArgumentParser):
    g = p.add_argument_group("network (parties on other hosts; docs/deployment.md)")
    g.add_argument("--config", type=Path, help="TOML file with [tls], [peers], [network] … (flags override it)")
    g.add_argument("--cert", type=Path, help="this party's certificate (PEM; names its role)")
    g.add_argument("--key", type=Path, help="this party's private key (PEM)")
    g.add_argument("--ca", type=Path, help="the federation's CA certificate(s) (PEM)")
    g.add_argument("--timeout", type=_positive_float, help="seconds to wait for any one reply before failing (default 300)")
    g.add_argument("--max-message-mb", type=_positive_float, help="largest message accepted or sent, in MiB (default 64: PSI lists of 1M ids)")
    g.add_argument("--max-batch-message-mb", type=_positive_float, help="largest per-batch message, in MiB (default 8)")
    return g


def _apply_config(args) -> None:
    from riskfed.deploy.config import apply_config

    apply_config(args, args.config)


def _limits(args):
    from riskfed.transport.network import (
        DEFAULT_MAX_BATCH_MESSAGE_BYTES,
        DEFAULT_MAX_MESSAGE_BYTES,
        DEFAULT_TIMEOUT,
        MIB,
        NetworkLimits,
    )

    big = int(args.max_message_mb * MIB) if getattr(args, "max_message_mb", None) else DEFAULT_MAX_MESSAGE_BYTES
    small = int(args.max_batch_message_mb * MIB) if getattr(args, "max_batch_message_mb", None) else min(DEFAULT_MAX_BATCH_MESSAGE_BYTES, big)
    return NetworkLimits(max_message_bytes=big, max_batch_message_bytes=small, timeout=getattr(args, "timeout", None) or DEFAULT_TIMEOUT)


def _identity(args, role: str | None):
    from riskfed.certs import load_identity

    return load_identity(args.cert, args.key, args.ca, expected_role=role)


def _run_networked(args) -> int:
    from riskfed.data.schema import validate_table
    from riskfed.deploy.bank import (
        bank_transport,
        checkpoint_writer,
        default_checkpoint_dir,
        load_resume_state,
        parse_fintech_addresses,
    )
    from riskfed.job import run_pipeline

    if args.fintech:
        raise RiskfedError("Give either --fintech files (in-memory run) or --fintech-at addresses (networked run), not both.")
    if not args.fintech_at or not args.coordinator_at:
        raise RiskfedError("A networked run needs --fintech-at HOST:PORT (one per fintech) and --coordinator-at HOST:PORT.")
    peers = parse_fintech_addresses(args.fintech_at)
    identity = _identity(args, "bank")
    limits = _limits(args)
    frame = read_table(args.bank, party="bank", id_column=args.id_column)
    table = validate_table(
        frame, party="bank", id_column=args.id_column, label_column=args.label_column, categorical=args.categorical or (), source=str(args.bank)
    )
    checkpoints = args.checkpoint_dir or default_checkpoint_dir(args.out)
    resume = load_resume_state(checkpoints, table) if args.resume else None
    with bank_transport(identity, peers, coordinator_at=args.coordinator_at, limits=limits) as transport, _Bars(args.quiet) as bars:
        result = run_pipeline(
            table,
            list(peers),
            id_column=args.id_column,
            label_column=args.label_column,
            out_dir=args.out,
            estimator=_estimator(args),
            progress=bars,
            transport=transport,
            checkpoint=checkpoint_writer(checkpoints, table),
            resume=resume,
            extra_report={"deployment": {"mode": "network", "parties": {"coordinator": args.coordinator_at} | peers}},
        )
    _print_comparison(result.report)
    out_console.print(
        f"Wrote {args.out}/report.json and {args.out}/model/bank/ (each fintech service wrote its own part); "
        f"checkpoints in {checkpoints}."
    )
    return 0


def _scoring_transport(args, names: list[str]):
    """A network transport to the fintech services when --fintech-at is given, else None."""
    if not args.fintech_at:
        return None
    from riskfed.deploy.bank import bank_transport, parse_fintech_addresses

    if args.fintech:
        raise RiskfedError("Give either --fintech files (in-memory scoring) or --fintech-at addresses, not both.")
    peers = parse_fintech_addresses(args.fintech_at, names)
    return bank_transport(_identity(args, "bank"), peers, limits=_limits(args))


def _pilot_processes(args) -> int:
    from riskfed.data.synthetic import generate_pilot
    from riskfed.deploy.pilot import run_process_pilot
    from riskfed.models.artifact import FederatedModel
    from riskfed.transport.network import DEFAULT_TIMEOUT

    t0 = time.perf_counter()
    with _Bars(args.quiet) as bars:
        bars.step("data", 0, 1, f"generating {args.customers:,} customers")
        pilot = generate_pilot(args.customers, overlap=args.overlap, fintechs=args.fintechs, seed=args.seed)
        bars.step("data", 1, 1, "starting one process per party")
        result, scores, parts = run_process_pilot(
            pilot,
            estimator=_estimator(args),
            timeout=args.timeout or DEFAULT_TIMEOUT,
            n_jobs=args.n_jobs,
            insecure_test_key=args.insecure_test_key,
            progress=bars,
        )
    # Each fintech process wrote its own part; on one machine they are gathered here.
    _save_pilot(args, pilot, result, scores, FederatedModel(result.estimator.model_.bank, parts))
    _print_comparison(result.report)
    parties = result.report["deployment"]["parties"]
    out_console.print("Parties ran as processes: " + ", ".join(f"{n} (pid {p['pid']}, {p['address']})" for n, p in parties.items()) + "; the bank drove them from this process.")
    _print_pilot_end(args, scores, t0, how=" over the network")
    return 0


def cmd_serve(args) -> int:
    import json
    import logging
    import signal
    import threading

    from riskfed.data.io import atomic_write
    from riskfed.data.schema import validate_table
    from riskfed.deploy.service import ScoringLimits, start_coordinator, start_fintech
    from riskfed.transport.network import parse_address

    if args.config is not None:
        _apply_config(args)
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.role not in ("fintech", "coordinator"):
        raise RiskfedError("serve needs --role fintech or --role coordinator (or [serve] role in --config).")
    listen = parse_address(args.listen or "", what="--listen address")
    identity = _identity(args, "coordinator" if args.role == "coordinator" else args.name)
    limits = _limits(args)
    if args.role == "coordinator":
        running = start_coordinator(
            identity,
            listen,
            limits=limits,
            allow_insecure_key=args.insecure_test_key,
            n_jobs=args.n_jobs if args.n_jobs is not None else -1,
        )
        accepts = "bank and fintechs"
    else:
        missing = [flag for flag, value in (("--data", args.data), ("--id-column", args.id_column), ("--coordinator-at", args.coordinator_at)) if not value]
        if missing:
            raise RiskfedError(f"serve --role fintech needs {', '.join(missing)}.")
        name = identity.role
        table = validate_table(read_table(args.data, party=name, id_column=args.id_column), party=name, id_column=args.id_column, source=str(args.data))
        checkpoints = args.checkpoint_dir or (Path(args.model_dir) / "checkpoints" if args.model_dir else None)
        scoring = ScoringLimits(
            **{k: v for k, v in (("max_rows", args.score_max_rows), ("rate", args.score_rate), ("burst", args.score_burst)) if v is not None}
        )
        running = start_fintech(
            identity,
            listen,
            table,
            coordinator_at=parse_address(args.coordinator_at, what="coordinator address"),
            limits=limits,
            model_dir=args.model_dir,
            checkpoint_dir=checkpoints,
            allow_insecure_key=args.insecure_test_key,
            n_jobs=args.n_jobs if args.n_jobs is not None else -1,
            scoring=scoring,
            **({"min_batch_size": args.min_batch_size} if args.min_batch_size is not None else {}),
        )
        accepts = "bank"
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
    return 0


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


def _add_network_parsers(sub) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskfed",
        description="Privacy-preserving credit-risk modelling: a bank and fintech partners train one default model "
        "without sharing data (PSI + Paillier-encrypted vertical logistic regression).",
    )
    parser.add_argument("--version", action="version", version=f"riskfed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pilot", help="generate synthetic bank and fintech data and run the whole job on it")
    settings.add_cli_options(p, ["customers", "overlap", "fintechs"])
    p.add_argument("--out", type=Path, default=Path("pilot_out"), help="output directory (default pilot_out)")
    p.add_argument("--processes", action="store_true", help="run each party as its own OS process on loopback, talking gRPC over mutual TLS with generated certificates")
    p.add_argument("--timeout", type=_positive_float, default=None, help="with --processes: seconds to wait for any one reply (default 300)")
    _add_training_options(p, command="pilot")
    p.set_defaults(func=cmd_pilot)

    p = sub.add_parser("run", help="run the job on your own bank and fintech files (CSV or Parquet)")
    p.add_argument("--bank", type=Path, required=True, help="the bank's table (ids, labels, features)")
    p.add_argument("--fintech", type=Path, action="append", help="a fintech's table; repeat for several (in-memory run)")
    p.add_argument("--id-column", required=True, help="customer id column")
    p.add_argument("--label-column", required=True, help="the bank's 0/1 default column")
    p.add_argument("--fintech-id-column", action="append", help="a fintech's id column when it differs (one per --fintech)")
    p.add_argument("--categorical", action="append", help="bank column to treat as categorical (repeatable)")
    p.add_argument("--out", type=Path, default=Path("riskfed_out"), help="output directory (default riskfed_out)")
    _add_training_options(p, command="run")
    g = _add_network_options(p)
    g.add_argument("--fintech-at", action="append", metavar="[NAME=]HOST:PORT", help="a fintech service (riskfed serve --role fintech); repeat for several, in order")
    g.add_argument("--coordinator-at", metavar="HOST:PORT", help="the coordinator service (riskfed serve --role coordinator)")
    g.add_argument("--checkpoint-dir", type=Path, help="where the bank checkpoints after every epoch (default OUT.checkpoints)")
    g.add_argument("--resume", action="store_true", help="continue the session in --checkpoint-dir from its last complete epoch")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score new applicants with a saved model")
    p.add_argument("--model", type=Path, required=True, help="model directory written by run/pilot (DIR/model)")
    p.add_argument("--bank", type=Path, required=True, help="the bank's applicant table (ids + the model's bank features)")
    p.add_argument("--fintech", type=Path, action="append", help="each fintech's current table, in model order (in-memory scoring)")
    p.add_argument("--out", type=Path, required=True, help="scores file (.csv or .parquet)")
    p.add_argument("--id-column", help="applicant id column (default: the training id column)")
    p.add_argument("--fintech-id-column", action="append", help="a fintech's id column when it differs")
    settings.add_cli_options(p, ["scoring_psi", "chunk_rows"])
    # The scale saved with the model unless one of these is given.
    model_scale = "(default: the model's)"
    settings.add_cli_options(
        p, ["base_points", "base_odds", "pdo"], defaults=dict.fromkeys(["base_points", "base_odds", "pdo"]),
        helps={n: f"{settings.param(n).help} {model_scale}" for n in ("base_points", "base_odds", "pdo")},
    )
    settings.add_cli_options(p, ["n_jobs"], defaults={"n_jobs": 1})
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = _add_network_options(p)
    g.add_argument("--fintech-at", action="append", metavar="[NAME=]HOST:PORT", help="score with the fintech services at these addresses (model order)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("generate", help="write a synthetic data set (e.g. to regenerate sample_data/)")
    # sample_data/ holds 2,000 customers: small enough to keep in the repository.
    settings.add_cli_options(p, ["customers", "overlap", "fintechs"], defaults={"customers": 2_000})
    p.add_argument("--applicants", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_generate)
    _add_network_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Cancelled as exc:
        console.print(f"[yellow]cancelled:[/] {exc}")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        console.print("[yellow]cancelled[/] (nothing was written)")
        return EXIT_INTERRUPTED
    except RiskfedError as exc:
        # One line, never wrapped at the terminal width: scripts grep for it.
        console.print("[bold red]error:[/] " + _escape(" ".join(str(exc).splitlines())), highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except OSError as exc:  # disk full, permissions changed mid-run: nothing was moved into --out
        console.print("[bold red]error:[/] " + _escape(f"{exc.strerror or exc}: {exc.filename or ''}"), highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
