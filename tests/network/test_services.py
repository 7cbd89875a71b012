"""Party services: one session at a time, clean failure, idle timeout, limits, config."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from riskfed.data.schema import validate_table
from riskfed.deploy.config import apply_config, read_config
from riskfed.deploy.service import ScoringLimits, TokenBucket
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.protocol.messages import BatchRequest, SessionOpen
from riskfed.roles.bank import Bank
from riskfed.transport.base import exchange as _deliver
from riskfed.transport.network import NetworkLimits


@pytest.fixture
def opened(services, pilot):
    """A federation with a training session opened by a real bank role (keys exchanged)."""

    def make(**kw):
        fed = services(**kw)
        table = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
        bank = Bank(table, ["fintech_1"], allow_insecure_key=True, seed=11)
        transport = fed.bank_transport()
        _deliver(transport, bank, bank.open_session(key_bits=512, psi_method="keyed-hash"))
        return fed, bank, transport

    return make


def stray_batch(bank, session=None, round=1):
    return BatchRequest(
        session_id=session or bank.session_id, sender="bank", recipient="fintech_1", round=round, rows=np.arange(300, dtype=np.int64)
    )


def test_message_for_another_session_is_refused_and_the_session_goes_on(opened):
    fed, bank, transport = opened()
    with pytest.raises(ProtocolError, match="for session 'other'; the current session is"):
        transport.request(stray_batch(bank, session="other"))
    assert fed.fintech.service.session.session_id == bank.session_id
    # Alignment still works in the same session.
    _deliver(transport, bank, bank.psi_requests())
    assert "fintech_1" in bank.pairwise_matches


def test_message_of_the_wrong_step_fails_the_session_cleanly(opened, caplog):
    fed, bank, transport = opened()
    with caplog.at_level(logging.WARNING, logger="riskfed.service"):
        with pytest.raises(ProtocolError, match="did not expect a 'batch_request' message from bank now"):
            transport.request(stray_batch(bank))
    assert fed.fintech.service.session is None
    assert any("failed at step 'batch_request'" in r.getMessage() for r in caplog.records)
    # The service is free for a new session.
    with pytest.raises(ProtocolError, match="has no open session"):
        transport.request(stray_batch(bank, round=2))
    bank2 = Bank(bank.table, ["fintech_1"], allow_insecure_key=True)
    _deliver(transport, bank2, bank2.open_session(key_bits=512, psi_method="keyed-hash"))
    assert fed.fintech.service.session.session_id == bank2.session_id


def test_an_idle_session_is_abandoned_after_the_timeout(opened, caplog):
    fed, bank, transport = opened(limits=NetworkLimits(timeout=30))
    service = fed.fintech.service
    with caplog.at_level(logging.WARNING, logger="riskfed.service"):
        assert not service.check_idle(now=service.session.last_activity + 29)
        assert service.check_idle(now=service.session.last_activity + 31)
    assert service.session is None
    message = next(r.getMessage() for r in caplog.records if "abandoned" in r.getMessage())
    assert "no message from bank for 31 s" in message and "was expecting: hash_key, psi_blinded" in message
    with pytest.raises(ProtocolError, match="has no open session"):
        _deliver(transport, bank, bank.psi_requests())


def test_the_watchdog_drops_idle_sessions(opened):
    import time

    fed, bank, transport = opened(limits=NetworkLimits(timeout=0.3))
    service = fed.fintech.service
    for _ in range(200):  # polls; no assertion on elapsed time
        # Each service's watchdog runs on its own thread: wait for both.
        if service.session is None and fed.coordinator.service.session is None:
            break
        time.sleep(0.05)
    assert service.session is None
    assert fed.coordinator.service.session is None


def test_resume_without_a_checkpoint_is_refused(opened):
    fed, bank, transport = opened()
    opening = bank.open_session(key_bits=512, psi_method="keyed-hash")[1]
    resume = replace(opening, purpose="resume", resume_epoch=2)
    with pytest.raises(ProtocolError, match="fintech_1 cannot resume: fintech_1: no checkpoint of session"):
        transport.request(resume)


def test_coordinator_takes_no_scoring_sessions(services, identity):
    fed = services()
    from riskfed.transport.network import NetworkTransport

    transport = NetworkTransport(identity("bank"), {"coordinator": fed.coordinator.address})
    try:
        opening = SessionOpen(session_id="s", sender="bank", recipient="coordinator", round=0, purpose="scoring")
        with pytest.raises(ProtocolError, match="takes part in training sessions only"):
            transport.request(opening)
    finally:
        transport.close()


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [({"max_rows": 0}, "'max_rows' scoring limit"), ({"rate": 0}, "scoring 'rate'"), ({"burst": 0}, "scoring 'burst'")],
)
def test_scoring_limits_are_validated(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        ScoringLimits(**kwargs)


def test_config_file_fills_unset_options(tmp_path):
    import argparse

    (tmp_path / "certs").mkdir()
    config = tmp_path / "bank.toml"
    config.write_text(
        """
[tls]
cert = "certs/bank.crt"
key = "certs/bank.key"
ca = "/etc/riskfed/ca.crt"

[peers]
coordinator = "coord.example.org:7443"
fintech_2 = "f2.example.org:7443"
fintech_1 = "f1.example.org:7443"

[network]
timeout = 120
max_message_mb = 128
"""
    )
    args = argparse.Namespace(cert=None, key=tmp_path / "flag.key", ca=None, timeout=None, max_message_mb=None, fintech_at=None, coordinator_at=None)
    apply_config(args, config)
    assert args.cert == tmp_path / "certs" / "bank.crt"  # relative to the file
    assert args.key == tmp_path / "flag.key"  # the flag wins
    assert str(args.ca) == "/etc/riskfed/ca.crt"
    assert args.timeout == 120.0 and args.max_message_mb == 128.0
    assert args.coordinator_at == "coord.example.org:7443"
    assert args.fintech_at == ["fintech_1=f1.example.org:7443", "fintech_2=f2.example.org:7443"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("[tls\ncert = 1", "is not valid TOML"),
        ("[secrets]\nx = 1", "unknown section\\(s\\) secrets"),
        ("[tls]\npassword = 'x'", "unknown key\\(s\\) password in \\[tls\\]"),
    ],
)
def test_bad_config_files_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        read_config(path)


def test_wrong_types_in_config_are_refused(tmp_path):
    import argparse

    path = tmp_path / "c.toml"
    path.write_text("[network]\ntimeout = 'soon'\n")
    with pytest.raises(ConfigurationError, match="\\[network\\] timeout must be a number"):
        apply_config(argparse.Namespace(timeout=None), path)
