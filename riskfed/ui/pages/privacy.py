"""Step 6 — Privacy: what each party sent and received, the key that protected it, and
what each party can learn."""

from __future__ import annotations

import streamlit as st

from riskfed.ui import chrome, privacy
from riskfed.ui import format as fmt
from riskfed.ui.alignment import KEYED_HASH_WARNING


def render() -> None:
    ws = chrome.workspace()
    chrome.header("privacy", "What each party sent and received, the key that protected it, and what each party can learn.")
    if ws.training is not None:
        last_run(ws.training.report)
    else:
        st.info("Train a model to see what each party sent and received. The threat model below applies to every run.")
    st.subheader("Threat model in plain words")
    st.markdown(privacy.role_table_markdown())
    st.markdown(privacy.THREAT_MODEL_MD)


def last_run(report: dict) -> None:
    """Key, alignment method and traffic of the last training run."""
    t, a = report["training"], report["alignment"]
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


if __name__ == "__main__":
    render()
