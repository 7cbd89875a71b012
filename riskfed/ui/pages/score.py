"""Step 5 — Score applicants: probability of default, points and a decision at a cut-off,
for one applicant or a batch."""

from __future__ import annotations

import streamlit as st

from riskfed.ui import chrome, figures
from riskfed.ui import data as uidata
from riskfed.ui import format as fmt
from riskfed.ui import scoring as uiscoring
from riskfed.ui.boundary import guarded
from riskfed.ui.state import BatchScores, Workspace

AVERAGE = "(average applicant)"


def render() -> None:
    ws = chrome.workspace()
    chrome.header("score", "Probability of default, scorecard points and a decision for new applicants.")
    if ws.training is None:
        chrome.need_model()
        return
    card = ws.training.model.scorecard
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
        score_one(ws, cutoff)
    with many:
        score_many(ws, cutoff)


# ------------------------------------------------------------------------ one applicant


def score_one(ws: Workspace, cutoff: float) -> None:
    model, bundle = ws.training.model, ws.data
    id_column = bundle.id_column
    choices = [AVERAGE]
    if bundle.applicants is not None:
        choices += bundle.applicants[id_column].astype(str).head(100).tolist()
    start = st.selectbox("Start from", choices, key="one_prefill", help="Fill the form from one of the pilot's new applicants.")
    row = None
    if start != AVERAGE:
        row = bundle.applicants[bundle.applicants[id_column].astype(str) == start].iloc[0].to_dict()
    fields = uiscoring.applicant_fields(model, bundle.bank_frame)
    with st.form(f"one_form_{start}"):
        customer_id = st.text_input("Customer id", value="" if row is None else str(row[id_column]),
                                    help="The fintech looks this id up; if it does not know the person, the bank-only fallback scores them.")
        entered = applicant_inputs(fields, uiscoring.prefill(fields, row), start)
        submitted = st.form_submit_button("Score applicant", type="primary")
    if submitted:
        if not customer_id.strip():
            st.error("Enter the applicant's customer id (the fintech needs it to find its data).")
            return
        with guarded() as outcome:
            frame = uiscoring.applicant_frame(id_column, customer_id, entered, fields)
            scored = uiscoring.score(model, frame, bundle.fintech_tables, id_column=id_column)
            st.session_state["one_result"] = (ws.training.fingerprint, scored.iloc[0].to_dict())
        if outcome.failed:
            return
    stored = st.session_state.get("one_result")
    if stored and stored[0] == ws.training.fingerprint:
        show_applicant(stored[1], id_column, cutoff)


def applicant_inputs(fields, values: dict, start: str) -> dict:
    """One input per bank field, three to a row, prefilled."""
    cols = st.columns(3)
    entered = {}
    for k, f in enumerate(fields):
        col, key = cols[k % 3], f"one_{f.name}_{start}"
        if f.kind == "number" and f.integer:
            entered[f.name] = col.number_input(f.label, value=int(values[f.name]), step=1, key=key)
        elif f.kind == "number":
            entered[f.name] = col.number_input(f.label, value=float(values[f.name]), step=f.step, format="%.4g", key=key)
        else:
            index = f.options.index(values[f.name]) if values[f.name] in f.options else 0
            entered[f.name] = col.selectbox(f.label, f.options, index=index, key=key)
    return entered


def show_applicant(result: dict, id_column: str, cutoff: float) -> None:
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


# ---------------------------------------------------------------------- many applicants


def score_many(ws: Workspace, cutoff: float) -> None:
    model, bundle = ws.training.model, ws.data
    id_column = bundle.id_column
    frame, name, unreadable = applicants_to_score(bundle)
    if unreadable:
        return
    if frame is not None and st.button("Score applicants", type="primary", key="run_batch"):
        with guarded(label=name) as outcome:
            with st.spinner(f"Scoring {len(frame):,} applicants…"):
                scored = uiscoring.score(model, frame, bundle.fintech_tables, id_column=id_column)
            ws.batch = BatchScores(source=name, scored=scored, model_session=str(ws.training.fingerprint))
        if outcome.failed:
            return
    if ws.batch is None or ws.batch.model_session != str(ws.training.fingerprint):
        return
    show_batch(ws, cutoff)


def applicants_to_score(bundle: uidata.DataBundle):
    """(frame, name, unreadable) of the applicants chosen: the pilot's, or an uploaded file."""
    options = {"upload": "Upload a file"}
    if bundle.applicants is not None:
        options = {"pilot": f"The pilot's new applicants ({len(bundle.applicants):,})", **options}
    if st.session_state.get("batch_source") not in options:
        st.session_state["batch_source"] = next(iter(options))
    source = st.radio("Applicants", list(options), format_func=options.get, horizontal=True, key="batch_source")
    if source == "pilot":
        return bundle.applicants, "pilot applicants", False
    upload = st.file_uploader(
        f"Applicants (CSV or Parquet) with '{bundle.id_column}' and the bank's columns", type=list(uidata.UPLOAD_TYPES), key="upload_applicants"
    )
    if upload is None:
        return None, None, False
    with guarded(label=upload.name) as outcome:
        frame = uidata.read_upload(upload.name, upload.getvalue(), party="bank", id_column=bundle.id_column)
    return (None, None, True) if outcome.failed else (frame, upload.name, False)


def show_batch(ws: Workspace, cutoff: float) -> None:
    bundle, scored = ws.data, ws.batch.scored
    id_column = bundle.id_column
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


if __name__ == "__main__":
    render()
