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

from riskfed import __version__
from riskfed.cli.common import EXIT_INTERRUPTED, EXIT_USER_ERROR, _estimator, console
from riskfed.cli.jobs import add_generate_parser, add_pilot_parser, add_run_parser, add_score_parser
from riskfed.cli.services import add_certs_parser, add_serve_parser
from riskfed.errors import RiskfedError
from riskfed.session.progress import Cancelled

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "build_parser", "main", "_estimator"]


def build_parser() -> argparse.ArgumentParser:
    """The ``riskfed`` parser: one sub-command per job, options from :mod:`riskfed.settings`."""
    parser = argparse.ArgumentParser(
        prog="riskfed",
        description="Privacy-preserving credit-risk modelling: a bank and fintech partners train one default model "
        "without sharing data (PSI + Paillier-encrypted vertical logistic regression).",
    )
    parser.add_argument("--version", action="version", version=f"riskfed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_pilot_parser, add_run_parser, add_score_parser, add_generate_parser, add_serve_parser, add_certs_parser):
        add(sub)
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
