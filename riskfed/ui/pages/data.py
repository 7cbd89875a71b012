"""Step 1 — Data: generate a pilot, load the sample data or upload the parties' files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from riskfed.ui import chrome, tables
from riskfed.ui import data as uidata
from riskfed.ui import format as fmt
from riskfed.ui.boundary import guarded
from riskfed.ui.state import Workspace

SAMPLE_DIR_ENV = "RISKFED_SAMPLE_DATA"
SOURCES = {"pilot": "Generate a pilot", "sample": "Sample data", "upload": "Upload files"}


def sample_dir() -> Path:
    """The shipped sample data (``sample_data/`` next to ``app.py``), or ``$RISKFED_SAMPLE_DATA``."""
    default = Path(__file__).resolve().parents[3] / "sample_data"
    return Path(os.environ.get(SAMPLE_DIR_ENV, default))


def render() -> None:
    ws = chrome.workspace()
    chrome.header("data", "Pick the bank's table (with the default flag) and the fintech's table. Nothing leaves this session.")
    source = st.radio("Where does the data come from?", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="data_source")
    with st.container(border=True):
        if source == "pilot":
            pilot_form(ws)
        elif source == "sample":
            sample_form(ws)
        else:
            upload_form(ws)
    if ws.data is not None:
        show_data(ws.data)
        chrome.next_button("align")


def use_data(ws: Workspace, bundle: uidata.DataBundle) -> None:
    ws.set_data(bundle)
    # The centralised reference joins both parties' data: a fair yardstick on synthetic
    # pilots, opt-in on real files.
    st.session_state["centralized"] = bundle.synthetic


def pilot_form(ws: Workspace) -> None:
    st.markdown("Synthetic bank and fintech customers from a known risk model, so you can see what the partner's data adds.")
    with st.form("pilot_form", border=False):
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input("Bank customers", min_value=500, max_value=500_000, step=500, key="pilot_customers")
        c2.slider("Known to the fintech", min_value=10, max_value=100, step=5, format="%d%%", key="pilot_overlap")
        c3.number_input("Fintechs", min_value=1, max_value=4, step=1, key="pilot_fintechs")
        c4.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="pilot_seed")
        submitted = st.form_submit_button("Generate pilot data", type="primary")
    if not submitted:
        return
    s = st.session_state
    with guarded():
        with st.spinner("Generating the pilot…"):
            bundle = uidata.generate_pilot_bundle(
                s["pilot_customers"], overlap=s["pilot_overlap"] / 100.0, fintechs=s["pilot_fintechs"], seed=s["pilot_seed"]
            )
        use_data(ws, bundle)
        st.success(f"{bundle.description}.")


def sample_form(ws: Workspace) -> None:
    st.markdown(f"A small synthetic set shipped with riskfed (`{sample_dir().name}/`): bank, fintech and new applicants.")
    if st.button("Load sample data", type="primary", key="load_sample"):
        with guarded():
            bundle = uidata.load_sample_bundle(sample_dir())
            use_data(ws, bundle)
            st.success(f"{bundle.description}.")


def read(file, party: str, id_column: str | None = None) -> pd.DataFrame:
    """An uploaded file as a frame (a riskfed error naming ``party`` if unreadable)."""
    return uidata.read_upload(file.name, file.getvalue(), party=party, id_column=id_column)


def upload_form(ws: Workspace) -> None:
    st.markdown("CSV or Parquet. The bank's file needs a customer id and a 0/1 default flag; each fintech file a customer id.")
    left, right = st.columns(2)
    with left:
        bank_file = st.file_uploader("Bank table", type=list(uidata.UPLOAD_TYPES), key="upload_bank")
        bank_box = st.container()
    with right:
        fintech_files = st.file_uploader(
            "Fintech table(s) — one file per fintech", type=list(uidata.UPLOAD_TYPES), accept_multiple_files=True, key="upload_fintechs"
        )
        fintech_box = st.container()
    if bank_file is None or not fintech_files:
        st.caption("Add the bank's file and at least one fintech file to continue.")
        return
    with guarded(bank_box, label=bank_file.name) as outcome:
        bank_preview = read(bank_file, "bank")
    if outcome.failed:
        return
    fintech_previews = []
    for k, f in enumerate(fintech_files):
        with guarded(fintech_box, label=f.name) as outcome:
            fintech_previews.append(read(f, f"fintech_{k + 1}"))
        if outcome.failed:
            return
    with bank_box:
        id_col, label_col = bank_columns(bank_file, bank_preview)
    with fintech_box:
        fintech_id_cols = fintech_columns(fintech_files, fintech_previews, id_col)
    if not st.button("Check and use these files", type="primary", key="use_uploads"):
        return
    if choices_missing(bank_box, fintech_box, id_col, label_col, fintech_files, fintech_id_cols):
        return
    # A problem shows under the file it is about, named as the analyst knows it.
    fintechs = {f"fintech_{k + 1}": f.name for k, f in enumerate(fintech_files)}
    labels = {"bank": bank_file.name, **fintechs}
    with guarded(bank_box, labels=labels, places=dict.fromkeys(fintechs, fintech_box)) as outcome:
        bundle = uploaded_bundle(bank_file, fintech_files, id_col, label_col, fintech_id_cols)
    if outcome.failed:
        return
    use_data(ws, bundle)
    st.success("Files checked: every table is usable.")


def bank_columns(bank_file, preview: pd.DataFrame) -> tuple[str | None, str | None]:
    """The bank's id and default-flag columns, guessed from common names."""
    cols = [str(c) for c in preview.columns]
    guess_id = uidata.guess_id_column(cols)
    id_col = st.selectbox(
        "Customer id column",
        cols,
        index=cols.index(guess_id) if guess_id else None,
        placeholder="Choose the id column",
        key=f"upload_id_{bank_file.file_id}",
    )
    label_options = [c for c in cols if c != id_col]
    guess_label = uidata.guess_label_column(label_options)
    label_col = st.selectbox(
        "Default flag column (1 = defaulted, 0 = repaid)",
        label_options,
        index=label_options.index(guess_label) if guess_label else None,
        placeholder="Choose the default flag column",
        key=f"upload_label_{bank_file.file_id}",
    )
    return id_col, label_col


