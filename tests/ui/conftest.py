"""Fixtures for the app's tests.

* ``ui_bundle`` — a 2,000-customer pilot validated into a :class:`DataBundle`;
* ``ui_run`` — one training run on it (512-bit key through the test-only flag, one
  process per party), shared read-only by the page tests so they do not all retrain;
* ``trained_workspace`` — a fresh per-test :class:`Workspace` holding that run;
* ``new_app`` — an :class:`AppTest` of ``app.py`` in insecure test mode, opened on a page;
* ``open_page`` — ``open_page(at, "train")`` switches an AppTest to a page (run it after);
* ``wait_for_job`` — reruns an AppTest until its background job has finished.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from riskfed.ui.data import generate_pilot_bundle
from riskfed.ui.state import STATE_KEY, Workspace
from riskfed.ui.training import TEST_MODE_ENV, TrainingRun, TrainingSettings, train

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"
PAGES = REPO / "riskfed" / "ui" / "pages"
# Test-only: 512-bit keys need the explicit insecure flag.
UI_SETTINGS = TrainingSettings(
    key_bits=512, insecure_test_mode=True, psi="ecdh", max_epochs=2, batch_size=256, random_state=3, centralized=True
)


@pytest.fixture(scope="session")
def ui_bundle():
    return generate_pilot_bundle(2000, overlap=0.7, fintechs=1, seed=7)


@pytest.fixture(scope="session")
def ui_run(ui_bundle):
    """(settings, PipelineResult) of one small training run — do not mutate."""
    return UI_SETTINGS, train(ui_bundle, UI_SETTINGS, n_jobs=1)


@pytest.fixture
def trained_workspace(ui_bundle, ui_run):
    settings, result = ui_run
    ws = Workspace()
    ws.set_data(ui_bundle)
    ws.psi = settings.psi
    ws.training = TrainingRun(
        fingerprint=ws.training_key(settings), settings=settings, result=result, data_description=ui_bundle.description
    )
    return ws


@pytest.fixture
def new_app(monkeypatch):
    """Factory of AppTests of app.py in insecure test mode (small keys offered)."""
    monkeypatch.setenv(TEST_MODE_ENV, "1")

    def make(workspace: Workspace | None = None, page: str | None = None, **state) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        if workspace is not None:
            at.session_state[STATE_KEY] = workspace
        if page is not None:
            open_page(at, page)
        for key, value in state.items():
            at.session_state[key] = value
        return at

    return make


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch to one of the app's pages (``"train"``); the next ``run()`` shows it."""
    return at.switch_page(str((PAGES / f"{page}.py").relative_to(REPO)))


@pytest.fixture(name="open_page")
def open_page_fixture():
    return open_page


def _wait(at: AppTest, attribute: str, rounds: int = 600) -> AppTest:
    """Rerun until the workspace has collected the job's outcome (one run shows it)."""
    for _ in range(rounds):
        job = getattr(at.session_state[STATE_KEY], attribute)
        if job is None:  # collected by the last run, which showed its result
            break
        job.join(0.2)
        at.run()
    return at


@pytest.fixture
def wait_for_job():
    """``wait_for_job(at, "train_job")``: rerun until the page has shown the job's outcome."""
    return _wait


def no_exception(at: AppTest) -> None:
    """The page rendered no exception element (never a traceback)."""
    assert len(at.exception) == 0, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    """Every markdown, caption, alert and metric text on the page, joined."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    parts += [t.value for t in (*at.title, *at.subheader)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def page_text():
    return texts


@pytest.fixture
def assert_no_exception():
    return no_exception
