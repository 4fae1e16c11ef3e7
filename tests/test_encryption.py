"""Payload encryption: the AES-GCM codec, what Temporal stores with it on, and `warroom codec-server`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads, SearchAttributes
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import MarkerRecordedEventAttributes
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.encryption import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    data_converter,
)
from domain.naming import directory_workflow_id, incident_workflow_id
from domain.settings import Settings
from sandbox import SandboxServer
from starter.codec_server import start_codec_server
from starter.serve import ConfigError
from tests.conftest import running_stack
from tests.test_incident_workflow import wait_quiet


def b64key(fill: int, size: int = 32) -> str:
    return base64.b64encode(bytes([fill]) * size).decode()


K1 = f"k1:{b64key(1)}"
K2 = f"k2:{b64key(2, 16)}"
ALL_KEY_MATERIAL = (b64key(1), b64key(2, 16), b64key(3, 20))
PLAIN = Payload(metadata={"encoding": b"json/plain", "type": b"Declaration"}, data=b'{"title":"Disk full"}')


def key_id(payload: Payload) -> str:
    return payload.metadata[KEY_ID_METADATA].decode()


# --- the codec ------------------------------------------------------------------------------------------


async def test_round_trip_hides_data_and_metadata_and_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec.from_setting(K1)
    [sealed] = await codec.encode([PLAIN])
    assert sealed.metadata["encoding"] == ENCODING and key_id(sealed) == "k1"
    assert set(sealed.metadata) == {"encoding", KEY_ID_METADATA}
    assert b"Disk full" not in sealed.SerializeToString() and b"Declaration" not in sealed.SerializeToString()
    [again] = await codec.encode([PLAIN])
    assert again.data != sealed.data, "each payload needs its own nonce"
    assert await codec.decode([sealed, again]) == [PLAIN, PLAIN]


async def test_rotation_new_first_key_encrypts_old_keys_still_decrypt() -> None:
    before = EncryptionCodec.from_setting(K1)
    after = EncryptionCodec.from_setting(f"{K2}, {K1}")
    [old] = await before.encode([PLAIN])
    [new] = await after.encode([PLAIN])
    assert key_id(old) == "k1" and key_id(new) == "k2"
    assert await after.decode([old, new]) == [PLAIN, PLAIN]
    with pytest.raises(DecryptionError, match=r"key id 'k2', which WARROOM_ENCRYPTION_KEY does not hold"):
        await before.decode([new])


async def test_tampered_or_mislabelled_ciphertext_fails() -> None:
    codec = EncryptionCodec.from_setting(f"{K1},{K2}")
    [sealed] = await codec.encode([PLAIN])
    for position in (0, 12, len(sealed.data) - 1):  # nonce, ciphertext, tag
        tampered = Payload()
        tampered.CopyFrom(sealed)
        data = bytearray(sealed.data)
        data[position] ^= 0x01
        tampered.data = bytes(data)
        with pytest.raises(DecryptionError, match="key id 'k1' failed authentication"):
            await codec.decode([tampered])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([relabelled])
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:20])
    with pytest.raises(DecryptionError, match="truncated"):
        await codec.decode([truncated])


async def test_unencrypted_payloads_pass_through() -> None:
    codec = EncryptionCodec.from_setting(K1)
    bare = Payload(data=b"raw")
    assert await codec.decode([PLAIN, bare]) == [PLAIN, bare]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("", "is empty"),
        (" , ", "WARROOM_ENCRYPTION_KEY is empty"),
        (b64key(1), "has no `:`"),
        (f"{b64key(1)}:{b64key(2, 16)}", "key id must be 1 to 32 letters"),
        (f"{'x' * 33}:{b64key(1)}", "key id must be 1 to 32 letters"),
        (f"k 1:{b64key(1)}", "key id must be 1 to 32 letters"),
        (f"k1:{b64key(1)}*", "not valid base64"),
        (f"k1:{b64key(3, 20)}", "16, 24 or 32 bytes, not 20"),
        (f"{K1},{K1.replace('k1', 'k2')},k1:{b64key(2, 16)}", "'k1' appears more than once"),
        (f"{K1},,{K2}", "entry 2 is empty"),
    ],
)
def test_bad_keys_are_named_without_the_key(setting: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        EncryptionCodec.from_setting(setting)
    message = str(raised.value)
    assert "WARROOM_ENCRYPTION_KEY" in message and problem in message
    assert not [m for m in ALL_KEY_MATERIAL if m in message], message


async def test_failure_messages_are_encrypted_too() -> None:
    converter = data_converter(Settings(WARROOM_ENCRYPTION_KEY=SecretStr(K1)))
    failure = Failure()
    await converter.encode_failure(ApplicationError("Disk full on db-1", "details"), failure)
    assert b"Disk full" not in failure.SerializeToString() and b"details" not in failure.SerializeToString()
    error = await converter.decode_failure(failure)
    assert isinstance(error, ApplicationError) and error.message == "Disk full on db-1"
    assert error.details == ("details",)


def test_settings_choose_the_converter_and_list_the_new_secrets() -> None:
    assert data_converter(Settings()) is pydantic_data_converter
    settings = Settings(
        WARROOM_ENCRYPTION_KEY=SecretStr(f"{K2},{K1}"),
        WARROOM_CODEC_TOKEN=SecretStr("codec-token"),
        WARROOM_CODEC_CORS_ORIGINS="http://localhost:8233/, http://127.0.0.1:8080",
    )
    converter = data_converter(settings)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert converter.payload_codec.key_ids == ("k2", "k1")
    secrets = settings.secrets()
    assert {f"{K2},{K1}", b64key(1), b64key(2, 16), "codec-token"} <= set(secrets)
    assert settings.codec_cors_origins == ("http://localhost:8233", "http://127.0.0.1:8080")
    assert Settings().codec_cors_origins == ("http://localhost:8233",) and Settings().codec_port == 8888


# --- the command line -----------------------------------------------------------------------------------


def run_warroom(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "warroom"), *args],
        env={**clean, "TEMPORAL_ADDRESS": "127.0.0.1:1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_codec_server_refuses_to_start_without_a_key_and_has_help() -> None:
    done = run_warroom("codec-server", "--port", "0")
    assert done.returncode == 2
    assert "codec-server needs WARROOM_ENCRYPTION_KEY" in done.stderr and "Traceback" not in done.stderr
    helped = run_warroom("codec-server", "--help")
    assert helped.returncode == 0 and "--host" in helped.stdout and "--port" in helped.stdout


def test_a_malformed_key_stops_every_command_without_showing_it() -> None:
    done = run_warroom("list", WARROOM_ENCRYPTION_KEY=f"k1:{b64key(3, 20)}")
    assert done.returncode == 2
    assert "WARROOM_ENCRYPTION_KEY: entry 1 (key id 'k1')" in done.stderr
    assert b64key(3, 20) not in done.stderr + done.stdout and "Traceback" not in done.stderr


# --- end to end -----------------------------------------------------------------------------------------

TITLE = "Encrypted title here"
UPDATE = "Rotating the leaked credentials"
UI = "http://localhost:8233"
CODEC_TOKEN = "codec-test-token"


SDK_MARKERS = {"core_local_activity": "data", "core_patch": "patch-data"}  # marker -> its bookkeeping entry


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload nested anywhere in `message`, except search attributes (the server indexes those)."""
    if isinstance(message, Payload):
        yield message
        return
    if message.DESCRIPTOR.full_name == SearchAttributes.DESCRIPTOR.full_name:
        return
    if isinstance(message, MarkerRecordedEventAttributes) and message.marker_name in SDK_MARKERS:
        # The SDK's own bookkeeping (a local activity's sequence number, type and times; a patch's ID) is
        # plain JSON by design; the local activity's result beside it goes through the codec.
        for name, payloads in message.details.items():
            if name != SDK_MARKERS[message.marker_name]:
                yield from payloads_in(payloads)
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from payloads_in(item)
        elif field.is_repeated:
            for item in value:
                yield from payloads_in(item)
        else:
            yield from payloads_in(value)


