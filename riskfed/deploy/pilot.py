"""``riskfed pilot --processes``: every party as its own OS process on loopback.

The demo of a real deployment on one machine: a private CA and a certificate per party
are generated into a temporary directory, the coordinator and each fintech are started
as ``riskfed serve`` processes listening on free ports of 127.0.0.1, each with only its
own data file, and the bank (this process) drives training and scoring over mutual TLS.
The processes are always stopped at the end, also on errors and Ctrl-C.

:class:`ProcessFederation` is also what the tests use to kill a party mid-training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from riskfed.certs import init_federation, load_identity
from riskfed.deploy.bank import bank_transport
from riskfed.errors import TransportError
from riskfed.job import run_pipeline
from riskfed.models.parts import read_model_part
from riskfed.protocol.messages import BANK, COORDINATOR, fintech_name
from riskfed.scoring.score import ApplicantScorer
from riskfed.transport.network import NetworkLimits

# Starting a service imports numpy, pandas and scikit-learn: seconds, not minutes.
DEFAULT_START_TIMEOUT = 60.0


@dataclass
class PartyProcess:
    """One ``riskfed serve`` process."""

    name: str
    argv: list[str]
    log_path: Path
    port_file: Path
    process: subprocess.Popen | None = None
    address: str | None = None

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> "PartyProcess":
        """Start the process and wait until it listens (it writes its address to a file)."""
        self.port_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "riskfed.cli", "serve", *self.argv, "--port-file", str(self.port_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port_file.is_file():
                try:
                    self.address = json.loads(self.port_file.read_text())["address"]
                    return self
                except (ValueError, KeyError):
                    pass  # being written: os.replace makes this rare
            if self.process.poll() is not None:
                raise TransportError(
                    f"{self.name} exited with status {self.process.returncode} while starting: {self.log_tail()}",
                    party=self.name,
                )
            time.sleep(0.05)
        self.stop()
        raise TransportError(f"{self.name} did not start listening within {timeout:g} s: {self.log_tail()}", party=self.name)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the party dies without a chance to say goodbye."""
        if self.alive:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the party is cut off (alive, silent)."""
        if self.alive:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGCONT)

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM (the service stops cleanly), then SIGKILL after ``grace`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class ProcessFederation:
    """The coordinator and the fintechs as ``riskfed serve`` processes on 127.0.0.1.

    Parameters
    ----------
    work_dir:
        Holds logs, port files, each fintech's model directory and checkpoints.
    certs_dir:
        Output of ``riskfed certs init`` (``<role>.crt``, ``<role>.key``, ``ca.crt``).
    fintech_data:
        Fintech name → its data file.
    id_column:
        The fintechs' id column.
    extra_args:
        Added to every ``serve`` command line (e.g. ``--insecure-test-key``).
    """

    work_dir: Path
    certs_dir: Path
    fintech_data: dict[str, Path]
    id_column: str
    timeout: float = 300.0
    n_jobs: int = 1
    extra_args: list[str] = field(default_factory=list)
    parties: dict[str, PartyProcess] = field(default_factory=dict)

    def _tls(self, role: str) -> list[str]:
        c = self.certs_dir
        return ["--cert", str(c / f"{role}.crt"), "--key", str(c / f"{role}.key"), "--ca", str(c / "ca.crt")]

    def model_dir(self, name: str) -> Path:
        return self.work_dir / name / "model"

    def checkpoint_dir(self, name: str) -> Path:
        return self.work_dir / name / "checkpoints"

    def _party(self, name: str, argv: list[str]) -> PartyProcess:
        (self.work_dir / name).mkdir(parents=True, exist_ok=True)
        proc = PartyProcess(
            name,
            argv,
            log_path=self.work_dir / name / "serve.log",
            port_file=self.work_dir / name / "address.json",
        )
        self.parties[name] = proc
        return proc

    def start_coordinator(self) -> PartyProcess:
        argv = [
            "--role", "coordinator", "--listen", "127.0.0.1:0", "--timeout", str(self.timeout),
            "--n-jobs", str(self.n_jobs), *self._tls(COORDINATOR), *self.extra_args,
        ]  # fmt: skip
        return self._party(COORDINATOR, argv).start()

    def fintech_argv(self, name: str, *, listen: str = "127.0.0.1:0") -> list[str]:
        return [
            "--role", "fintech",
            "--data", str(self.fintech_data[name]),
            "--id-column", self.id_column,
            "--listen", listen,
            "--coordinator-at", self.parties[COORDINATOR].address,
            "--model-dir", str(self.model_dir(name)),
            "--checkpoint-dir", str(self.checkpoint_dir(name)),
            "--timeout", str(self.timeout),
            "--n-jobs", str(self.n_jobs),
            *self._tls(name),
            *self.extra_args,
        ]  # fmt: skip

    def start_fintech(self, name: str, *, listen: str = "127.0.0.1:0") -> PartyProcess:
        return self._party(name, self.fintech_argv(name, listen=listen)).start()

    def restart(self, name: str) -> PartyProcess:
        """Start ``name`` again on the same address (after a crash), with its own files."""
        old = self.parties[name]
        old.stop()
        if name == COORDINATOR:
            argv = [a if a != "127.0.0.1:0" else old.address for a in old.argv]
        else:
            argv = self.fintech_argv(name, listen=old.address)
        proc = self._party(name, argv)
        return proc.start()

    def start(self) -> "ProcessFederation":
        try:
            self.start_coordinator()
            for name in self.fintech_data:
                self.start_fintech(name)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def addresses(self) -> dict[str, str]:
        return {name: p.address for name, p in self.parties.items()}

    def stop(self) -> None:
        for proc in reversed(list(self.parties.values())):
            proc.stop()

    def __enter__(self) -> "ProcessFederation":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_process_pilot(
    pilot,
    *,
    estimator,
    timeout: float = 300.0,
    n_jobs: int = 1,
    insecure_test_key: bool = False,
    progress=None,
    work_dir: str | Path | None = None,
):
    """Run the pilot with every party in its own process; return the bank's results.

    Returns
    -------
    (PipelineResult, pandas.DataFrame, dict)
        The pipeline result (bank side), the applicant scores (scored over the network)
        and the fintechs' model parts as written by their services.
    """
    own_tmp = None
    if work_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="riskfed-pilot-")
        work_dir = own_tmp.name
    work = Path(work_dir)
    try:
        names = [fintech_name(k + 1) for k in range(len(pilot.fintechs))]
        certs = work / "certs"
        init_federation(certs, fintechs=len(names))
        files = _write_fintech_data(work / "data", names, pilot.fintechs)
        extra = ["--insecure-test-key"] if insecure_test_key else []
        federation = ProcessFederation(work, certs, files, pilot.id_column, timeout=timeout, n_jobs=n_jobs, extra_args=extra)
        with federation:
            result, scores = _drive_as_bank(pilot, names, federation, certs, estimator, timeout=timeout, progress=progress)
            parts = {name: _read_part(federation, name) for name in names}
        return result, scores, parts
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()


def _write_fintech_data(directory: Path, names: list[str], frames) -> dict[str, Path]:
    """Each fintech's table as a Parquet file its process reads."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in zip(names, frames):
        files[name] = directory / f"{name}.parquet"
        frame.to_parquet(files[name], index=False)
    return files


