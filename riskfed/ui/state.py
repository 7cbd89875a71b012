"""One analyst's workspace, kept in ``st.session_state`` — per browser session.

Everything an analysis produces lives here: the loaded tables, the overlap check, the
running jobs, and the trained model with the coordinator's Paillier private key inside
it. Streamlit gives each browser session its own ``session_state``, so two analysts on
the same server never see each other's data or keys. Nothing here may go into
``st.cache_data``/``st.cache_resource``, which are shared by every session.

Results carry a fingerprint of what produced them (data version + settings), so a page
rerun shows the existing result instead of recomputing, and loading new data retires
every result built on the old data.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field

import pandas as pd

from riskfed.ui.alignment import OverlapSummary, check_overlap
from riskfed.ui.boundary import analyst_message
from riskfed.ui.data import DataBundle
from riskfed.ui.jobs import CANCELLED, DONE, FAILED, Job, start_job
from riskfed.ui.training import TrainingRun, TrainingSettings, fingerprint, train

STATE_KEY = "riskfed_workspace"


@dataclass
class Notice:
    """A message for the analyst, shown once on the page it belongs to."""

    page: str
    kind: str  # "success" | "info" | "warning" | "error"
    text: str


@dataclass
class BatchScores:
    """The last batch of scored applicants (raw scorer output, decisions derived live)."""

    source: str
    scored: pd.DataFrame
    model_session: str


@dataclass
class Workspace:
    """Per-session state of the app."""

    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    data: DataBundle | None = None
    data_version: int = 0
    psi: str = "ecdh"
    overlap: OverlapSummary | None = None
    overlap_fingerprint: tuple | None = None
    align_job: Job | None = None
    training: TrainingRun | None = None
    train_job: Job | None = None
    train_settings: TrainingSettings | None = None
    batch: BatchScores | None = None
    notices: list[Notice] = field(default_factory=list)
    trainings_started: int = 0

    # -- data ---------------------------------------------------------------------
    def set_data(self, bundle: DataBundle) -> None:
        """Use new data: stop running jobs and retire every result built on the old data."""
        for job in (self.align_job, self.train_job):
            if job is not None and job.running:
                job.cancel()
        self.data = bundle
        self.data_version += 1
        self.overlap = self.overlap_fingerprint = None
        self.align_job = self.train_job = None
        self.training = None
        self.train_settings = None
        self.batch = None

    # -- alignment ----------------------------------------------------------------
    def overlap_key(self, method: str) -> tuple:
        return (self.data_version, method)

    def start_alignment(self, method: str) -> Job:
        bundle = self.data
        if bundle is None:
            raise RuntimeError("Load data before aligning.")
        self.psi = method
        self.align_job = start_job(
            "alignment",
            lambda progress, cancel: check_overlap(bundle.bank, list(bundle.fintechs), method=method, progress=progress, cancel=cancel),
            fingerprint=self.overlap_key(method),
        )
        return self.align_job

    # -- training -----------------------------------------------------------------
    def training_key(self, settings: TrainingSettings) -> tuple:
        return fingerprint(self.data_version, settings)

    def is_current(self, settings: TrainingSettings) -> bool:
        """Whether the finished model was trained on this data with these settings."""
        return self.training is not None and self.training.fingerprint == self.training_key(settings)

    def start_training(self, settings: TrainingSettings, *, n_jobs: int = -1) -> Job:
        bundle = self.data
        if bundle is None:
            raise RuntimeError("Load data before training.")
        self.train_settings = settings
        self.trainings_started += 1
        self.train_job = start_job(
            "training",
            lambda progress, cancel: train(bundle, settings, progress=progress, cancel=cancel, n_jobs=n_jobs),
            fingerprint=self.training_key(settings),
        )
        return self.train_job

    # -- every rerun --------------------------------------------------------------
    def collect(self) -> None:
        """Move finished jobs' results into the workspace (called at the top of each run)."""
        job = self.align_job
        if job is not None and not job.running:
            self.align_job = None
            if job.fingerprint[0] == self.data_version:
                if job.status == DONE:
                    self.overlap, self.overlap_fingerprint = job.result, job.fingerprint
                elif job.status == FAILED:
                    self.notices.append(Notice("align", "error", failure_message(job, "The overlap check failed.")))
                elif job.status == CANCELLED:
                    self.notices.append(Notice("align", "info", "Overlap check cancelled."))
        job = self.train_job
        if job is not None and not job.running:
            self.train_job = None
            if job.fingerprint[0] == self.data_version:
                if job.status == DONE:
                    self.training = TrainingRun(
                        fingerprint=job.fingerprint,
                        settings=self.train_settings,
                        result=job.result,
                        data_description=self.data.description if self.data else "",
                    )
                    self.batch = None
                    self.notices.append(
                        Notice("train", "success", f"Run finished in {job.elapsed:.1f} s (alignment, training, baselines).")
                    )
                elif job.status == FAILED:
                    self.notices.append(Notice("train", "error", failure_message(job, "Training failed.")))
                elif job.status == CANCELLED:
                    self.notices.append(
                        Notice("train", "warning", "Training cancelled. Nothing from the cancelled run was kept.")
                    )

    def take_notices(self, page: str) -> list[Notice]:
        mine = [n for n in self.notices if n.page == page]
        self.notices = [n for n in self.notices if n.page != page]
        return mine


def failure_message(job: Job, fallback: str) -> str:
    """What the analyst reads about a failed job (through the app's one error boundary)."""
    return analyst_message(job.exception) if job.exception is not None else (job.error or fallback)


def get_workspace(session_state: MutableMapping) -> Workspace:
    """This browser session's workspace (created on first use)."""
    ws = session_state.get(STATE_KEY)
    if not isinstance(ws, Workspace):
        ws = Workspace()
        session_state[STATE_KEY] = ws
    return ws
