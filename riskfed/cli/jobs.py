"""The job's commands: ``pilot``, ``run``, ``score`` and ``generate`` (in memory, or
driving services on other hosts with ``--fintech-at`` / ``--coordinator-at``)."""

from __future__ import annotations

import time
from pathlib import Path

from riskfed import settings
from riskfed.cli.common import (
    _add_network_options,
    _add_training_options,
    _apply_config,
    _Bars,
    _estimator,
    _identity,
    _limits,
    _positive_float,
    _print_comparison,
    console,
    out_console,
)
from riskfed.data.io import atomic_output_dir, check_output_dir, read_table, write_json, write_table
from riskfed.errors import RiskfedError


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


# -- parsers ---------------------------------------------------------------------------
def add_pilot_parser(sub) -> None:
    p = sub.add_parser("pilot", help="generate synthetic bank and fintech data and run the whole job on it")
    settings.add_cli_options(p, ["customers", "overlap", "fintechs"])
    p.add_argument("--out", type=Path, default=Path("pilot_out"), help="output directory (default pilot_out)")
    p.add_argument("--processes", action="store_true", help="run each party as its own OS process on loopback, talking gRPC over mutual TLS with generated certificates")
    p.add_argument("--timeout", type=_positive_float, default=None, help="with --processes: seconds to wait for any one reply (default 300)")
    _add_training_options(p, command="pilot")
    p.set_defaults(func=cmd_pilot)


def add_run_parser(sub) -> None:
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


def add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="score new applicants with a saved model")
    p.add_argument("--model", type=Path, required=True, help="model directory written by run/pilot (DIR/model)")
    p.add_argument("--bank", type=Path, required=True, help="the bank's applicant table (ids + the model's bank features)")
    p.add_argument("--fintech", type=Path, action="append", help="each fintech's current table, in model order (in-memory scoring)")
    p.add_argument("--out", type=Path, required=True, help="scores file (.csv or .parquet)")
    p.add_argument("--id-column", help="applicant id column (default: the training id column)")
    p.add_argument("--fintech-id-column", action="append", help="a fintech's id column when it differs")
    settings.add_cli_options(p, ["scoring_psi", "chunk_rows"])
    # The scale saved with the model unless one of these is given.
    scale = ["base_points", "base_odds", "pdo"]
    helps = {n: f"{settings.param(n).help} (default: the model's)" for n in scale}
    settings.add_cli_options(p, scale, defaults=dict.fromkeys(scale), helps=helps)
    settings.add_cli_options(p, ["n_jobs"], defaults={"n_jobs": 1})
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = _add_network_options(p)
    g.add_argument("--fintech-at", action="append", metavar="[NAME=]HOST:PORT", help="score with the fintech services at these addresses (model order)")
    p.set_defaults(func=cmd_score)


def add_generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="write a synthetic data set (e.g. to regenerate sample_data/)")
    # sample_data/ holds 2,000 customers: small enough to keep in the repository.
    settings.add_cli_options(p, ["customers", "overlap", "fintechs"], defaults={"customers": 2_000})
    p.add_argument("--applicants", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_generate)