def _drive_as_bank(pilot, names, federation: "ProcessFederation", certs: Path, estimator, *, timeout: float, progress):
    """Train and score as the bank over mutual TLS; the pipeline result and the scores."""
    identity = load_identity(certs / "bank.crt", certs / "bank.key", certs / "ca.crt", expected_role=BANK)
    peers = {n: federation.parties[n].address for n in names}
    coordinator = federation.parties[COORDINATOR].address
    parties = {name: {"address": p.address, "pid": p.process.pid} for name, p in federation.parties.items()}
    with bank_transport(identity, peers, coordinator_at=coordinator, limits=NetworkLimits(timeout=timeout)) as transport:
        result = run_pipeline(
            pilot.bank,
            names,
            id_column=pilot.id_column,
            label_column=pilot.label_column,
            estimator=estimator,
            progress=progress,
            transport=transport,
            extra_report={"deployment": {"mode": "processes", "parties": parties}},
        )
        scorer = ApplicantScorer(result.estimator.model_, None, id_column=pilot.id_column, transport=transport)
        return result, scorer.score_frame(pilot.applicants)


def _read_part(federation: "ProcessFederation", name: str) -> dict:
    """The model part a fintech's service wrote when training stopped."""
    path = federation.model_dir(name) / name / "model.json"
    if not path.is_file():
        raise TransportError(f"{name} did not write its model part to {str(path)!r}: {federation.parties[name].log_tail()}", party=name)
    return read_model_part(path, name)


__all__ = ["PartyProcess", "ProcessFederation", "run_process_pilot"]
