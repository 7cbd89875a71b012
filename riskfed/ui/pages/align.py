"""Step 2 — Align: how many customers the bank shares with each fintech (a real PSI)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from riskfed.ui import chrome, figures
from riskfed.ui import format as fmt
from riskfed.ui.alignment import KEYED_HASH_WARNING, METHODS
from riskfed.ui.state import Workspace

METHOD_CAPTIONS = [
    "Each side blinds its ids with its own secret; nothing is learned about customers outside the overlap.",
    "Faster. Both sides hash ids with a shared secret key.",
]


def render() -> None:
    ws = chrome.workspace()
    chrome.header("align", "Find the customers the bank and the fintech share — without either side revealing the others.")
    if ws.data is None:
        chrome.need_data()
        return
    chrome.show_notices(ws, "align")
    running = ws.align_job is not None and ws.align_job.running
    method = st.radio(
        "Matching method",
        list(METHODS),
        format_func=lambda m: METHODS[m] + (" (recommended)" if m == "ecdh" else ""),
        captions=METHOD_CAPTIONS,
        key="psi_method",
        disabled=running,
    )
    ws.psi = method
    if method == "keyed-hash":
        st.warning(KEYED_HASH_WARNING, icon="⚠️")
    current = ws.overlap is not None and ws.overlap_fingerprint == ws.overlap_key(method)
    if st.button("Check overlap", type="primary", disabled=running, key="run_align"):
        ws.start_alignment(method)
        st.rerun()
    if running:
        align_monitor()
        return
    if not current:
        st.caption("The check runs the private set intersection on this machine and keeps counts only.")
        return
    show_overlap(ws)
    chrome.next_button("train")


@st.fragment(run_every=chrome.POLL_SECONDS)
def align_monitor() -> None:
    job = chrome.workspace().align_job
    snap = chrome.running_snapshot(job)
    event = snap.latest
    fraction = event.done / event.total if event and event.total else 0.0
    st.progress(min(1.0, fraction), text=f"Private set intersection · {event.message if event else 'starting'} · {fmt.duration(snap.elapsed)}")
    if st.button("Cancel", key="cancel_align", disabled=snap.cancel_requested):
        job.cancel()


def show_overlap(ws: Workspace) -> None:
    o = ws.overlap
    bundle = ws.data
    st.subheader("Overlap")
    cols = st.columns(4)
    cols[0].metric("Bank customers", fmt.count(o.bank_rows))
    cols[1].metric("Fintech customers", " + ".join(fmt.count(v) for v in o.fintech_rows.values()))
    cols[2].metric("Shared customers", fmt.count(o.intersection))
    cols[3].metric("Match rate", fmt.percent(o.match_rate), help="Share of the bank's customers that every fintech knows.")
    st.plotly_chart(figures.overlap_figure(o.bank_rows, o.fintech_rows, o.pairwise, o.intersection), key="overlap_chart")
    rows = [
        {
            "Party": label,
            "Customers": fmt.count(o.fintech_rows[name]),
            "Also bank customers": fmt.count(o.pairwise[name]),
            "Share of its customers": fmt.percent(o.fintech_share(name)),
            "Share of bank customers": fmt.percent(o.pairwise[name] / o.bank_rows),
        }
        for name, label in zip(bundle.fintech_names, bundle.fintech_labels)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        f"{METHODS[o.method]} in {fmt.duration(o.seconds)} · ids cleaned first ({o.normalization}) · "
        "training repeats the intersection under fresh secrets for its own session."
    )
    if ws.training is not None:
        a = ws.training.report["alignment"]
        same = "same as above" if a["intersection"] == o.intersection and a["method"] == o.method else "method or data differ from above"
        st.caption(f"Last training session matched {fmt.count(a['intersection'])} customers with {METHODS[a['method']]} ({same}).")


if __name__ == "__main__":
    render()