@asynccontextmanager
async def codec_server(**settings: Any) -> AsyncIterator[str]:
    server = await start_codec_server(Settings(**settings), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def test_histories_hold_only_ciphertext_that_the_codec_server_decodes(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    settings = Settings(WARROOM_ENCRYPTION_KEY=SecretStr(K1))
    encrypting = await Client.connect(
        temporal.client.service_client.config.target_host,
        namespace=temporal.client.namespace,
        data_converter=data_converter(settings),
    )
    async with running_stack(temporal, sandbox, client=encrypting, WARROOM_ENCRYPTION_KEY=K1) as stack:
        declared = await stack.command(f"declare sev2 {TITLE}")
        assert "INC-1" in str(declared["body"])
        channel = await stack.incident_channel(1)
        await stack.command(f"update {UPDATE}", channel=channel)
        await wait_quiet(stack, 1)
        state = await stack.state(1)  # a query: the worker decrypts the workflow's state to answer it
        assert state.title == TITLE and UPDATE in [e.text for e in state.timeline if e.kind == "update"]

        histories = [
            await temporal.client.get_workflow_handle(workflow_id).fetch_history()
            for workflow_id in (
                incident_workflow_id(1, stack.settings.task_queue),
                directory_workflow_id(stack.settings.task_queue),
            )
        ]

    found: list[Payload] = []
    for history in histories:
        raw = b"".join(event.SerializeToString() for event in history.events) + history.to_json().encode()
        for secret in (TITLE, UPDATE, "encrypted-title-here"):
            assert secret.encode() not in raw, f"{secret!r} is readable in {history.workflow_id}'s history"
        payloads = [p for event in history.events for p in payloads_in(event)]
        assert payloads, f"no payload found in {history.workflow_id}'s history"
        for payload in payloads:
            assert payload.metadata.get("encoding") == ENCODING, f"{history.workflow_id}: {payload.metadata}"
            assert key_id(payload) == "k1"
        found += payloads

    body = json_format.MessageToDict(Payloads(payloads=found))
    auth = {"Authorization": f"Bearer {CODEC_TOKEN}", "Origin": UI, "X-Namespace": "default"}
    async with (
        codec_server(WARROOM_ENCRYPTION_KEY=K1, WARROOM_CODEC_TOKEN=CODEC_TOKEN) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{url}/decode", json=body, headers=auth) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == UI
            decoded = json_format.ParseDict(await response.json(), Payloads())
        assert len(decoded.payloads) == len(found)
        assert all(p.metadata.get("encoding") != ENCODING for p in decoded.payloads)
        text = b"".join(p.data for p in decoded.payloads).decode(errors="replace")
        assert TITLE in text and UPDATE in text

        for headers in ({"Origin": UI}, {**auth, "Authorization": "Bearer wrong"}):
            async with http.post(f"{url}/decode", json=body, headers=headers) as response:
                assert response.status == 401
                assert "WARROOM_CODEC_TOKEN" in (await response.json())["error"]

        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,x-namespace",
        }
        async with http.options(f"{url}/decode", headers={**preflight, "Origin": UI}) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == UI
            assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
            allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
            assert {"content-type", "authorization", "x-namespace"} <= allowed
        async with http.options(
            f"{url}/decode", headers={**preflight, "Origin": "http://evil.example"}
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "Access-Control-Allow-Headers" not in response.headers


async def test_codec_server_encodes_and_rejects_what_it_cannot_read() -> None:
    plain = json_format.MessageToDict(Payloads(payloads=[PLAIN]))
    async with codec_server(WARROOM_ENCRYPTION_KEY=f"{K2},{K1}") as url, aiohttp.ClientSession() as http:
        async with http.post(f"{url}/encode", json=plain) as response:
            assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
            encoded = await response.json()
        [sealed] = json_format.ParseDict(encoded, Payloads()).payloads
        assert sealed.metadata["encoding"] == ENCODING and key_id(sealed) == "k2"
        async with http.post(f"{url}/decode", json=encoded) as response:
            assert json_format.ParseDict(await response.json(), Payloads()).payloads == [PLAIN]
        async with http.post(f"{url}/decode", json={"payloads": []}) as response:
            assert await response.json() == {"payloads": []}

        bodies = (b"{not json", b'{"payloads": [{"metadata": "Disk full"}]}', b'{"payloads": 3}', b"\xff\xfe")
        for bad in bodies:
            async with http.post(f"{url}/decode", data=bad) as response:
                assert response.status == 400, bad
                error = (await response.json())["error"]
                assert "payloads" in error and "Disk full" not in error and "Traceback" not in error

    # A server that lost k2 names the key id it misses, and nothing of the payload.
    async with codec_server(WARROOM_ENCRYPTION_KEY=K1) as url, aiohttp.ClientSession() as http:
        async with http.post(f"{url}/decode", json=encoded) as response:
            assert response.status == 422
            error = (await response.json())["error"]
            assert "'k2'" in error and "Disk full" not in error


async def test_the_codec_server_without_a_token_listens_on_loopback_only() -> None:
    settings = Settings(WARROOM_ENCRYPTION_KEY=SecretStr(K1))
    with pytest.raises(ConfigError, match=r"set WARROOM_CODEC_TOKEN to listen on 0\.0\.0\.0"):
        await start_codec_server(settings, "0.0.0.0", 0)
    with_token = Settings(WARROOM_ENCRYPTION_KEY=SecretStr(K1), WARROOM_CODEC_TOKEN=SecretStr("t" * 32))
    server = await start_codec_server(with_token, "0.0.0.0", 0)
    await server.stop()
