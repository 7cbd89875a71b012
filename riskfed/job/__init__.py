"""The end-to-end job behind ``riskfed run`` and ``riskfed pilot`` (:func:`run_pipeline`)
and its report (:mod:`riskfed.job.report`)."""

from riskfed.job.report import MODEL_NAMES, build_report
from riskfed.job.run import PipelineResult, run_pipeline, validate_inputs, write_outputs

__all__ = ["MODEL_NAMES", "PipelineResult", "build_report", "run_pipeline", "validate_inputs", "write_outputs"]
