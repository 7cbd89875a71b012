"""The analyst's choices that must outlive the page they are made on.

Streamlit forgets a widget's value when its page is not drawn, so every setting lives in
``st.session_state`` under its own key, is re-assigned at the start of every run
(:func:`init_state`), and the widgets are created from there (never with a second
default). :func:`settings_from_state` reads the Train and Align pages' choices into a
:class:`~riskfed.ui.training.TrainingSettings`.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from riskfed.ui.training import INSECURE_KEY_SIZES, SECURE_KEY_SIZES, TrainingSettings, insecure_mode_requested

DEFAULT_PILOT_CUSTOMERS = 5_000  # trains in well under a minute at 2048 bits on 2 cores

KEEP_ALIVE = ("cutoff",)  # set on first use (its default depends on the model's scorecard)


def defaults() -> dict:
    """Every remembered setting and its starting value (test mode read from the environment)."""
    test_mode = insecure_mode_requested()
    return {
        "data_source": "pilot",
        "pilot_customers": DEFAULT_PILOT_CUSTOMERS,
        "pilot_overlap": 70,
        "pilot_fintechs": 1,
        "pilot_seed": 7,
        "psi_method": "ecdh",
        "insecure_test_mode": test_mode,
        "key_bits": INSECURE_KEY_SIZES[0] if test_mode else SECURE_KEY_SIZES[0],
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


def init_state(state: MutableMapping) -> None:
    """Give every setting its default once, and keep every widget value alive."""
    for key, value in defaults().items():
        # Re-assigning keeps a widget's value alive while its page is not shown.
        state[key] = state.get(key, value)
    for key in KEEP_ALIVE:
        if key in state:
            state[key] = state[key]


def settings_from_state(state: MutableMapping) -> TrainingSettings:
    """The training settings the analyst chose on the Train and Align pages."""
    return TrainingSettings(
        key_bits=int(state["key_bits"]),
        insecure_test_mode=bool(state["insecure_test_mode"]),
        psi=state["psi_method"],
        max_epochs=int(state["epochs"]),
        batch_size=int(state["batch_size"]),
        learning_rate=float(state["learning_rate"]),
        l2=float(state["l2"]),
        test_size=float(state["holdout_pct"]) / 100.0,
        random_state=int(state["seed"]) if state["fixed_seed"] else None,
        centralized=bool(state["centralized"]),
    )
