"""What every command shares: consoles, argument types, the job's options (generated
from :mod:`riskfed.settings`), progress bars, the comparison table and network options."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from riskfed import settings
from riskfed.session.progress import ProgressEvent

console = Console(stderr=True)
out_console = Console()

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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
