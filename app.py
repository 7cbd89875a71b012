"""riskfed analyst app — ``streamlit run app.py``.

Six steps in the sidebar: Data → Align → Train → Compare → Score applicants → Privacy.
This file only lays out pages, gathers the analyst's choices and calls riskfed; the
tables, figures, jobs and state behind them live in :mod:`riskfed.ui` (unit-tested).

Everything an analyst loads or trains — tables, the model, the coordinator's private
key — lives in this browser session's ``st.session_state`` and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from riskfed.errors import RiskfedError
from riskfed.ui import data as uidata
from riskfed.ui import figures, privacy, tables
from riskfed.ui import format as fmt
from riskfed.ui import scoring as uiscoring
from riskfed.ui.alignment import KEYED_HASH_WARNING, METHODS
from riskfed.ui.report import report_html, report_json
from riskfed.ui.state import BatchScores, Workspace, get_workspace
from riskfed.ui.training import (
    BATCH_SIZES,
    INSECURE_KEY_SIZES,
    SECURE_KEY_SIZES,
    TrainingSettings,
    insecure_mode_requested,
)

SAMPLE_DIR = Path(os.environ.get("RISKFED_SAMPLE_DATA", Path(__file__).resolve().parent / "sample_data"))
DEFAULT_PILOT_CUSTOMERS = 5_000  # trains in well under a minute at 2048 bits on 2 cores
POLL_SECONDS = 1.0

PAGES = {
    "data": "Data",
    "align": "Align",
    "train": "Train",
    "compare": "Compare",
    "score": "Score applicants",
    "privacy": "Privacy",
}

# Settings that must survive moving between pages. Streamlit forgets a widget's value
# when the widget is not drawn, so these live in session_state under their own keys and
# the widgets are created from there (never with a second default).
TEST_MODE = insecure_mode_requested()
DEFAULTS = {
    "nav": "data",
    "data_source": "pilot",
    "pilot_customers": DEFAULT_PILOT_CUSTOMERS,
    "pilot_overlap": 70,
    "pilot_fintechs": 1,
    "pilot_seed": 7,
    "psi_method": "ecdh",
    "insecure_test_mode": TEST_MODE,
    "key_bits": INSECURE_KEY_SIZES[0] if TEST_MODE else SECURE_KEY_SIZES[0],
    "epochs": 3,
    "batch_size": 1024,
    "learning_rate": 1.0,
    "l2": 1e-4,
    "holdout_pct": 30,
    "fixed_seed": False,
    "seed": 0,
    "centralized": True,
    "batch_source": "pilot",
}
KEEP_ALIVE = ("cutoff",)  # set on first use (its default depends on the model's scorecard)


# ----------------------------------------------------------------------------- helpers


def workspace() -> Workspace:
    return get_workspace(st.session_state)


def running_snapshot(job):
    """The snapshot of a background job that is still running; when it has finished (or
    never started), rerun the page so it shows the result instead of the monitor."""
    if job is None or not job.running:
        st.rerun()
    return job.snapshot()


def init_state() -> None:
    for key, value in DEFAULTS.items():
        # Re-assigning keeps a widget's value alive while its page is not shown.
        st.session_state[key] = st.session_state.get(key, value)
    for key in KEEP_ALIVE:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def without_party(message: str, party: str | None) -> str:
    """Drop a leading "party: " when the file name already says whose table it is."""
    prefix = f"{party}: "
    return message[len(prefix):] if party and message.startswith(prefix) else message


def go(page: str) -> None:
    st.session_state["nav"] = page


def next_button(page: str, label: str | None = None) -> None:
    st.button(label or f"Next: {PAGES[page]} →", type="primary", on_click=go, args=(page,), key=f"next_{page}")


def header(step: int, title: str, intro: str) -> None:
    st.title(f"{step}. {title}")
    st.caption(intro)


def friendly(exc: BaseException) -> str:
    """A readable message for any error; never a traceback."""
    if isinstance(exc, RiskfedError):
        return str(exc)
    return f"Something unexpected went wrong ({type(exc).__name__}: {exc}). Please report it with the steps that led here."


def show_notices(ws: Workspace, page: str) -> None:
    for notice in ws.take_notices(page):
        getattr(st, notice.kind)(notice.text)


def need_data() -> None:
    st.info("Load data first: generate a pilot, use the sample data or upload your files.")
    st.button("Go to Data", on_click=go, args=("data",), key="goto_data")


def need_model() -> None:
    st.info("Train a model first — the comparison, scoring and traffic come from the training run.")
    st.button("Go to Train", on_click=go, args=("train",), key="goto_train")


def settings_from_state(ws: Workspace) -> TrainingSettings:
    s = st.session_state
    return TrainingSettings(
        key_bits=int(s["key_bits"]),
        insecure_test_mode=bool(s["insecure_test_mode"]),
        psi=s["psi_method"],
        max_epochs=int(s["epochs"]),
        batch_size=int(s["batch_size"]),
        learning_rate=float(s["learning_rate"]),
        l2=float(s["l2"]),
        test_size=float(s["holdout_pct"]) / 100.0,
        random_state=int(s["seed"]) if s["fixed_seed"] else None,
        centralized=bool(s["centralized"]),
    )


def use_data(ws: Workspace, bundle: uidata.DataBundle) -> None:
    ws.set_data(bundle)
    # The centralised reference joins both parties' data: a fair yardstick on synthetic
    # pilots, opt-in on real files.
    st.session_state["centralized"] = bundle.synthetic


# ------------------------------------------------------------------------------- sidebar


def sidebar(ws: Workspace) -> None:
    done = {
        "data": ws.data is not None,
        "align": ws.overlap is not None,
        "train": ws.training is not None,
        "compare": ws.training is not None,
        "score": ws.batch is not None,
        "privacy": False,
    }
    with st.sidebar:
        st.markdown("### riskfed")
        st.caption("Federated credit-risk modelling: the bank's labels, the fintech's data, no raw data shared.")
        st.radio(
            "Steps",
            list(PAGES),
            format_func=lambda k: f"{list(PAGES).index(k) + 1}. {PAGES[k]}" + ("  ✓" if done[k] else ""),
            key="nav",
            label_visibility="collapsed",
        )
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
    """Training progress on every page; the page refreshes itself when training ends."""
    snap = running_snapshot(workspace().train_job)
    st.caption(f"**Training** · {fmt.percent(snap.training_fraction, 0)} of batches · {fmt.duration(snap.elapsed)}")
    st.progress(snap.training_fraction)


# ---------------------------------------------------------------------------------- Data


def page_data(ws: Workspace) -> None:
    header(1, "Data", "Pick the bank's table (with the default flag) and the fintech's table. Nothing leaves this session.")
    sources = {"pilot": "Generate a pilot", "sample": "Sample data", "upload": "Upload files"}
    source = st.radio("Where does the data come from?", list(sources), format_func=sources.get, horizontal=True, key="data_source")
    with st.container(border=True):
        if source == "pilot":
            pilot_form(ws)
        elif source == "sample":
            sample_form(ws)
        else:
            upload_form(ws)
    if ws.data is not None:
        show_data(ws.data)
        next_button("align")


def pilot_form(ws: Workspace) -> None:
    st.markdown("Synthetic bank and fintech customers from a known risk model, so you can see what the partner's data adds.")
    with st.form("pilot_form", border=False):
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input("Bank customers", min_value=500, max_value=500_000, step=500, key="pilot_customers")
        c2.slider("Known to the fintech", min_value=10, max_value=100, step=5, format="%d%%", key="pilot_overlap")
        c3.number_input("Fintechs", min_value=1, max_value=4, step=1, key="pilot_fintechs")
        c4.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="pilot_seed")
        submitted = st.form_submit_button("Generate pilot data", type="primary")
    if submitted:
        s = st.session_state
        try:
            with st.spinner("Generating the pilot…"):
                bundle = uidata.generate_pilot_bundle(
                    s["pilot_customers"], overlap=s["pilot_overlap"] / 100.0, fintechs=s["pilot_fintechs"], seed=s["pilot_seed"]
                )
            use_data(ws, bundle)
            st.success(f"{bundle.description}.")
        except Exception as exc:  # noqa: BLE001
            st.error(friendly(exc))


def sample_form(ws: Workspace) -> None:
    st.markdown(f"A small synthetic set shipped with riskfed (`{SAMPLE_DIR.name}/`): bank, fintech and new applicants.")
    if st.button("Load sample data", type="primary", key="load_sample"):
        try:
            bundle = uidata.load_sample_bundle(SAMPLE_DIR)
            use_data(ws, bundle)
            st.success(f"{bundle.description}.")
        except Exception as exc:  # noqa: BLE001
            st.error(friendly(exc))


def _read(file, party: str, id_column: str | None = None) -> pd.DataFrame:
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

    try:
        bank_preview = _read(bank_file, "bank")
    except Exception as exc:  # noqa: BLE001
        bank_box.error(f"{bank_file.name}: {without_party(friendly(exc), 'bank')}")
        return
    fintech_previews = []
    for k, f in enumerate(fintech_files):
        try:
            fintech_previews.append(_read(f, f"fintech_{k + 1}"))
        except Exception as exc:  # noqa: BLE001
            fintech_box.error(f"{f.name}: {without_party(friendly(exc), f'fintech_{k + 1}')}")
            return

    bank_cols = [str(c) for c in bank_preview.columns]
    guess_id = uidata.guess_id_column(bank_cols)
    with bank_box:
        id_col = st.selectbox(
            "Customer id column",
            bank_cols,
            index=bank_cols.index(guess_id) if guess_id else None,
            placeholder="Choose the id column",
            key=f"upload_id_{bank_file.file_id}",
        )
        label_options = [c for c in bank_cols if c != id_col]
        guess_label = uidata.guess_label_column(label_options)
        label_col = st.selectbox(
            "Default flag column (1 = defaulted, 0 = repaid)",
            label_options,
            index=label_options.index(guess_label) if guess_label else None,
            placeholder="Choose the default flag column",
            key=f"upload_label_{bank_file.file_id}",
        )
    fintech_id_cols = []
    with fintech_box:
        for k, (f, frame) in enumerate(zip(fintech_files, fintech_previews)):
            cols = [str(c) for c in frame.columns]
            guess = id_col if id_col in cols else uidata.guess_id_column(cols)
            fintech_id_cols.append(
                st.selectbox(
                    f"Customer id column in {f.name}",
                    cols,
                    index=cols.index(guess) if guess in cols else None,
                    placeholder="Choose the id column",
                    key=f"upload_fid_{k}_{f.file_id}",
                )
            )

    if not st.button("Check and use these files", type="primary", key="use_uploads"):
        return
    if id_col is None:
        bank_box.error("Choose the bank's customer id column.")
        return
    if label_col is None:
        bank_box.error("Choose the bank's default flag column.")
        return
    missing = [f.name for f, c in zip(fintech_files, fintech_id_cols) if c is None]
    if missing:
        fintech_box.error(f"Choose the customer id column of {', '.join(missing)}.")
        return
    try:
        # Re-read with the chosen id columns so ids stay text ("00123" keeps its zeros).
        bank_df = _read(bank_file, "bank", id_col)
        fintech_dfs = [_read(f, f"fintech_{k + 1}", c) for k, (f, c) in enumerate(zip(fintech_files, fintech_id_cols))]
        bundle = uidata.build_bundle(
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
    except Exception as exc:  # noqa: BLE001
        # Show the problem under the file it is about, named as the analyst knows it.
        party = getattr(exc, "party", None)
        if party and party.startswith("fintech_"):
            k = int(party.split("_")[1]) - 1
            name = fintech_files[k].name if k < len(fintech_files) else party
            fintech_box.error(f"{name}: {without_party(friendly(exc), party)}")
        elif party == "bank":
            bank_box.error(f"{bank_file.name}: {without_party(friendly(exc), party)}")
        else:
            bank_box.error(friendly(exc))
        return
    use_data(ws, bundle)
    st.success("Files checked: every table is usable.")


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


# --------------------------------------------------------------------------------- Align


def page_align(ws: Workspace) -> None:
    header(2, "Align", "Find the customers the bank and the fintech share — without either side revealing the others.")
    if ws.data is None:
        need_data()
        return
    show_notices(ws, "align")
    running = ws.align_job is not None and ws.align_job.running
    method = st.radio(
        "Matching method",
        list(METHODS),
        format_func=lambda m: METHODS[m] + (" (recommended)" if m == "ecdh" else ""),
        captions=[
            "Each side blinds its ids with its own secret; nothing is learned about customers outside the overlap.",
            "Faster. Both sides hash ids with a shared secret key.",
        ],
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
    next_button("train")


@st.fragment(run_every=POLL_SECONDS)
def align_monitor() -> None:
    job = workspace().align_job
    snap = running_snapshot(job)
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


# --------------------------------------------------------------------------------- Train


def page_train(ws: Workspace) -> None:
    header(3, "Train", "Train the credit-default model across both parties. Every value that crosses a party boundary is encrypted or masked.")
    if ws.data is None:
        need_data()
        return
    show_notices(ws, "train")
    running = ws.train_job is not None and ws.train_job.running
    s = st.session_state
    if not s["insecure_test_mode"] and s["key_bits"] not in SECURE_KEY_SIZES:
        s["key_bits"] = SECURE_KEY_SIZES[0]
    key_sizes = SECURE_KEY_SIZES + (INSECURE_KEY_SIZES if s["insecure_test_mode"] else ())

    with st.container(border=True):
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.selectbox(
            "Paillier key size",
            key_sizes,
            format_func=lambda b: f"{b} bits" + (" (test only)" if b in INSECURE_KEY_SIZES else ""),
            key="key_bits",
            disabled=running,
            help="2048 bits is the minimum for real data; 3072 bits is stronger and about 3× slower.",
        )
        c2.number_input("Epochs", min_value=1, max_value=50, step=1, key="epochs", disabled=running, help="Passes over the training rows (training may stop earlier when the model stops moving).")
        c3.selectbox("Batch size", BATCH_SIZES, key="batch_size", disabled=running, help="Rows per encrypted update. At least 256, so a party's gradient cannot reveal individual default flags.")
        c4.number_input("Learning rate", min_value=0.01, max_value=10.0, step=0.1, format="%.2f", key="learning_rate", disabled=running)
        c5.number_input("Regularisation (L2)", min_value=0.0, max_value=1.0, step=1e-4, format="%.4f", key="l2", disabled=running)
        with st.expander("More settings"):
            a1, a2, a3 = st.columns(3)
            a1.slider("Holdout share", min_value=10, max_value=50, step=5, format="%d%%", key="holdout_pct", disabled=running)
            a2.checkbox(
                "Fixed seed (reproducible runs)",
                key="fixed_seed",
                disabled=running,
                help="Off: a fresh secret decides the split and batches of every run. A fixed seed reveals the split "
                "to anyone who knows it, and with it which shared customers default — for tests on synthetic data only.",
            )
            a2.number_input("Seed (split and batches)", min_value=0, max_value=2**31 - 1, step=1, key="seed", disabled=running or not s["fixed_seed"])
            a3.checkbox(
                "Fit the centralised reference (pilot only)",
                key="centralized",
                disabled=running,
                help="A model on the joined data, as a yardstick. A real deployment never joins the data.",
            )
            st.checkbox(
                "Insecure test mode — offer 512- and 1024-bit keys (never for real data)",
                key="insecure_test_mode",
                disabled=running,
            )
        st.caption(f"Alignment: {METHODS[s['psi_method']]} (change it on the Align page).")

    settings = settings_from_state(ws)
    current = ws.is_current(settings)
    if settings.key_bits in INSECURE_KEY_SIZES:
        st.warning(f"{settings.key_bits}-bit keys can be broken: use them only for tests and demonstrations.", icon="⚠️")
    label = "Model is up to date" if current else ("Train again with these settings" if ws.training else "Train the model")
    if st.button(label, type="primary", disabled=running or current, key="run_train",
                 help="Change a setting to train again." if current else None):
        ws.start_training(settings)
        st.rerun()
    if running:
        train_monitor()
        return
    if ws.training is None:
        return
    if not current:
        st.info("Below: the model trained with earlier settings. Train again to apply the new ones.")
    show_training(ws)
    next_button("compare")


def _progress_text(snap, max_epochs: int) -> tuple[float, str]:
    phase = snap.latest.phase if snap.latest else "alignment"
    if phase == "alignment":
        event = snap.latest
        if event is not None and event.done >= event.total:
            return 0.05, f"Aligned: {event.message} · starting encrypted training"
        return 0.02, f"Aligning customers · {event.message if event else 'opening the session'}"
    if phase == "training":
        event = snap.phase_latest["training"]
        eta = snap.eta_seconds
        left = f" · about {fmt.duration(eta)} left" if eta is not None else ""
        if event.done >= event.total:
            return 0.95, "Encrypted training finished · scoring the holdout"
        per_epoch = max(1, event.total // max(1, max_epochs))
        epoch = event.epoch or 1
        batch = event.done - (epoch - 1) * per_epoch
        return 0.05 + 0.9 * snap.training_fraction, f"Epoch {epoch} of {max_epochs} · batch {batch} of {per_epoch}{left}"
    return 0.97, "Scoring the holdout and fitting the baselines"


@st.fragment(run_every=POLL_SECONDS)
def train_monitor() -> None:
    ws = workspace()
    job = ws.train_job
    snap = running_snapshot(job)
    max_epochs = ws.train_settings.max_epochs if ws.train_settings else 1
    value, text = _progress_text(snap, max_epochs)
    st.progress(value, text=f"{text} · {fmt.duration(snap.elapsed)} elapsed")
    event = snap.phase_latest.get("training")
    if snap.losses:
        st.plotly_chart(figures.loss_figure(snap.losses, total_steps=event.total if event else None), key="live_loss")
    else:
        st.caption("The training loss appears here, batch by batch, as soon as the first encrypted batch is done.")
    if snap.cancel_requested:
        st.caption("Cancelling — the run stops after the current batch.")
    elif st.button("Cancel training", key="cancel_train"):
        job.cancel()
        st.rerun(scope="fragment")


def _batch_losses(report: dict) -> list[dict]:
    return [{"step": k + 1, "epoch": b["epoch"], "loss": b["loss"]} for k, b in enumerate(report["training"]["batch_losses"])]


def show_training(ws: Workspace) -> None:
    report = ws.training.report
    t = report["training"]
    st.subheader("Training run")
    cols = st.columns(5)
    cols[0].metric("Training time", fmt.duration(t["seconds"]))
    cols[1].metric("Epochs", fmt.count(t["epochs"]))
    cols[2].metric("Key size", f"{t['key_bits']} bits")
    cols[3].metric("Training customers", fmt.count(t["train_rows"]))
    cols[4].metric("Data exchanged", fmt.data_size(sum(t["bytes_sent"].values())))
    st.plotly_chart(figures.loss_figure(_batch_losses(report)), key="final_loss")
    st.caption(f"Stopped: {t['stop_reason']}. Loss per batch is computed from encrypted aggregates; no party sees per-customer values.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Time per phase**")
        st.dataframe(tables.timings_table(report), hide_index=True)
        st.markdown("**Per epoch**")
        st.dataframe(tables.history_table(t["history"]), hide_index=True)
    with right:
        st.markdown("**Data sent and received per party**")
        st.dataframe(privacy.traffic_by_party(t), hide_index=True)


# ------------------------------------------------------------------------------- Compare


def page_compare(ws: Workspace) -> None:
    header(4, "Compare", "How much better is the model with the fintech's data than what the bank can do alone? Holdout customers only.")
    if ws.training is None:
        need_model()
        return
    result = ws.training.result
    report = result.report
    metrics = report["metrics"]
    holdout = result.holdout
    y = holdout["y"].to_numpy()
    models = [m for m in ("federated", "bank_only", "centralized") if m in holdout.columns]
    predictions = {m: holdout[m].to_numpy() for m in models}

    lift = report["comparison"]["auc_lift_over_bank_only"]
    cols = st.columns(4)
    cols[0].metric("Federated AUC", fmt.decimal(metrics["federated"]["auc"]))
    cols[1].metric("Bank-only AUC", fmt.decimal(metrics["bank_only"]["auc"]))
    bank_auc = metrics["bank_only"]["auc"]
    cols[2].metric(
        "AUC lift from the fintech's data",
        fmt.signed(lift),
        delta=f"{lift / bank_auc:+.1%} vs. bank only" if bank_auc else None,
        delta_color="normal",
    )
    if "centralized" in metrics:
        gap = report["comparison"]["auc_gap_to_centralized"]
        cols[3].metric("Gap to centralised reference", fmt.decimal(abs(gap)), help="Pilot-only yardstick: a model on joined data.")
    st.dataframe(tables.metrics_table(metrics), hide_index=True)
    if "centralized" in metrics:
        st.caption("Centralised reference = a model on the joined data, computed only in pilots: a real deployment never joins the data.")
    else:
        st.caption("No centralised reference: it needs the parties' data joined, which only a pilot may do (enable it on Train).")

    left, right = st.columns(2)
    left.plotly_chart(figures.roc_figure(y, predictions), key="roc")
    right.plotly_chart(figures.ks_figure(y, predictions), key="ks")

    st.subheader("Score distribution and deciles")
    chosen = st.selectbox("Model", models, format_func=figures.model_label, key="compare_model")
    card = ws.training.model.scorecard
    pts = np.asarray(card.points(np.clip(predictions[chosen], 0.0, 1.0)), dtype=float)
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.score_distribution_figure(pts, y), key="score_dist")
    right.plotly_chart(figures.ks_detail_figure(y, predictions[chosen], name=chosen), key="ks_detail")
    st.markdown("**Default rate and lift by decile of predicted PD**")
    st.dataframe(tables.decile_display(y, predictions[chosen]), hide_index=True)

    st.subheader("Report")
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button("Download report (JSON)", report_json(report), file_name="riskfed-report.json", mime="application/json", key="dl_json")
    d2.download_button("Download report (HTML)", report_html(report), file_name="riskfed-report.html", mime="text/html", key="dl_html")
    next_button("score")


# --------------------------------------------------------------------------------- Score


def page_score(ws: Workspace) -> None:
    header(5, "Score applicants", "Probability of default, scorecard points and a decision for new applicants.")
    if ws.training is None:
        need_model()
        return
    model = ws.training.model
    card = model.scorecard
    bundle = ws.data
    if "cutoff" not in st.session_state:
        st.session_state["cutoff"] = uiscoring.default_cutoff(card)
    c1, c2 = st.columns([2, 3])
    c1.slider("Approve at or above", min_value=400, max_value=750, step=5, format="%d pts", key="cutoff")
    cutoff = float(st.session_state["cutoff"])
    c2.markdown(
        f"**Cut-off {fmt.points(cutoff)}** = approve when the probability of default is at most "
        f"**{fmt.probability(card.probability(cutoff))}**.  \n"
        f"Scale: {fmt.points(card.base_points)} at {card.base_odds:g}:1 good:bad odds; every {card.pdo:g} points double the odds."
    )
    one, many = st.tabs(["One applicant", "Many applicants"])
    with one:
        score_one(ws, model, bundle, cutoff)
    with many:
        score_many(ws, model, bundle, cutoff)


def score_one(ws: Workspace, model, bundle: uidata.DataBundle, cutoff: float) -> None:
    fields = uiscoring.applicant_fields(model, bundle.bank_frame)
    id_column = bundle.id_column
    choices = ["(average applicant)"]
    if bundle.applicants is not None:
        choices += bundle.applicants[id_column].astype(str).head(100).tolist()
    start = st.selectbox("Start from", choices, key="one_prefill", help="Fill the form from one of the pilot's new applicants.")
    row = None
    if start != choices[0]:
        row = bundle.applicants[bundle.applicants[id_column].astype(str) == start].iloc[0].to_dict()
    values = uiscoring.prefill(fields, row)
    with st.form(f"one_form_{start}"):
        customer_id = st.text_input("Customer id", value="" if row is None else str(row[id_column]),
                                    help="The fintech looks this id up; if it does not know the person, the bank-only fallback scores them.")
        cols = st.columns(3)
        entered = {}
        for k, f in enumerate(fields):
            col = cols[k % 3]
            if f.kind == "number":
                if f.integer:
                    entered[f.name] = col.number_input(f.label, value=int(values[f.name]), step=1, key=f"one_{f.name}_{start}")
                else:
                    entered[f.name] = col.number_input(f.label, value=float(values[f.name]), step=f.step, format="%.4g", key=f"one_{f.name}_{start}")
            else:
                entered[f.name] = col.selectbox(f.label, f.options, index=f.options.index(values[f.name]) if values[f.name] in f.options else 0, key=f"one_{f.name}_{start}")
        submitted = st.form_submit_button("Score applicant", type="primary")
    if submitted:
        if not customer_id.strip():
            st.error("Enter the applicant's customer id (the fintech needs it to find its data).")
            return
        try:
            frame = uiscoring.applicant_frame(id_column, customer_id, entered, fields)
            scored = uiscoring.score(model, frame, bundle.fintech_tables, id_column=id_column)
            st.session_state["one_result"] = (ws.training.fingerprint, scored.iloc[0].to_dict())
        except Exception as exc:  # noqa: BLE001
            st.error(friendly(exc))
            return
    stored = st.session_state.get("one_result")
    if not stored or stored[0] != ws.training.fingerprint:
        return
    result = stored[1]
    decision = uiscoring.APPROVE if result["score_points"] >= cutoff else uiscoring.DECLINE
    st.subheader(f"Applicant {result[id_column]}")
    c = st.columns(4)
    c[0].metric("Probability of default", fmt.probability(result["probability_of_default"]))
    c[1].metric("Score", fmt.points(result["score_points"]))
    c[2].metric("Decision", decision, delta=f"{result['score_points'] - cutoff:+.0f} pts vs cut-off", delta_color="normal")
    c[3].metric(
        "Scored by",
        "Federated" if result["model"] == "federated" else "Bank only",
        help="Federated: bank and fintech data. Bank only: the fallback for customers a fintech does not know.",
    )
    (st.success if decision == uiscoring.APPROVE else st.error)(
        f"{decision}: {fmt.points(result['score_points'])} against a cut-off of {fmt.points(cutoff)}. "
        f"{uiscoring.MODEL_DESCRIPTIONS[result['model']]}."
    )
    factors = uiscoring.top_factors(result)
    st.markdown("**Top factors behind this score**")
    if factors.empty:
        st.caption("No factor lowers this applicant's score below the average applicant's.")
    else:
        st.dataframe(factors, hide_index=True)


def score_many(ws: Workspace, model, bundle: uidata.DataBundle, cutoff: float) -> None:
    id_column = bundle.id_column
    options = {"upload": "Upload a file"}
    if bundle.applicants is not None:
        options = {"pilot": f"The pilot's new applicants ({len(bundle.applicants):,})", **options}
    if st.session_state.get("batch_source") not in options:
        st.session_state["batch_source"] = next(iter(options))
    source = st.radio("Applicants", list(options), format_func=options.get, horizontal=True, key="batch_source")
    frame, name = None, None
    if source == "pilot":
        frame, name = bundle.applicants, "pilot applicants"
    else:
        upload = st.file_uploader(
            f"Applicants (CSV or Parquet) with '{id_column}' and the bank's columns", type=list(uidata.UPLOAD_TYPES), key="upload_applicants"
        )
        if upload is not None:
            try:
                frame, name = _read(upload, "bank", id_column), upload.name
            except Exception as exc:  # noqa: BLE001
                st.error(f"{upload.name}: {without_party(friendly(exc), 'bank')}")
                return
    if frame is not None and st.button("Score applicants", type="primary", key="run_batch"):
        try:
            with st.spinner(f"Scoring {len(frame):,} applicants…"):
                scored = uiscoring.score(model, frame, bundle.fintech_tables, id_column=id_column)
            ws.batch = BatchScores(source=name, scored=scored, model_session=str(ws.training.fingerprint))
        except Exception as exc:  # noqa: BLE001
            st.error(f"{name}: {without_party(friendly(exc), getattr(exc, 'party', None))}")
            return
    if ws.batch is None or ws.batch.model_session != str(ws.training.fingerprint):
        return
    scored = ws.batch.scored
    summary = uiscoring.batch_summary(scored, cutoff)
    st.subheader(f"Scored: {ws.batch.source}")
    c = st.columns(5)
    c[0].metric("Applicants", fmt.count(summary["applicants"]))
    c[1].metric("Approved", fmt.percent(summary["approval_rate"]), help=f"{fmt.count(summary['approved'])} at or above {fmt.points(cutoff)}")
    c[2].metric("Mean PD", fmt.probability(summary["mean_pd"]))
    c[3].metric("Federated model", fmt.count(summary["federated"]))
    c[4].metric("Bank-only fallback", fmt.count(summary["fallback"]), help="Applicants a fintech does not know.")
    check = uiscoring.outcome_check(scored, bundle.applicant_outcomes, cutoff, id_column=id_column) if ws.batch.source == "pilot applicants" else None
    if check:
        st.caption(
            f"Pilot check with the simulated outcomes: default rate {fmt.percent(check['approved_default_rate'])} among approved "
            f"vs {fmt.percent(check['declined_default_rate'])} among declined applicants."
        )
    st.plotly_chart(figures.applicant_points_figure(scored["score_points"].to_numpy(), cutoff=cutoff), key="batch_hist")
    display = uiscoring.batch_display(scored, cutoff, id_column=id_column)
    st.dataframe(
        display,
        hide_index=True,
        column_config={
            id_column: st.column_config.TextColumn("Customer id"),
            "probability_of_default": st.column_config.NumberColumn("Probability of default", format="percent"),
            "score_points": st.column_config.NumberColumn("Points", format="%.0f"),
            "decision": st.column_config.TextColumn("Decision"),
            "model": st.column_config.TextColumn("Scored by"),
            **{f"factor_{k}": st.column_config.TextColumn(f"Factor {k}") for k in range(1, 4)},
        },
    )
    st.download_button(
        "Download scores (CSV)", display.to_csv(index=False), file_name="riskfed-scores.csv", mime="text/csv", key="dl_scores"
    )


# ------------------------------------------------------------------------------- Privacy


def page_privacy(ws: Workspace) -> None:
    header(6, "Privacy", "What each party sent and received, the key that protected it, and what each party can learn.")
    if ws.training is not None:
        t = ws.training.report["training"]
        a = ws.training.report["alignment"]
        c = st.columns(4)
        c[0].metric("Paillier key size", f"{t['key_bits']} bits")
        c[1].metric("Alignment", "ECDH PSI" if a["method"] == "ecdh" else "Keyed hash")
        c[2].metric("Messages exchanged", fmt.count(sum(m["messages"] for m in t["messages"])))
        c[3].metric("Data exchanged", fmt.data_size(sum(t["bytes_sent"].values())))
        st.markdown(
            f"Public key fingerprint **`{fmt.key_fingerprint(t['key_fingerprint'])}`** — every party checks it received "
            "this same key. The matching private key stays with the coordinator, inside this browser session."
        )
        if t["key_bits"] < 2048:
            st.warning("This run used an insecure test key. Retrain with 2048 or 3072 bits for real data.", icon="⚠️")
        if a["method"] == "keyed-hash":
            st.warning(KEYED_HASH_WARNING, icon="⚠️")
        st.subheader("Traffic per party")
        st.dataframe(privacy.traffic_by_party(t), hide_index=True)
        st.subheader("Every message type, in protocol order")
        detail = privacy.traffic_detail(t["messages"])
        st.dataframe(detail, hide_index=True, height=36 * (len(detail) + 1) + 4)
    else:
        st.info("Train a model to see what each party sent and received. The threat model below applies to every run.")
    st.subheader("Threat model in plain words")
    st.markdown(privacy.role_table_markdown())
    st.markdown(privacy.THREAT_MODEL_MD)


# ---------------------------------------------------------------------------------- main

PAGE_FUNCTIONS = {
    "data": page_data,
    "align": page_align,
    "train": page_train,
    "compare": page_compare,
    "score": page_score,
    "privacy": page_privacy,
}


def main() -> None:
    st.set_page_config(page_title="riskfed · federated credit risk", page_icon="🏦", layout="wide")
    # Defence in depth: every error is caught and shown as a message below; should one
    # slip through, the page still shows no traceback (the server log keeps it).
    st.set_option("client.showErrorDetails", "none")
    st.set_option("client.toolbarMode", "viewer")  # analysts need no developer menu
    init_state()
    ws = workspace()
    ws.collect()
    sidebar(ws)
    page = st.session_state.get("nav", "data")
    try:
        PAGE_FUNCTIONS.get(page, page_data)(ws)
    except Exception as exc:  # noqa: BLE001 - last line of defence: a message, never a traceback
        st.error(friendly(exc))


main()
