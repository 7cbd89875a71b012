"""The bank's session opening and alignment steps (part of :class:`~riskfed.roles.bank.Bank`).

Step 0: open the session (the coordinator announces its key to everyone; every fintech
says it is ready). Step 1: send each fintech the bank's shuffled blinded ids (ECDH) or
a keyed-hash key. Step 2: match what comes back, intersect across fintechs, and tell each
fintech its shared rows — in an order drawn from the session secret.
"""

from __future__ import annotations

import secrets
import uuid

import numpy as np

from riskfed import settings
from riskfed.alignment.ecdh import EcdhKey
from riskfed.alignment.index import AlignedIndex, intersect_all, match_positions
from riskfed.alignment.keyed_hash import keyed_digests, new_shared_key
from riskfed.crypto.keys import DEFAULT_KEY_BITS, check_key_bits
from riskfed.errors import AlignmentError, KeyMismatchError, ProtocolError
from riskfed.learning.linear.schedule import ALIGNED_ORDER, new_session_seed, session_rng
from riskfed.protocol.messages import (
    BANK,
    COORDINATOR,
    Ack,
    HashedIds,
    HashKeyShare,
    PsiBlinded,
    PsiDoubleBlinded,
    PsiResult,
    PublicKeyAnnounce,
    SessionOpen,
    SessionReady,
    TrafficReport,
)
from riskfed.roles.base import handles, public_key_from
from riskfed.roles.state import BankAlignment

# Fewer shared customers than this cannot support a train/holdout split worth reporting.
DEFAULT_MIN_INTERSECTION = settings.default("min_intersection")


