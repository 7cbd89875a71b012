"""Two analysts at once: separate data, separate models, separate private keys.

Each AppTest is its own browser session with its own ``st.session_state``; the app keeps
everything there and never in Streamlit's cross-session caches.
"""

from __future__ import annotations

import re
from pathlib import Path

from riskfed.ui.state import STATE_KEY

REPO = Path(__file__).resolve().parents[2]


def _generate(at, customers: int, seed: int):
    at.session_state["pilot_customers"] = customers
    at.session_state["pilot_seed"] = seed
    at.run()
    at.button(key="FormSubmitter:pilot_form-Generate pilot data").click().run()
    return at


def test_two_sessions_never_see_each_others_data_or_keys(new_app, open_page, wait_for_job, assert_no_exception, page_text):
    alice = _generate(new_app(), 1000, 1)
    bob = _generate(new_app(), 1500, 2)
    ws_a, ws_b = alice.session_state[STATE_KEY], bob.session_state[STATE_KEY]
    assert ws_a is not ws_b and ws_a.session_id != ws_b.session_id
    assert "1,000 bank customers" in page_text(alice) and "1,500" not in page_text(alice)
    assert "1,500 bank customers" in page_text(bob) and "1,000 bank customers" not in page_text(bob)

    # Both train at the same time, each in its own background thread.
    for at in (alice, bob):
        open_page(at, "train")
        at.session_state["batch_size"] = 256
        at.session_state["epochs"] = 1
        at.run()
        at.button(key="run_train").click().run()
    assert ws_a.train_job is not ws_b.train_job
    wait_for_job(alice, "train_job")
    wait_for_job(bob, "train_job")
    for at in (alice, bob):
        assert_no_exception(at)
        assert not at.main.error, [e.value for e in at.main.error]

    run_a, run_b = ws_a.training, ws_b.training
    assert run_a.estimator is not run_b.estimator
    fp_a, fp_b = run_a.report["training"]["key_fingerprint"], run_b.report["training"]["key_fingerprint"]
    assert fp_a != fp_b  # each session has its own coordinator key pair
    assert run_a.report["alignment"]["bank_rows"] == 1000 and run_b.report["alignment"]["bank_rows"] == 1500

    for at, mine, theirs in ((alice, fp_a, fp_b), (bob, fp_b, fp_a)):
        open_page(at, "privacy")
        at.run()
        text = page_text(at)
        assert mine[:4] in text and theirs[:4] + " " + theirs[4:8] not in text


def test_app_never_uses_shared_streamlit_caches():
    sources = [REPO / "app.py", *sorted((REPO / "riskfed" / "ui").rglob("*.py"))]
    assert any(path.parent.name == "pages" for path in sources)
    for path in sources:
        code = path.read_text()
        # Docstrings may name the caches (to forbid them); code may not use them.
        assert not re.search(r"@st\.cache|st\.cache\w*\(|st\.experimental_(memo|singleton)", code), path
