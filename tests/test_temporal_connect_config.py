"""The Temporal connection settings: which source wins, and unusable ones stop start-up with a message that
names the variable to fix (never a traceback, never a secret)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import worker as worker_process
from domain.settings import Settings
from domain.temporal_profile import TemporalConfigError, TemporalConnectError, load_connect_config
from tests.temporal_server import isolate_client_config

API_KEY = "tmprl-secret-api-key-7f3a"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    isolate_client_config(monkeypatch, tmp_path)
    yield


def a_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


# --- precedence -------------------------------------------------------------------------------------------


def test_nothing_set_is_todays_plaintext_localhost() -> None:
    args = worker_process.connect_args(Settings())
    assert (args["target_host"], args["namespace"]) == ("localhost:7233", "default")
    assert not args.get("tls") and "api_key" not in args


def test_a_profile_fills_what_the_environment_leaves_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.cloud]\naddress = "prod.acct.tmprl.cloud:7233"\nnamespace = "prod.acct"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    args = worker_process.connect_args(Settings())
    assert (args["target_host"], args["namespace"]) == ("prod.acct.tmprl.cloud:7233", "prod.acct")

    monkeypatch.setenv("TEMPORAL_NAMESPACE", "staging.acct")
    assert worker_process.connect_args(Settings())["namespace"] == "staging.acct"
    # What warroom (or a test) sets on Settings itself wins over both.
    explicit = Settings(TEMPORAL_ADDRESS="127.0.0.1:7234")
    assert worker_process.connect_args(explicit)["target_host"] == "127.0.0.1:7234"


def test_an_api_key_turns_tls_on_and_is_redacted_from_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    settings = Settings()
    args = worker_process.connect_args(settings)
    assert args["api_key"] == API_KEY and args["tls"] is True
    assert API_KEY in settings.secrets()
    assert API_KEY not in repr(settings)


def test_warroom_dev_ignores_cloud_and_tls_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "missing.pem"))
    settings = Settings().model_copy(update={"temporal_address": "127.0.0.1:7233"})
    args = worker_process.connect_args(settings, dev_server=True)
    assert args["target_host"] == "127.0.0.1:7233" and args["tls"] is False and "api_key" not in args


async def test_a_failed_connection_names_where_and_never_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    with pytest.raises(TemporalConnectError) as failed:
        await worker_process.connect(Settings())
    assert "cannot connect to Temporal at 127.0.0.1:1 (namespace default, TLS, API key)" in str(failed.value)
    assert API_KEY not in str(failed.value)


# --- unusable settings ------------------------------------------------------------------------------------


def test_a_missing_certificate_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "client.pem"
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(missing))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(a_key(tmp_path / "client.key")))
    expected = re.escape(f"TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read {missing}: ")
    with pytest.raises(TemporalConfigError, match=expected):
        load_connect_config()


def test_an_unreadable_ca_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(tmp_path))  # a directory
    with pytest.raises(TemporalConfigError, match=r"^TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read"):
        load_connect_config()


def test_a_file_that_is_not_pem_names_its_variable_and_quotes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    key = tmp_path / "client.key"
    key.write_text(API_KEY)
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(key))
    with pytest.raises(TemporalConfigError, match=r"^TEMPORAL_TLS_CLIENT_CERT_PATH \(.*\) does not hold PEM"):
        load_connect_config()
    monkeypatch.delenv("TEMPORAL_TLS_CLIENT_CERT_PATH")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", cert.read_text())
    with pytest.raises(TemporalConfigError) as bad:
        load_connect_config()
    assert str(bad.value) == "TEMPORAL_TLS_CLIENT_CERT_DATA does not hold PEM certificates"


def test_a_key_without_a_certificate_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(a_key(tmp_path / "client.key")))
    with pytest.raises(TemporalConfigError, match="go together: set both or neither"):
        load_connect_config()


def test_a_profile_certificate_names_the_profile_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.prod.tls]\nserver_ca_cert_path = "{tmp_path / "ca.pem"}"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    with pytest.raises(TemporalConfigError) as bad:
        load_connect_config()
    assert str(bad.value).startswith(f"tls.server_ca_cert_path of profile 'prod' in {config}: cannot read")


def test_config_file_problems_name_the_variable_and_never_echo_its_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(missing))
    with pytest.raises(TemporalConfigError, match=re.escape(f"TEMPORAL_CONFIG_FILE: cannot read {missing}")):
        load_connect_config()

    broken = tmp_path / "temporal.toml"
    broken.write_text(f'[profile.default\napi_key = "{API_KEY}"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(broken))
    with pytest.raises(TemporalConfigError) as bad:
        load_connect_config()
    assert str(bad.value).startswith(f"{broken} (TEMPORAL_CONFIG_FILE) is not a valid Temporal config file")
    assert "line 1" in str(bad.value) and API_KEY not in str(bad.value)

    broken.write_text(f'[profile.default]\napi_key = "{API_KEY}"\n')
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    with pytest.raises(TemporalConfigError) as unknown:
        load_connect_config()
    assert str(unknown.value) == f"TEMPORAL_PROFILE: no profile 'prod' in {broken}"


@pytest.mark.parametrize("command", ["worker", "list"])
def test_the_cli_stops_with_exit_2_naming_the_variable(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "client.pem"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
        "TEMPORAL_CONFIG_FILE": os.environ["TEMPORAL_CONFIG_FILE"],
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(missing),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(a_key(tmp_path / "client.key")),
        "WARROOM_WORKER_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "warroom"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"warroom: TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read {missing}" in done.stderr
    assert "Traceback" not in done.stderr and API_KEY not in done.stderr + done.stdout
