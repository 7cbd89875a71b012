"""The Privacy page's content: what each protocol message carries, and the threat model
in plain words (the full version is ``docs/threat-model.md``).

Step names are the ``STEP`` of each message type in :mod:`riskfed.protocol.messages`;
the transport counts traffic by (sender, recipient, step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from riskfed.ui import format as fmt

ENCRYPTED = "Paillier-encrypted"
MASKED = "masked with a random value"
BLINDED = "blinded (ECDH)"
HASHED = "keyed hash"
COUNTS = "no customer data"
PLAIN = "plaintext (accepted leak)"

# step → (what it carries, how it is protected)
STEP_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "session_open": ("Session id, parties, key size, alignment method", COUNTS),
    "key_request": ("A fintech asks the coordinator for the public key", COUNTS),
    "public_key": ("The Paillier public key and its fingerprint", "public by design"),
    "session_ready": ("The fintech's row count and the key it received", COUNTS),
    "psi_blinded": ("The bank's ids, each blinded with the bank's secret, shuffled", BLINDED),
    "psi_double_blinded": ("The bank's points re-blinded, and the fintech's own blinded ids", BLINDED),
    "hash_key": ("The secret key for keyed hashing (never sent to the coordinator)", "secret shared by bank and fintech"),
    "hashed_ids": ("The fintech's ids as keyed hashes", HASHED),
    "psi_result": ("Which of the fintech's rows are shared customers (positions only)", "intersection only"),
    "training_plan": ("Training rows (positions), settings, key fingerprint", "positions, no values"),
    "plan_accepted": ("How many gradient values the fintech will send", COUNTS),
    "batch_request": ("Positions of the rows in one mini-batch", "positions, no values"),
    "encrypted_scores": ("The fintech's partial scores for the batch", ENCRYPTED),
    "encrypted_residuals": ("The residuals (prediction errors) for the batch", ENCRYPTED),
    "randomness_request": ("How many fresh random values a party needs for this batch", COUNTS),
    "randomness": ("Fresh encryption randomness from the key holder (encryptions of zero)", "no customer data, used once"),
    "masked_gradient": ("A party's gradient, masked, for the coordinator to decrypt", f"{ENCRYPTED}, {MASKED}"),
    "decrypted_masked": ("The decrypted gradient, still masked: only its owner can unmask it", MASKED),
    "batch_done": ("The fintech's share of the batch loss", ENCRYPTED),
    "epoch_report": ("Two sums describing how much the fintech's model moved", "aggregate numbers"),
    "epoch_end": ("End of an epoch", COUNTS),
    "training_stop": ("Why training stopped", COUNTS),
    "score_request": ("Which shared customers to score (holdout positions)", "positions, no values"),
    "partial_scores": ("The fintech's partial scores for the holdout customers", PLAIN),
    "ack": ("Acknowledgement", COUNTS),
    "traffic_report": ("A party service's own message counts and sizes, when training stops", COUNTS),
    "error": ("A party aborts the session, with a reason", COUNTS),
}


def describe_step(step: str) -> tuple[str, str]:
    """``(what it carries, protection)`` for a message step (generic for unknown steps)."""
    return STEP_DESCRIPTIONS.get(step, ("Protocol message", "see docs/protocol.md"))


_STEP_ORDER = {step: k for k, step in enumerate(STEP_DESCRIPTIONS)}


def traffic_detail(messages: Iterable[Mapping]) -> pd.DataFrame:
    """One row per (sender, recipient, step), in protocol order: readable names,
    content, protection, counts."""
    rows = []
    ordered = sorted(
        messages, key=lambda m: (_STEP_ORDER.get(str(m["step"]), len(_STEP_ORDER)), str(m["sender"]), str(m["recipient"]))
    )
    for m in ordered:
        what, how = describe_step(str(m["step"]))
        rows.append(
            {
                "From": fmt.party(m["sender"]),
                "To": fmt.party(m["recipient"]),
                "Message": str(m["step"]).replace("_", " "),
                "What it carries": what,
                "Protection": how,
                "Messages": fmt.count(m["messages"]),
                "Size": fmt.data_size(m["bytes"]),
            }
        )
    return pd.DataFrame(rows, columns=["From", "To", "Message", "What it carries", "Protection", "Messages", "Size"])


def traffic_by_party(training: Mapping) -> pd.DataFrame:
    """Sent and received bytes and messages for every party of the session."""
    messages = list(training.get("messages", []))
    sent = dict(training.get("bytes_sent", {}))
    received = dict(training.get("bytes_received", {}))
    parties = sorted(set(sent) | set(received), key=lambda p: (p != "bank", p != "coordinator", p))
    rows = []
    for p in parties:
        rows.append(
            {
                "Party": fmt.party(p),
                "Sent": fmt.data_size(sent.get(p, 0)),
                "Received": fmt.data_size(received.get(p, 0)),
                "Messages sent": fmt.count(sum(m["messages"] for m in messages if m["sender"] == p)),
                "Messages received": fmt.count(sum(m["messages"] for m in messages if m["recipient"] == p)),
            }
        )
    return pd.DataFrame(rows, columns=["Party", "Sent", "Received", "Messages sent", "Messages received"])


# Who may learn what: DESIGN §1 in plain words.
ROLE_TABLE = pd.DataFrame(
    [
        {
            "Party": "Bank",
            "Holds": "Customer ids, default flags, its own features, its own weights",
            "Learns": "Which customers it shares with each fintech; its own gradients; the fintech's partial scores for the customers it scores",
            "Never learns": "Any fintech feature value or weight; a fintech's per-customer scores during training",
        },
        {
            "Party": "Fintech",
            "Holds": "Customer ids, its own features, its own weights",
            "Learns": "Which customers it shares with the bank; its own gradients",
            "Never learns": "Default flags, bank features or weights, residuals in plain form",
        },
        {
            "Party": "Coordinator",
            "Holds": "The Paillier private key",
            "Learns": "Masked values only — uniformly random numbers to it — and the aggregate loss",
            "Never learns": "Features, default flags, weights or any unmasked gradient",
        },
    ]
)

def role_table_markdown() -> str:
    """:data:`ROLE_TABLE` as a Markdown table (wraps long text, unlike a data grid)."""
    cols = list(ROLE_TABLE.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in ROLE_TABLE.itertuples(index=False):
        lines.append("| " + " | ".join(f"**{v}**" if i == 0 else str(v) for i, v in enumerate(row)) + " |")
    return "\n".join(lines)


THREAT_MODEL_MD = """
**How the parties stay private.** The bank and each fintech first find the customers
they share with a *private set intersection*: with ECDH, each side blinds its ids with a
secret only it knows, so neither learns anything about customers outside the overlap.
During training, every number that crosses from one organisation to another is either
**encrypted** under the coordinator's Paillier key (partial scores, residuals) or
**masked** with a fresh random value (gradients), so the coordinator, which can decrypt,
only ever sees random-looking numbers.

**What the coordinator must not do.** It must not collude with the bank or a fintech:
it holds the private key, so sharing it (or the masked values it decrypts) with a party
that also sees ciphertexts would break the protection. riskfed assumes a *semi-honest,
non-colluding* coordinator — it follows the protocol and talks to no one on the side.
Run it at an organisation neither side controls, or at one both sides trust for this.

**Leaks we accept, and why.**
- *Who is shared:* both sides learn which of their customers the other knows. That is
  needed to train on the same people.
- *A fintech's own gradient:* a party learns how its own weights should move; mini-batches
  of at least 256 rows keep this from revealing individual default flags.
- *Partial scores at scoring time:* to score a customer, the bank receives that fintech's
  partial score for that customer — one number per person, not the features behind it.

**In this app.** All parties run inside your browser session on this server, so you can
see what each would send. The private key and every table live only in this session's
memory: they are never cached, written to disk or shown to another user, and they are
gone when you close the tab.
"""
