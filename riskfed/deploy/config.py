"""``--config FILE``: a party's addresses, credentials and limits in one TOML file.

Command-line flags win over the file; the file wins over built-in defaults. Relative
paths in the file are relative to the file's own directory, so a party can keep its
config next to its certificates. Example (the bank's)::

    [tls]
    cert = "certs/bank.crt"
    key  = "certs/bank.key"
    ca   = "certs/ca.crt"

    [peers]                       # where the other parties listen
    coordinator = "coordinator.example.org:7443"
    fintech_1   = "fintech1.example.org:7443"

    [network]
    timeout = 300                 # seconds to wait for any one reply
    max_message_mb = 64
    max_batch_message_mb = 8

    [run]
    checkpoint_dir = "checkpoints"

A fintech's or the coordinator's file uses ``[serve]`` (``role``, ``listen``, ``data``,
``id_column``, ``model_dir``, ``checkpoint_dir``, ``n_jobs``, and for a fintech
``min_batch_size``) and a fintech's also
``[peers] coordinator`` and ``[scoring]`` (``max_rows``, ``rate``, ``burst``).
``docs/deployment.md`` has the three files of a complete federation.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from riskfed.errors import ConfigurationError

# (section, key) → (argparse destination, kind); kind "path" is resolved against the file.
_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("tls", "cert"): ("cert", "path"),
    ("tls", "key"): ("key", "path"),
    ("tls", "ca"): ("ca", "path"),
    ("network", "timeout"): ("timeout", "number"),
    ("network", "max_message_mb"): ("max_message_mb", "number"),
    ("network", "max_batch_message_mb"): ("max_batch_message_mb", "number"),
    ("serve", "role"): ("role", "str"),
    ("serve", "listen"): ("listen", "str"),
    ("serve", "data"): ("data", "path"),
    ("serve", "id_column"): ("id_column", "str"),
    ("serve", "model_dir"): ("model_dir", "path"),
    ("serve", "checkpoint_dir"): ("checkpoint_dir", "path"),
    ("serve", "n_jobs"): ("n_jobs", "int"),
    ("serve", "min_batch_size"): ("min_batch_size", "int"),
    ("run", "checkpoint_dir"): ("checkpoint_dir", "path"),
    ("scoring", "max_rows"): ("score_max_rows", "int"),
    ("scoring", "rate"): ("score_rate", "number"),
    ("scoring", "burst"): ("score_burst", "int"),
}
_SECTIONS = {"tls", "peers", "network", "serve", "run", "scoring"}


def read_config(path: str | Path) -> dict:
    """Parse a riskfed TOML file (unknown sections or keys are an error, not ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"Config file {str(path)!r} does not exist.")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Config file {str(path)!r} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise ConfigurationError(f"Config file {str(path)!r}: unknown section(s) {', '.join(unknown)} (known: {', '.join(sorted(_SECTIONS))}).")
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"Config file {str(path)!r}: {section!r} must be a [section].")
        if section == "peers":
            continue
        bad = sorted(k for k in table if (section, k) not in _KEYS)
        if bad:
            raise ConfigurationError(f"Config file {str(path)!r}: unknown key(s) {', '.join(bad)} in [{section}].")
    return data


def _convert(value, kind: str, where: str, base: Path):
    if kind == "path":
        if not isinstance(value, str):
            raise ConfigurationError(f"Config {where} must be a path string. Got {value!r} instead.")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigurationError(f"Config {where} must be a string. Got {value!r} instead.")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"Config {where} must be an integer. Got {value!r} instead.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"Config {where} must be a number. Got {value!r} instead.")
    return float(value)


def apply_config(args: argparse.Namespace, path: str | Path) -> argparse.Namespace:
    """Fill every option the command line left unset from the TOML file at ``path``."""
    path = Path(path)
    data = read_config(path)
    base = path.resolve().parent
    for (section, key), (dest, kind) in _KEYS.items():
        if key in data.get(section, {}) and hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, _convert(data[section][key], kind, f"[{section}] {key}", base))
    peers = data.get("peers", {})
    for name, address in peers.items():
        if not isinstance(address, str):
            raise ConfigurationError(f"Config [peers] {name} must be a 'HOST:PORT' string. Got {address!r} instead.")
    if "coordinator" in peers and hasattr(args, "coordinator_at") and args.coordinator_at is None:
        args.coordinator_at = peers["coordinator"]
    fintechs = {k: v for k, v in peers.items() if k != "coordinator"}
    if fintechs and hasattr(args, "fintech_at") and not args.fintech_at:
        args.fintech_at = [f"{name}={address}" for name, address in sorted(fintechs.items(), key=lambda kv: _order(kv[0]))]
    return args


def _order(name: str) -> tuple[int, str]:
    tail = name.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 30, name)


__all__ = ["apply_config", "read_config"]