class BankAlignmentSteps:
    """Opening a session and aligning ids; state lives on :class:`~riskfed.roles.bank.Bank`."""

    # -- step 0: the session -----------------------------------------------------------
    def open_session(
        self,
        *,
        key_bits: int = DEFAULT_KEY_BITS,
        psi_method: str = "ecdh",
        purpose: str = "training",
        session_id: str | None = None,
    ) -> list[SessionOpen]:
        """Messages that open a session: to the coordinator first (training), then fintechs."""
        settings.check("psi", psi_method, "Bank")
        if purpose == "training":
            check_key_bits(key_bits, allow_insecure=self.allow_insecure_key, party=BANK)
        self.session_id = session_id or uuid.uuid4().hex
        # A fresh secret per session unless the caller fixed the seed.
        self._session_seed = self.seed if self.seed is not None else new_session_seed()
        self.purpose = purpose
        self.psi_method = psi_method
        self.key_bits = key_bits
        parties = (BANK, COORDINATOR, *self.fintechs) if purpose == "training" else (BANK, *self.fintechs)
        common = dict(
            purpose=purpose,
            parties=parties,
            key_bits=key_bits,
            allow_insecure_key=self.allow_insecure_key,
            psi_method=psi_method,
            id_normalization=self.normalization.to_dict(),
        )
        targets = ([COORDINATOR] if purpose == "training" else []) + self.fintechs
        if purpose == "training":
            self.expect(PublicKeyAnnounce, COORDINATOR)
        self.expect(SessionReady, *self.fintechs)
        return [self.reply(SessionOpen, t, 0, **common) for t in targets]

    @handles(PublicKeyAnnounce)
    def _on_public_key(self, msg: PublicKeyAnnounce):
        pk = public_key_from(msg, party=BANK)
        if pk.key_bits != self.key_bits:
            raise KeyMismatchError(
                f"bank: the coordinator's key has {pk.key_bits} bits; the session asked for {self.key_bits}.",
                party=COORDINATOR,
            )
        self.public_key = pk
        self.done(PublicKeyAnnounce)
        return []

    @handles(SessionReady)
    def _on_ready(self, msg: SessionReady):
        if self.purpose == "training":
            if self.public_key is None or msg.key_fingerprint != self.public_key.fingerprint:
                raise KeyMismatchError(
                    f"{msg.sender} received Paillier key {msg.key_fingerprint or 'none'}, but the bank's is "
                    f"{self.public_key.fingerprint if self.public_key else 'none'}: the parties do not share one key.",
                    party=msg.sender,
                )
        self.fintech_rows[msg.sender] = msg.rows
        return []

    # -- step 1: blinded ids or keyed hashes ----------------------------------------------
    def psi_requests(self) -> list:
        """First alignment message to each fintech (shuffled blinded ids, or a hash key)."""
        perm = np.argsort(np.frombuffer(secrets.token_bytes(8 * len(self._norm_ids)), dtype=np.uint64), kind="stable")
        state = self._alignment = BankAlignment(perm)
        shuffled = self._norm_ids[perm].tolist()
        self.done(SessionReady)
        out = []
        if self.psi_method == "ecdh":
            state.ecdh = EcdhKey.generate()
            points = state.ecdh.blind(shuffled, n_jobs=self.n_jobs, party=BANK)
            self.expect(PsiDoubleBlinded, *self.fintechs)
            for f in self.fintechs:
                out.append(self.reply(PsiBlinded, f, 0, points=points))
        else:
            self.expect(HashedIds, *self.fintechs)
            for f in self.fintechs:
                # One key per fintech: a key leaked by one partner exposes nothing of another's.
                key = new_shared_key()
                state.hash_keys[f] = key
                state.own_digests[f] = keyed_digests(shuffled, key)
                out.append(self.reply(HashKeyShare, f, 0, key=key, purpose="alignment"))
        return out

    def _record_match(self, fintech: str, bank_tokens: np.ndarray, fintech_tokens: np.ndarray) -> None:
        b_pos, f_pos = match_positions(bank_tokens, fintech_tokens, bank=BANK, partner=fintech)
        # Shuffled-list positions → rows of the bank's own table.
        self._alignment.matches[fintech] = (self._alignment.perm[b_pos], f_pos)
        self._alignment.list_sizes[fintech] = len(fintech_tokens)

    @handles(PsiDoubleBlinded)
    def _on_double_blinded(self, msg: PsiDoubleBlinded):
        if len(msg.double_blinded) != len(self._norm_ids):
            raise AlignmentError(
                f"{msg.sender} returned {len(msg.double_blinded)} double-blinded ids for the bank's {len(self._norm_ids)}.",
                party=msg.sender,
            )
        theirs = self._alignment.ecdh.reblind(msg.partner_blinded, n_jobs=self.n_jobs, party=msg.sender)
        self._record_match(msg.sender, msg.double_blinded, theirs)
        return []

    @handles(HashedIds)
    def _on_hashed(self, msg: HashedIds):
        self._record_match(msg.sender, self._alignment.own_digests[msg.sender], msg.digests)
        return []

    @property
    def pairwise_matches(self) -> dict[str, int]:
        """Per fintech, how many of the bank's customers it shares (before intersecting)."""
        matches = self._alignment.matches if self._alignment is not None else {}
        return {f: len(rows) for f, (rows, _) in matches.items()}

    # -- step 2: the intersection ---------------------------------------------------------
    def finish_alignment(self, *, min_size: int = DEFAULT_MIN_INTERSECTION) -> list[PsiResult]:
        """Intersect across fintechs and tell each one its shared rows (shuffled order)."""
        state = self._alignment
        missing = [f for f in self.fintechs if state is None or f not in state.matches]
        if missing:
            raise ProtocolError(f"bank: no alignment reply from {', '.join(missing)}.", party=missing[0])
        index = intersect_all(
            len(self._norm_ids),
            {f: state.matches[f] for f in self.fintechs},
            method=self.psi_method,
            partner_counts={f: state.list_sizes[f] for f in self.fintechs},
            min_size=min_size,
        )
        # Re-order the shared rows by the session secret: in bank-row order they would
        # tell each fintech how the bank's table is sorted (e.g. by account opening date).
        order = session_rng(self._session_seed, ALIGNED_ORDER).permutation(index.size)
        self.aligned = AlignedIndex(
            bank_rows=index.bank_rows[order],
            partner_rows={f: rows[order] for f, rows in index.partner_rows.items()},
            method=index.method,
            bank_count=index.bank_count,
            partner_counts=index.partner_counts,
        )
        self.done(PsiDoubleBlinded)
        self.done(HashedIds)
        self.expect(Ack, *self.fintechs)
        return [
            self.reply(PsiResult, f, 0, positions=self.aligned.partner_rows[f], bank_rows=len(self._norm_ids))
            for f in self.fintechs
        ]

    @handles(Ack)
    def _on_ack(self, msg: Ack):
        return []

    @handles(TrafficReport)
    def _on_traffic_report(self, msg: TrafficReport):
        """Keep a party service's traffic counts for the report (one report per party)."""
        rows = len(msg.steps)
        if not (len(msg.senders) == len(msg.recipients) == rows == msg.messages.size == msg.sizes.size):
            raise ProtocolError(f"bank: {msg.sender} sent a traffic report with columns of different lengths.", party=msg.sender)
        if rows and (msg.messages.min() < 0 or msg.sizes.min() < 0):
            raise ProtocolError(f"bank: {msg.sender} sent negative traffic counts.", party=msg.sender)
        self.peer_traffic[msg.sender] = [
            {"sender": s, "recipient": r, "step": st, "messages": int(c), "bytes": int(b)}
            for s, r, st, c, b in zip(msg.senders, msg.recipients, msg.steps, msg.messages, msg.sizes)
        ]
        return []
