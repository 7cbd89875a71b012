"""The app's one error boundary and its page navigation.

A riskfed error raised anywhere in a page shows as that page's error message; anything
else shows a generic message with a reference, logged once without the exception's text.
"""

from __future__ import annotations

import logging
import re

import pytest
from streamlit.testing.v1 import AppTest

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.ui import boundary
from riskfed.ui.jobs import start_job
from riskfed.ui.state import Job, Workspace, failure_message

SECRET = "p=0x9f3a77c1d2"  # stands for anything an unexpected error might quote


def _reference(text: str) -> str:
    match = re.search(r"\(reference ([0-9a-f]{8})\)", text)
    assert match, text
    return match.group(1)


# ------------------------------------------------------------------------ the message


def test_riskfed_error_keeps_its_message_and_names_the_file():
    exc = SchemaError("bank: column 'y' must hold 0 or 1; rows 'K1', 'K2'", party="bank", column="y", rows=["K1", "K2"])
    assert boundary.analyst_message(exc) == "bank: column 'y' must hold 0 or 1; rows 'K1', 'K2'"
    assert boundary.analyst_message(exc, label="bank.csv") == "bank.csv: column 'y' must hold 0 or 1; rows 'K1', 'K2'"
    other = SchemaError("fintech_2: duplicate ids", party="fintech_2")
    labels = {"bank": "bank.csv", "fintech_2": "partner.parquet"}
    assert boundary.analyst_message(other, labels=labels) == "partner.parquet: duplicate ids"


def test_unexpected_error_is_generic_and_logged_once_without_its_text(caplog):
    try:
        raise RuntimeError(f"cannot use {SECRET}")
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR, logger="riskfed.ui"):
            message = boundary.analyst_message(exc, label="bank.csv")
    assert message.startswith("bank.csv: Something unexpected went wrong")
    assert SECRET not in message and "RuntimeError" not in message
    (record,) = caplog.records
    assert _reference(message) in record.getMessage()
    assert "RuntimeError" in record.getMessage() and "test_boundary.py" in record.getMessage()
    assert SECRET not in caplog.text


def test_failed_job_notice_goes_through_the_boundary(caplog):
    def work(progress, cancelled):
        raise KeyError(SECRET)

    job = start_job("training", work)
    assert job.join(30)
    with caplog.at_level(logging.ERROR, logger="riskfed.ui"):
        text = failure_message(job, "Training failed.")
    assert text.startswith("Something unexpected went wrong") and SECRET not in text
    assert SECRET not in caplog.text and "KeyError" in caplog.text

    def bad_data(progress, cancelled):
        raise SchemaError("bank: no rows", party="bank")

    ws = Workspace()
    ws.train_job = start_job("training", bad_data, fingerprint=(ws.data_version,))
    assert ws.train_job.join(30)
    ws.collect()
    assert [(n.kind, n.text) for n in ws.take_notices("train")] == [("error", "bank: no rows")]


def test_failed_job_without_exception_keeps_its_description():
    job = Job("alignment", lambda progress, cancelled: None)
    job.error = "The overlap check stopped."
    assert failure_message(job, "fallback") == "The overlap check stopped."
    assert failure_message(Job("alignment", lambda p, c: None), "fallback") == "fallback"


# ----------------------------------------------------------------- inside a running page


def _explode(exc: Exception):
    def raiser(*args, **kwargs):
        raise exc

    return raiser


def test_riskfed_error_inside_a_page_shows_as_an_error(new_app, monkeypatch, assert_no_exception):
    error = ConfigurationError("The 'threat_model' parameter must be a string. Got 3 instead.")
    monkeypatch.setattr("riskfed.ui.privacy.role_table_markdown", _explode(error))
    at = new_app(page="privacy").run()
    assert_no_exception(at)
    assert [e.value for e in at.main.error] == [str(error)]
    assert at.title[0].value == "6. Privacy"  # the page ran up to the error


def test_unexpected_error_inside_a_page_shows_the_generic_message(new_app, monkeypatch, caplog, assert_no_exception, page_text):
    monkeypatch.setattr("riskfed.ui.privacy.role_table_markdown", _explode(ValueError(SECRET)))
    with caplog.at_level(logging.ERROR, logger="riskfed.ui"):
        at = new_app(page="privacy").run()
    assert_no_exception(at)
    (error,) = [e.value for e in at.main.error]
    assert error.startswith("Something unexpected went wrong, and nothing was changed.")
    assert SECRET not in page_text(at) and "Traceback" not in page_text(at)
    assert _reference(error) in caplog.text and "ValueError" in caplog.text
    assert SECRET not in caplog.text


def test_error_in_an_action_leaves_the_rest_of_the_page(new_app, monkeypatch, assert_no_exception):
    monkeypatch.setattr("riskfed.ui.data.load_sample_bundle", _explode(SchemaError("bank: 'id' has 3 empty values", party="bank")))
    at = new_app(data_source="sample").run()
    at.button(key="load_sample").click().run()
    assert_no_exception(at)
    assert [e.value for e in at.main.error] == ["bank: 'id' has 3 empty values"]
    assert at.radio(key="data_source").value == "sample" and at.session_state["riskfed_workspace"].data is None


@pytest.mark.parametrize("control", ["rerun", "stop"])
def test_streamlit_control_flow_passes_through(control):
    def script():
        import streamlit as st

        from riskfed.ui.boundary import guarded

        st.session_state["runs"] = st.session_state.get("runs", 0) + 1
        with guarded():
            if st.session_state["runs"] == 1:
                getattr(st, st.session_state["control"])()
        st.write(f"after run {st.session_state['runs']}")

    at = AppTest.from_function(script)
    at.session_state["control"] = control
    at.run()
    assert len(at.error) == 0 and len(at.exception) == 0
    # st.rerun starts the script again (the second run writes); st.stop ends it.
    assert [m.value for m in at.markdown] == (["after run 2"] if control == "rerun" else [])


# ------------------------------------------------------------------------- navigation


def test_next_and_back_buttons_open_pages(new_app, trained_workspace, ui_bundle, assert_no_exception):
    at = new_app(trained_workspace, page="compare").run()
    at.button(key="next_score").click().run()
    assert_no_exception(at)
    assert at.title[0].value == "5. Score applicants"

    empty = Workspace()
    at = new_app(empty, page="align").run()
    at.button(key="goto_data").click().run()
    assert at.title[0].value == "1. Data"
    at = new_app(empty, page="score").run()
    at.button(key="goto_train").click().run()
    assert at.title[0].value == "3. Train"


def test_navigation_numbers_the_steps_and_ticks_the_done_ones(trained_workspace):
    def script():
        import streamlit as st

        from riskfed.ui import chrome

        pages = chrome.navigation_pages(st.session_state["ws"])
        st.write(" | ".join(p.title for p in pages))
        st.write(" | ".join(p.url_path or "(default)" for p in pages))

    at = AppTest.from_function(script)
    at.session_state["ws"] = trained_workspace
    at.run()
    titles, paths = (m.value for m in at.markdown)
    assert titles == "1. Data  ✓ | 2. Align | 3. Train  ✓ | 4. Compare  ✓ | 5. Score applicants | 6. Privacy"
    assert paths == "(default) | align | train | compare | score | privacy"  # Data opens first
