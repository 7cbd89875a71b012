"""Background jobs: result, readable failures, cancellation, progress snapshots."""

from __future__ import annotations

import threading

from riskfed.errors import SchemaError
from riskfed.session.progress import Cancelled, ProgressEvent
from riskfed.ui.jobs import CANCELLED, DONE, FAILED, Job, start_job


def test_result_and_progress_snapshot():
    def work(progress, cancelled):
        progress(ProgressEvent("alignment", 3, 3, "aligned"))
        for k in range(1, 5):
            progress(ProgressEvent("training", k, 8, f"batch {k}", epoch=1, loss=1.0 / k, elapsed=float(k)))
        return "model"

    job = start_job("training", work, fingerprint=("v1",))
    assert job.join(30)
    snap = job.snapshot()
    assert job.status == DONE and job.result == "model" and snap.error is None
    assert [row["step"] for row in snap.losses] == [1, 2, 3, 4]
    assert snap.losses[1]["loss"] == 0.5
    assert snap.training_fraction == 0.5
    assert snap.eta_seconds == 4.0  # 4 s for 4 of 8 batches
    assert snap.phase_latest["alignment"].message == "aligned"
    assert job.fingerprint == ("v1",)


def test_riskfed_error_becomes_its_message():
    def work(progress, cancelled):
        raise SchemaError("bank: column 'y' must hold 0 or 1", party="bank", column="y")

    job = start_job("training", work)
    job.join(30)
    assert job.status == FAILED
    assert job.error == "bank: column 'y' must hold 0 or 1"
    assert job.error_type == "SchemaError"


def test_unexpected_error_is_a_message_not_a_traceback():
    def work(progress, cancelled):
        raise ValueError("boom")

    job = start_job("training", work)
    job.join(30)
    assert job.status == FAILED
    assert job.error == "Unexpected ValueError: boom"
    assert "Traceback" not in job.error


def test_cancel_stops_at_the_next_check():
    started = threading.Event()

    def work(progress, cancelled):
        started.set()
        while not cancelled():
            started.wait(0.01)
        raise Cancelled("Training was cancelled; nothing was saved.")

    job = Job("training", work).start()
    assert started.wait(30)
    assert job.running
    job.cancel()
    assert job.join(30)
    assert job.status == CANCELLED
    assert job.snapshot().cancel_requested
