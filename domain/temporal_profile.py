"""How to reach Temporal, the way every Temporal tool reads it: `temporalio.envconfig`.

A profile from temporal.toml (TEMPORAL_CONFIG_FILE, else the CLI's default file; TEMPORAL_PROFILE, else
`default`), with TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS_* on top.

The SDK would only find a missing certificate file, a bad PEM or a broken config file when connecting, with
a traceback or a message that names no variable. Here every such problem is a TemporalConfigError that says
which variable (or which key of which profile) to fix. Messages carry paths and variable names, never the
API key or the contents of a key file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, ClientConnectConfig
from temporalio.service import TLSConfig

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"

TLSField = Literal["server_root_ca_cert", "client_cert", "client_private_key"]


class TemporalConfigError(ValueError):
    """The Temporal connection settings are unusable; the message names the variable to fix."""


def load_connect_config(environ: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """`Client.connect` keyword arguments from the profile and the environment (`environ`, default: this
    process's), with every certificate and key read and checked. Keys the configuration does not set are
    absent (no `target_host` when neither TEMPORAL_ADDRESS nor the profile names one)."""
    env = dict(os.environ if environ is None else environ)
    config_file = env.get("TEMPORAL_CONFIG_FILE", "").strip()
    if config_file:
        # envconfig silently falls back to no file when this one is missing: a typo would go unnoticed.
        _readable("TEMPORAL_CONFIG_FILE", Path(config_file))
    try:
        profile = ClientConfigProfile.load(override_env_vars=env)
    except RuntimeError as err:  # the SDK's ConfigError: bad TOML, unknown profile, conflicting variables
        raise TemporalConfigError(_config_problem(str(err), env)) from None
    if profile.tls is not None:
        profile = dataclasses.replace(profile, tls=_read_tls(profile.tls, env))
    return profile.to_client_connect_config()


def describe(config: Mapping[str, object]) -> str:
    """`address, namespace, TLS mode, API key set or not`, for messages: never a secret."""
    tls = config.get("tls")
    if isinstance(tls, TLSConfig):
        mode = "mTLS" if tls.client_cert else "TLS"
        mode += ", custom CA" if tls.server_root_ca_cert else ""
    else:
        mode = "TLS" if tls else "plaintext"
    api_key = ", API key" if config.get("api_key") else ""
    return f"{config.get('target_host')} (namespace {config.get('namespace')}, {mode}{api_key})"


# --- certificates and keys ---------------------------------------------------------------------------------

# ClientConfigTLS field -> (environment variable stem, temporal.toml key stem, check of the PEM data).
_TLS_SOURCES: dict[TLSField, tuple[str, str, Callable[[bytes], object]]] = {
    "server_root_ca_cert": ("TEMPORAL_TLS_SERVER_CA_CERT", "server_ca_cert", x509.load_pem_x509_certificates),
    "client_cert": ("TEMPORAL_TLS_CLIENT_CERT", "client_cert", x509.load_pem_x509_certificates),
    "client_private_key": (
        "TEMPORAL_TLS_CLIENT_KEY",
        "client_key",
        lambda data: load_pem_private_key(data, password=None),
    ),
}


def _read_tls(tls: ClientConfigTLS, env: Mapping[str, str]) -> ClientConfigTLS:
    """The same TLS settings with every file read into bytes, each checked to hold what it should."""
    loaded: dict[TLSField, bytes] = {}
    for field, (variable, key, check) in _TLS_SOURCES.items():
        source = getattr(tls, field)
        if source is None:
            continue
        from_file = isinstance(source, Path)
        origin = _origin(variable, key, "_PATH" if from_file else "_DATA", env)
        data = _readable(origin, source) if isinstance(source, Path) else _as_bytes(source)
        try:
            check(data)
        except (ValueError, TypeError):  # cryptography's errors say little and may quote the data
            what = "an unencrypted PEM private key" if field == "client_private_key" else "PEM certificates"
            where = f" ({source})" if from_file else ""
            raise TemporalConfigError(f"{origin}{where} does not hold {what}") from None
        loaded[field] = data
    if ("client_cert" in loaded) != ("client_private_key" in loaded):
        raise TemporalConfigError(
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or their _DATA forms, or "
            "tls.client_cert_path/tls.client_key_path in the profile) go together: set both or neither"
        )
    return ClientConfigTLS(
        disabled=tls.disabled,
        server_name=tls.server_name,
        server_root_ca_cert=loaded.get("server_root_ca_cert"),
        client_cert=loaded.get("client_cert"),
        client_private_key=loaded.get("client_private_key"),
    )


def _origin(variable: str, key: str, form: Literal["_PATH", "_DATA"], env: Mapping[str, str]) -> str:
    """Where a TLS source came from: the environment variable wins over the profile, as in envconfig."""
    if env.get(variable + form):
        return variable + form
    profile = env.get("TEMPORAL_PROFILE") or "default"
    file = env.get("TEMPORAL_CONFIG_FILE") or "the default temporal.toml"
    return f"tls.{key}{form.lower()} of profile {profile!r} in {file}"


def _readable(origin: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise TemporalConfigError(f"{origin}: cannot read {path}: {err.strerror or err}") from None


def _as_bytes(source: str | bytes) -> bytes:
    return source.encode() if isinstance(source, str) else source


# --- the SDK's configuration errors ----------------------------------------------------------------------

_TOML_AT = re.compile(r"TOML parse error at line (\d+), column (\d+)")
_EXCERPT = re.compile(r"^\s*\d*\s*\|")  # the quoted lines of the file, which may hold an API key
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_PROFILE = re.compile(r"Profile '(.*)' not found")


def _config_problem(message: str, env: Mapping[str, str]) -> str:
    file = env.get("TEMPORAL_CONFIG_FILE") or "the default temporal.toml"
    if m := _TOML_AT.search(message):
        lines = message.splitlines()[1:]
        why = " ".join(line.strip() for line in lines if line.strip() and not _EXCERPT.match(line))
        return (
            f"{file} (TEMPORAL_CONFIG_FILE) is not a valid Temporal config file: line {m[1]}, column {m[2]}: "
            + _QUOTED.sub('"..."', why)
        )
    if m := _PROFILE.search(message):
        return f"TEMPORAL_PROFILE: no profile {m[1]!r} in {file}"
    # Conflicts such as "Cannot specify both TEMPORAL_TLS_CLIENT_CERT_PATH and ..._DATA" name the variables.
    first = message.splitlines()[0] if message else "unusable"
    return "Temporal client configuration: " + _QUOTED.sub('"..."', first)


class TemporalConnectError(RuntimeError):
    """Temporal did not accept the connection; the message says where warroom tried and how."""
