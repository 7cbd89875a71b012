"""riskfed analyst app — ``streamlit run app.py``.

Six steps: Data → Align → Train → Compare → Score applicants → Privacy, one page each in
:mod:`riskfed.ui.pages`; the shared header, next button and sidebar are in
:mod:`riskfed.ui.chrome`, and every error is turned into a message by
:mod:`riskfed.ui.boundary`. Everything an analyst loads or trains — tables, the model, the
coordinator's private key — lives in this browser session's ``st.session_state`` only.
"""

import streamlit as st

from riskfed.ui import chrome
from riskfed.ui.boundary import guarded
from riskfed.ui.controls import init_state

st.set_page_config(page_title="riskfed · federated credit risk", page_icon="🏦", layout="wide")
# Defence in depth: the boundary below turns every error into a message; should one slip
# through, the page still shows no traceback (the server log keeps it).
st.set_option("client.showErrorDetails", "none")
st.set_option("client.toolbarMode", "viewer")  # analysts need no developer menu

init_state(st.session_state)
workspace = chrome.workspace()
workspace.collect()
page = st.navigation({"riskfed": chrome.navigation_pages(workspace)})
chrome.sidebar(workspace)
with guarded():
    page.run()
