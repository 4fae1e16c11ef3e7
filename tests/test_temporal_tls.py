"""warroom reaches Temporal over mutual TLS, configured the way every Temporal tool is (temporalio.envconfig).

A TLS-terminating proxy in this file (HTTP/2 by ALPN, client certificate required, a CA made here) forwards
to a plaintext dev server. The proxy records each connection it accepted and the client certificate shown,
so a test passes only when the bytes really went through TLS with warroom's certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.settings import Settings
from domain.temporal_profile import TemporalConnectError
from domain.vocab import Severity
from sandbox import SandboxServer
from starter.incidents import Incidents
from tests.conftest import eventually, make_settings
from tests.temporal_server import isolate_client_config

CLIENT_NAME = "warroom-worker"

# --- certificates -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    """A CA certificate (no `issuer`: self-signed) or a leaf for `usage` signed by `issuer`."""
    now = datetime.now(UTC)
    issuer_name, signer = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage] if usage else []), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path.with_suffix(".pem"), path.with_suffix(".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("warroom test CA", ca_key, None)
    ca_path, _ = _write(root / "ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue("temporal-frontend", server_key, (ca.subject, ca_key), ExtendedKeyUsageOID.SERVER_AUTH)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue(CLIENT_NAME, client_key, (ca.subject, ca_key), ExtendedKeyUsageOID.CLIENT_AUTH)
    server_files = _write(root / "server", server, server_key)
    return Pki(ca_path, *server_files, *_write(root / "client", client, client_key))


# --- the proxy ------------------------------------------------------------------------------------------


@dataclass
class TlsProxy:
    """Accepts TLS 1.2+/h2 with a required client certificate, then pipes bytes to a plaintext server."""

    target: str
    context: ssl.SSLContext
    clients: list[str] = field(default_factory=list)  # common name of each accepted client certificate
    refused: list[str] = field(default_factory=list)  # OpenSSL's reason for each failed handshake
    protocols: list[str | None] = field(default_factory=list)  # ALPN protocol of each accepted connection
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        # TLS starts in the handler, so a refused handshake is recorded rather than only logged by asyncio.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def stop(self) -> None:
        for writer in list(self._open):
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await client_writer.start_tls(self.context)
        except (ssl.SSLError, ConnectionError) as err:
            self.refused.append(getattr(err, "reason", None) or type(err).__name__)
            client_writer.transport.abort()
            return
        self.protocols.append(client_writer.get_extra_info("ssl_object").selected_alpn_protocol())
        peer = client_writer.get_extra_info("peercert") or {}
        self.clients += [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
        host, port = self.target.rsplit(":", 1)
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        self._open |= {client_writer, server_writer}
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        # Either side going away ends this direction; the proxy never fails a test by itself.
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, RuntimeError):
            sink.close()
        self._open.discard(sink)


def server_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(cafile=pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    return ctx


@pytest.fixture
async def proxy(temporal: WorkflowEnvironment, pki: Pki) -> AsyncIterator[TlsProxy]:
    running = TlsProxy(temporal.client.service_client.config.target_host, server_context(pki))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    isolate_client_config(monkeypatch, tmp_path)
    yield


def use_mtls(monkeypatch: pytest.MonkeyPatch, pki: Pki, *, client_cert: bool = True) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(pki.ca))
    if client_cert:
        monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(pki.client_cert))
        monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(pki.client_key))


# --- tests ------------------------------------------------------------------------------------------------


async def test_a_worker_and_a_declare_go_through_mutual_tls(
    proxy: TlsProxy, pki: Pki, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", proxy.address)
    use_mtls(monkeypatch, pki)
    settings = make_settings(sandbox, [])
    assert settings.temporal_address == proxy.address  # Settings reads the same variable

    client = await worker_process.connect(settings)
    assert client.service_client.config.target_host == proxy.address
    async with worker_process.build_worker(client, settings):
        incidents = Incidents.from_settings(client, settings)
        incident_id = await incidents.declare("Checkout down over mTLS", Severity.SEV2)

        async def channel() -> str | None:
            return (await incidents.state(incident_id)).channel_id

        created = await eventually(channel)
        assert created is not None and sandbox.state.channel(created, viewer=None)  # the Slack activity ran
    assert proxy.clients and set(proxy.clients) == {CLIENT_NAME} and proxy.refused == []
    assert set(proxy.protocols) == {"h2"}


async def test_without_the_client_certificate_the_proxy_refuses_and_the_error_says_where(
    proxy: TlsProxy, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", proxy.address)
    use_mtls(monkeypatch, pki, client_cert=False)
    with pytest.raises(TemporalConnectError) as refused:
        await worker_process.connect(Settings())
    assert f"cannot connect to Temporal at {proxy.address} (namespace default, TLS, custom CA)" in str(
        refused.value
    )
    assert proxy.clients == []
    # The SDK may try more than once; every attempt was refused for the missing certificate.
    assert proxy.refused and set(proxy.refused) == {"PEER_DID_NOT_RETURN_A_CERTIFICATE"}


async def test_an_api_key_is_sent_as_a_bearer_token_over_tls(
    proxy: TlsProxy, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy cannot read HPACK-compressed headers, so this checks the connect arguments envconfig and
    warroom produce, and the client the SDK built from them: its `api_key` is what the SDK sends as
    `authorization: Bearer <key>` on every call."""
    key = "tmprl-test-api-key-0001"
    monkeypatch.setenv("TEMPORAL_ADDRESS", proxy.address)
    monkeypatch.setenv("TEMPORAL_API_KEY", key)
    use_mtls(monkeypatch, pki)
    settings = Settings()
    assert key in settings.secrets()  # log redaction knows it

    args = worker_process.connect_args(settings)
    assert args["api_key"] == key and args["tls"]
    client = await worker_process.connect(settings)
    assert client.api_key == key
    assert client.service_client.config.api_key == key
    await client.service_client.check_health()
    assert proxy.clients and set(proxy.clients) == {CLIENT_NAME}


async def test_a_profile_from_temporal_toml_is_used(
    proxy: TlsProxy, pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        "[profile.default]\n"
        'address = "127.0.0.1:1"\n'
        "[profile.incidents]\n"
        f'address = "{proxy.address}"\n'
        'namespace = "default"\n'
        "[profile.incidents.tls]\n"
        f'server_ca_cert_path = "{pki.ca}"\n'
        f'client_cert_path = "{pki.client_cert}"\n'
        f'client_key_path = "{pki.client_key}"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "incidents")

    client = await worker_process.connect(Settings())
    await client.service_client.check_health()
    assert client.service_client.config.target_host == proxy.address
    assert proxy.clients and set(proxy.clients) == {CLIENT_NAME}
