"""``riskfed`` — the command line: pilot, run, score, generate.

A thin layer over the public API. User mistakes end in one readable line on stderr and
exit status 2 (never a traceback); Ctrl-C ends with status 130; nothing half-written is
left in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from riskfed import __version__
from riskfed.crypto.keys import DEFAULT_KEY_BITS
from riskfed.data.io import atomic_output_dir, read_table, write_table
from riskfed.errors import RiskfedError
from riskfed.federation import Cancelled, ProgressEvent

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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def _open_fraction(text: str) -> float:
    value = _fraction(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def _add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--key-bits", type=int, default=DEFAULT_KEY_BITS, help="Paillier key size (default 2048; 3072 for long-lived models)")
    g.add_argument("--psi", choices=("ecdh", "keyed-hash"), default="ecdh", help="id alignment (default ecdh; keyed-hash is faster but lets a key holder test guesses of the other side's ids)")
    g.add_argument("--test-size", type=_open_fraction, default=0.3, help="holdout share of the shared customers (default 0.3)")
    g.add_argument("--epochs", type=_positive_int, default=5, help="maximum epochs (default 5; training stops once the scores move by less than --tol of their spread in an epoch)")
    g.add_argument("--tol", type=float, default=0.1, help="convergence tolerance (default 0.1)")
    g.add_argument("--batch-size", type=_positive_int, default=1024, help="rows per mini-batch (default 1024, minimum 256)")
    g.add_argument("--learning-rate", type=float, default=1.0, help="step size (default 1.0)")
    g.add_argument("--l2", type=float, default=1e-4, help="L2 penalty on standardised weights (default 1e-4)")
    g.add_argument("--expansion", choices=("bank", "zero"), default="bank", help="loss expansion: at the bank's partial score (default) or at zero (Hardy et al. Taylor loss)")
    g.add_argument("--seed", type=int, default=0, help="the bank's seed for split and batch order (default 0)")
    g.add_argument("--n-jobs", type=int, default=-1, help="worker processes per party (default -1: all cores)")
    g.add_argument("--dask-scheduler", metavar="ADDRESS", help="run the Paillier kernels on this Dask scheduler")
    g.add_argument("--insecure-test-key", action="store_true", help="TEST ONLY: allow keys below 2048 bits")
    g.add_argument("--no-centralized", action="store_true", help="skip the centralised reference model")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _estimator(args):
    from riskfed.models.federated import VerticalLogisticRegression

    return VerticalLogisticRegression(
        key_bits=args.key_bits,
        allow_insecure_key=args.insecure_test_key,
        psi=args.psi,
        learning_rate=args.learning_rate,
        l2=args.l2,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        tol=args.tol,
        expansion=args.expansion,
        test_size=args.test_size,
        random_state=args.seed,
        n_jobs=args.n_jobs,
        dask_scheduler=args.dask_scheduler,
    )


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


def _print_comparison(report: dict) -> None:
    from riskfed.pipeline import MODEL_NAMES

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
    sent = ", ".join(f"{p} {b / 1e6:.1f} MB" for p, b in t["bytes_sent"].items())
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
    from riskfed.data.synthetic import generate_pilot, write_pilot
    from riskfed.pipeline import run_pipeline, write_outputs
    from riskfed.scoring.score import score_applicants

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
            centralized=not args.no_centralized,
            progress=bars,
        )
        bars.step("scoring", 0, 1, f"{len(pilot.applicants):,} new applicants")
        scores = score_applicants(result.estimator.model_, pilot.applicants, list(pilot.fintechs), n_jobs=1)
        bars.step("scoring", 1, 1, "done")
    with atomic_output_dir(args.out) as stage:
        write_pilot(pilot, stage / "data", formats=("parquet",) if args.customers > 200_000 else ("parquet", "csv"))
        write_outputs(result, stage)
        write_table(scores, stage / "applicant_scores.csv")
    _print_comparison(result.report)
    fed = int((scores["model"] == "federated").sum())
    out_console.print(
        f"Scored {len(scores):,} new applicants ({fed:,} federated, {len(scores) - fed:,} by the bank-only fallback)."
    )
    out_console.print(f"Wrote {args.out}/report.json, {args.out}/model/, {args.out}/data/ and {args.out}/applicant_scores.csv in {time.perf_counter() - t0:.1f} s.")
    return 0


def cmd_run(args) -> int:
    from riskfed.pipeline import run_pipeline

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
            centralized=not args.no_centralized,
            estimator=_estimator(args),
            progress=bars,
            sources=sources,
        )
    _print_comparison(result.report)
    out_console.print(f"Wrote {args.out}/report.json and {args.out}/model/ (one part per party).")
    return 0


def cmd_score(args) -> int:
    from riskfed.models.federated import FederatedModel
    from riskfed.scoring.scorecard import Scorecard
    from riskfed.scoring.score import score_file

    model = FederatedModel.load(args.model)
    names = model.fintech_names
    if len(args.fintech) != len(names):
        raise RiskfedError(
            f"The model was trained with {len(names)} fintech(s) ({', '.join(names)}); got {len(args.fintech)} --fintech file(s)."
        )
    id_column = args.id_column or model.bank.get("id_column")
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
            progress=lambda rows, total: bars.step("scoring", rows, total, f"{rows:,} applicants"),
        )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskfed",
        description="Privacy-preserving credit-risk modelling: a bank and fintech partners train one default model "
        "without sharing data (PSI + Paillier-encrypted vertical logistic regression).",
    )
    parser.add_argument("--version", action="version", version=f"riskfed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pilot", help="generate synthetic bank and fintech data and run the whole job on it")
    p.add_argument("--customers", type=_positive_int, default=20_000, help="bank customers (default 20000)")
    p.add_argument("--overlap", type=_fraction, default=0.7, help="share of bank customers the fintech knows (default 0.7)")
    p.add_argument("--fintechs", type=_positive_int, default=1, help="number of fintechs; ≥ 2 splits the partner features (default 1)")
    p.add_argument("--out", type=Path, default=Path("pilot_out"), help="output directory (default pilot_out)")
    _add_training_options(p)
    p.set_defaults(func=cmd_pilot)

    p = sub.add_parser("run", help="run the job on your own bank and fintech files (CSV or Parquet)")
    p.add_argument("--bank", type=Path, required=True, help="the bank's table (ids, labels, features)")
    p.add_argument("--fintech", type=Path, action="append", required=True, help="a fintech's table; repeat for several")
    p.add_argument("--id-column", required=True, help="customer id column")
    p.add_argument("--label-column", required=True, help="the bank's 0/1 default column")
    p.add_argument("--fintech-id-column", action="append", help="a fintech's id column when it differs (one per --fintech)")
    p.add_argument("--categorical", action="append", help="bank column to treat as categorical (repeatable)")
    p.add_argument("--out", type=Path, default=Path("riskfed_out"), help="output directory (default riskfed_out)")
    _add_training_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score new applicants with a saved model")
    p.add_argument("--model", type=Path, required=True, help="model directory written by run/pilot (DIR/model)")
    p.add_argument("--bank", type=Path, required=True, help="the bank's applicant table (ids + the model's bank features)")
    p.add_argument("--fintech", type=Path, action="append", required=True, help="each fintech's current table, in model order")
    p.add_argument("--out", type=Path, required=True, help="scores file (.csv or .parquet)")
    p.add_argument("--id-column", help="applicant id column (default: the training id column)")
    p.add_argument("--fintech-id-column", action="append", help="a fintech's id column when it differs")
    p.add_argument("--psi", choices=("keyed-hash", "ecdh"), default="keyed-hash", help="how applicants are matched (default keyed-hash with a fresh key)")
    p.add_argument("--chunk-rows", type=_positive_int, default=100_000, help="applicants per chunk (default 100000)")
    p.add_argument("--base-points", type=float, help="scorecard points at the base odds (default 600)")
    p.add_argument("--base-odds", type=float, help="good:bad odds at the base points (default 50)")
    p.add_argument("--pdo", type=float, help="points to double the odds (default 20)")
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("generate", help="write a synthetic data set (e.g. to regenerate sample_data/)")
    p.add_argument("--customers", type=_positive_int, default=2_000)
    p.add_argument("--overlap", type=_fraction, default=0.7)
    p.add_argument("--fintechs", type=_positive_int, default=1)
    p.add_argument("--applicants", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--formats", default="parquet,csv", help="comma-separated: parquet,csv")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_generate)
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
        console.print("[bold red]error:[/] " + _escape(str(exc)), highlight=False)
        return EXIT_USER_ERROR


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
