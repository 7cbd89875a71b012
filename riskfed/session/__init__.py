"""Running a protocol session over a transport, driven by the bank.

* :mod:`.training` — alignment, encrypted training and holdout scoring
  (:func:`run_training_session`, in named steps);
* :mod:`.alignment` — alignment only, to show the overlap (:func:`run_alignment_session`);
* :mod:`.scoring` — partial scores of applicants from every fintech (:class:`ScoringSession`);
* :mod:`.progress` — progress events and cancellation.
"""

from riskfed.session.alignment import run_alignment_session
from riskfed.session.progress import Cancelled, ProgressCallback, ProgressEvent
from riskfed.session.scoring import PartnerScores, ScoringSession
from riskfed.session.training import SessionOutcome, TrainingSession, run_training_session

__all__ = [
    "Cancelled",
    "PartnerScores",
    "ProgressCallback",
    "ProgressEvent",
    "ScoringSession",
    "SessionOutcome",
    "TrainingSession",
    "run_alignment_session",
    "run_training_session",
]
