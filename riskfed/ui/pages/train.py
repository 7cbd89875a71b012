"""Step 3 — Train: the federated model, trained in a background job, with live progress."""

from __future__ import annotations

import streamlit as st

from riskfed.ui import chrome, figures, privacy, tables
from riskfed.ui import format as fmt
from riskfed.ui.alignment import METHODS
from riskfed.ui.controls import settings_from_state
from riskfed.ui.state import Workspace
from riskfed.ui.training import BATCH_SIZES, INSECURE_KEY_SIZES, SECURE_KEY_SIZES


def render() -> None:
    ws = chrome.workspace()
    chrome.header("train", "Train the credit-default model across both parties. Every value that crosses a party boundary is encrypted or masked.")
    if ws.data is None:
        chrome.need_data()
        return
    chrome.show_notices(ws, "train")
    running = ws.train_job is not None and ws.train_job.running
    with st.container(border=True):
        training_controls(running)
        st.caption(f"Alignment: {METHODS[st.session_state['psi_method']]} (change it on the Align page).")

    settings = settings_from_state(st.session_state)
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
    chrome.next_button("compare")


def training_controls(running: bool) -> None:
    """The training settings; small keys only in the explicit insecure test mode."""
    s = st.session_state
    if not s["insecure_test_mode"] and s["key_bits"] not in SECURE_KEY_SIZES:
        s["key_bits"] = SECURE_KEY_SIZES[0]
    key_sizes = SECURE_KEY_SIZES + (INSECURE_KEY_SIZES if s["insecure_test_mode"] else ())
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
        st.checkbox("Insecure test mode — offer 512- and 1024-bit keys (never for real data)", key="insecure_test_mode", disabled=running)


def progress_text(snap, max_epochs: int) -> tuple[float, str]:
    """The progress bar's value and text for a running job's snapshot."""
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


@st.fragment(run_every=chrome.POLL_SECONDS)
def train_monitor() -> None:
    ws = chrome.workspace()
    job = ws.train_job
    snap = chrome.running_snapshot(job)
    max_epochs = ws.train_settings.max_epochs if ws.train_settings else 1
    value, text = progress_text(snap, max_epochs)
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


def batch_losses(report: dict) -> list[dict]:
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
    st.plotly_chart(figures.loss_figure(batch_losses(report)), key="final_loss")
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


if __name__ == "__main__":
    render()
