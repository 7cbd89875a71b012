"""What every page of the app shares: the page list, header, next button and sidebar.

The six steps are Streamlit pages (``st.navigation``), one file each in
:mod:`riskfed.ui.pages`; :data:`PAGES` lists them in order, and :func:`navigation_pages`
turns them into ``st.Page`` objects whose titles tick off the steps already done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from riskfed.ui import format as fmt
from riskfed.ui.state import Workspace, get_workspace

PAGES_DIR = Path(__file__).resolve().parent / "pages"
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class PageSpec:
    """One step of the app: its url slug (also the file name) and its title."""

    slug: str
    title: str

    @property
    def step(self) -> int:
        return [p.slug for p in PAGES].index(self.slug) + 1

    @property
    def path(self) -> Path:
        return PAGES_DIR / f"{self.slug}.py"


PAGES = (
    PageSpec("data", "Data"),
    PageSpec("align", "Align"),
    PageSpec("train", "Train"),
    PageSpec("compare", "Compare"),
    PageSpec("score", "Score applicants"),
    PageSpec("privacy", "Privacy"),
)
_BY_SLUG = {p.slug: p for p in PAGES}


def workspace() -> Workspace:
    """This browser session's workspace."""
    return get_workspace(st.session_state)


def done_steps(ws: Workspace) -> dict[str, bool]:
    """Which steps have a result in this session (ticked in the navigation)."""
    return {
        "data": ws.data is not None,
        "align": ws.overlap is not None,
        "train": ws.training is not None,
        "compare": ws.training is not None,
        "score": ws.batch is not None,
        "privacy": False,
    }


def navigation_pages(ws: Workspace) -> list:
    """The ``st.Page`` of every step, numbered, with a tick when done; Data is the default."""
    done = done_steps(ws)
    return [
        st.Page(p.path, title=f"{p.step}. {p.title}" + ("  ✓" if done[p.slug] else ""), url_path=p.slug, default=p.slug == "data")
        for p in PAGES
    ]


def go(slug: str) -> None:
    """Open another step (stops this run)."""
    st.switch_page(_BY_SLUG[slug].path)


def header(slug: str, intro: str) -> None:
    """The page title ("3. Train") and a one-line introduction."""
    page = _BY_SLUG[slug]
    st.title(f"{page.step}. {page.title}")
    st.caption(intro)


def next_button(slug: str, label: str | None = None) -> None:
    """The primary button at the bottom of a page that opens the next step."""
    if st.button(label or f"Next: {_BY_SLUG[slug].title} →", type="primary", key=f"next_{slug}"):
        go(slug)


def need_data() -> None:
    st.info("Load data first: generate a pilot, use the sample data or upload your files.")
    if st.button("Go to Data", key="goto_data"):
        go("data")


def need_model() -> None:
    st.info("Train a model first — the comparison, scoring and traffic come from the training run.")
    if st.button("Go to Train", key="goto_train"):
        go("train")


def show_notices(ws: Workspace, slug: str) -> None:
    """Messages left for this page by a finished background job, shown once."""
    for notice in ws.take_notices(slug):
        getattr(st, notice.kind)(notice.text)


def running_snapshot(job):
    """The snapshot of a background job that is still running; when it has finished (or
    never started), rerun the app so the page shows the result instead of the monitor."""
    if job is None or not job.running:
        st.rerun()
    return job.snapshot()


def sidebar(ws: Workspace) -> None:
    """Under the navigation: what is loaded, trained or running, and the session's promise."""
    with st.sidebar:
        st.caption("Federated credit-risk modelling: the bank's labels, the fintech's data, no raw data shared.")
        st.divider()
        if ws.data is not None:
            st.caption(f"**Data** · {ws.data.description}")
        if ws.overlap is not None:
            st.caption(f"**Shared customers** · {fmt.count(ws.overlap.intersection)} ({fmt.percent(ws.overlap.match_rate)} of the bank's)")
        if ws.train_job is not None and ws.train_job.running:
            sidebar_job_status()
        elif ws.training is not None:
            m = ws.training.report["metrics"]
            st.caption(f"**Model** · federated AUC {fmt.decimal(m['federated']['auc'])}, bank only {fmt.decimal(m['bank_only']['auc'])}")
        if st.session_state.get("insecure_test_mode"):
            st.warning("Insecure test mode is on: small keys are offered. Never use it with real data.", icon="⚠️")
        st.caption("Your data, model and keys live only in this browser session and are never shared with other users.")


@st.fragment(run_every=POLL_SECONDS)
def sidebar_job_status() -> None:
    """Training progress on every page; the app refreshes itself when training ends."""
    snap = running_snapshot(workspace().train_job)
    st.caption(f"**Training** · {fmt.percent(snap.training_fraction, 0)} of batches · {fmt.duration(snap.elapsed)}")
    st.progress(snap.training_fraction)