def fintech_columns(files, previews, bank_id: str | None) -> list[str | None]:
    """Each fintech file's id column (the bank's name when it has it, else a guess)."""
    chosen = []
    for k, (f, frame) in enumerate(zip(files, previews)):
        cols = [str(c) for c in frame.columns]
        guess = bank_id if bank_id in cols else uidata.guess_id_column(cols)
        chosen.append(
            st.selectbox(
                f"Customer id column in {f.name}",
                cols,
                index=cols.index(guess) if guess in cols else None,
                placeholder="Choose the id column",
                key=f"upload_fid_{k}_{f.file_id}",
            )
        )
    return chosen


def choices_missing(bank_box, fintech_box, id_col, label_col, fintech_files, fintech_id_cols) -> bool:
    """Say which column still has to be chosen; ``True`` if one does."""
    if id_col is None:
        bank_box.error("Choose the bank's customer id column.")
        return True
    if label_col is None:
        bank_box.error("Choose the bank's default flag column.")
        return True
    missing = [f.name for f, c in zip(fintech_files, fintech_id_cols) if c is None]
    if missing:
        fintech_box.error(f"Choose the customer id column of {', '.join(missing)}.")
        return True
    return False


def uploaded_bundle(bank_file, fintech_files, id_col: str, label_col: str, fintech_id_cols) -> uidata.DataBundle:
    """Validate the uploaded files exactly as training will."""
    # Re-read with the chosen id columns so ids stay text ("00123" keeps its zeros).
    bank_df = read(bank_file, "bank", id_col)
    fintech_dfs = [read(f, f"fintech_{k + 1}", c) for k, (f, c) in enumerate(zip(fintech_files, fintech_id_cols))]
    return uidata.build_bundle(
        bank_df,
        fintech_dfs,
        id_column=id_col,
        label_column=label_col,
        fintech_id_columns=fintech_id_cols,
        source="upload",
        description=f"Uploaded: {bank_file.name} ({len(bank_df):,} rows) + "
        + ", ".join(f"{f.name} ({len(d):,} rows)" for f, d in zip(fintech_files, fintech_dfs)),
        fintech_labels=[f"Fintech {k + 1} · {f.name}" for k, f in enumerate(fintech_files)],
        synthetic=False,
    )


def show_data(bundle: uidata.DataBundle) -> None:
    st.subheader("Loaded data")
    st.caption(bundle.description)
    cols = st.columns(2 + len(bundle.fintechs))
    cols[0].metric("Bank customers", fmt.count(bundle.bank.n_rows))
    cols[1].metric("Default rate", fmt.percent(float(np.mean(bundle.bank.labels))))
    for k, (label, table) in enumerate(zip(bundle.fintech_labels, bundle.fintechs)):
        cols[2 + k].metric(f"{label.split(' · ')[0]} customers", fmt.count(table.n_rows))
    st.dataframe(tables.party_overview_display(uidata.party_overview(bundle)), hide_index=True)
    names = ["Bank"] + [label for label in bundle.fintech_labels]
    frames = [(bundle.bank_frame, bundle.bank)] + list(zip(bundle.fintech_frames, bundle.fintechs))
    if bundle.applicants is not None:
        names.append("New applicants")
    tabs = st.tabs(names)
    for tab, (frame, table) in zip(tabs, frames):
        with tab:
            st.markdown(f"**{fmt.count(len(frame))} rows · {fmt.count(len(frame.columns))} columns**")
            st.dataframe(tables.column_summary_display(uidata.column_summary(frame, table)), hide_index=True)
            st.caption("First 20 rows")
            st.dataframe(frame.head(20), hide_index=True)
    if bundle.applicants is not None:
        with tabs[-1]:
            st.markdown(f"**{fmt.count(len(bundle.applicants))} applicants to score** (no default flag: they are new)")
            st.dataframe(bundle.applicants.head(20), hide_index=True)


if __name__ == "__main__":
    render()
