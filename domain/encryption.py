"""Optional payload encryption: an AES-GCM `PayloadCodec` and the data converter every warroom process uses.

`WARROOM_ENCRYPTION_KEY` holds one or more keys, `id:base64key` separated by commas. The first one encrypts
everything warroom writes to Temporal; every one of them decrypts, so a key rotates by putting a new one in
front and keeping the old ones until no history encrypted with them is left. Each encrypted payload names its
key in its metadata. Payloads that are not encrypted (histories written before encryption was turned on)
decode unchanged.

No I/O here: keys come from the settings, nonces from `os.urandom`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

if TYPE_CHECKING:
    from domain.settings import Settings

VARIABLE = "WARROOM_ENCRYPTION_KEY"
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_SIZES = (16, 24, 32)  # AES-128, AES-192, AES-256
NONCE_SIZE = 12
TAG_SIZE = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class DecryptionError(ValueError):
    """An encrypted payload could not be decrypted; the message says why, never what it holds."""


@dataclass(frozen=True)
class EncryptionKey:
    """One AES key and the id that names it in payload metadata."""

    key_id: str
    cipher: AESGCM = dataclasses.field(repr=False)


def parse_keys(setting: str) -> list[EncryptionKey]:
    """The keys in a `WARROOM_ENCRYPTION_KEY` value, first (the encrypting one) first.

    Raises ValueError naming the variable and the entry at fault, never the key material.
    """
    entries = [entry.strip() for entry in setting.split(",")]
    if not any(entries):
        raise ValueError(f"{VARIABLE} is empty: set it to id:base64key (e.g. k1:<32 random bytes, base64>)")
    keys: list[EncryptionKey] = []
    for position, entry in enumerate(entries, start=1):
        key = _parse_entry(entry, position)
        if any(k.key_id == key.key_id for k in keys):
            raise ValueError(f"{VARIABLE}: key id {key.key_id!r} appears more than once")
        keys.append(key)
    return keys


def _parse_entry(entry: str, position: int) -> EncryptionKey:
    where = f"{VARIABLE}: entry {position}"
    if not entry:
        raise ValueError(f"{where} is empty; separate keys with single commas")
    key_id, colon, encoded = entry.partition(":")
    key_id, encoded = key_id.strip(), encoded.strip()
    if not colon:
        raise ValueError(f"{where} must look like id:base64key (it has no `:`)")
    if not _KEY_ID.match(key_id):
        # Not echoed: a malformed id may be key material pasted in the wrong place.
        raise ValueError(f"{where}: the key id must be 1 to 32 letters, digits, `_` or `-`")
    try:
        material = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where} (key id {key_id!r}): the key is not valid base64") from None
    if len(material) not in KEY_SIZES:
        raise ValueError(
            f"{where} (key id {key_id!r}): the key must decode to 16, 24 or 32 bytes, not {len(material)}"
        )
    return EncryptionKey(key_id, AESGCM(material))


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialized payload (data and metadata), with a random 12-byte nonce each.

    Encoded payloads carry `encoding: binary/encrypted` and `encryption-key-id: <id>`; their data is the nonce
    followed by the ciphertext and its tag.
    """

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError(f"{VARIABLE} holds no key")
        self._encrypting = keys[0]
        self._by_id = {key.key_id: key for key in keys}

    @classmethod
    def from_setting(cls, setting: str) -> EncryptionCodec:
        """A codec for a `WARROOM_ENCRYPTION_KEY` value; ValueError when it is malformed."""
        return cls(parse_keys(setting))

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this codec decrypts with, the encrypting one first."""
        return tuple(self._by_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload encrypted with the first key."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload decrypted; DecryptionError when one cannot be."""
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """The payload, serialized and encrypted with the first key."""
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._encrypting.cipher.encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._encrypting.key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not encrypted comes back unchanged."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")[:64]
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionError(
                f"payload encrypted with key id {key_id!r}, which {VARIABLE} does not hold "
                f"(it holds {', '.join(self._by_id)}): add that key back after the new one"
            )
        if len(payload.data) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionError(f"payload encrypted with key id {key_id!r} is truncated")
        nonce, sealed = payload.data[:NONCE_SIZE], payload.data[NONCE_SIZE:]
        try:
            plain = key.cipher.decrypt(nonce, sealed, None)
        except InvalidTag:
            raise DecryptionError(
                f"payload encrypted with key id {key_id!r} failed authentication: it was altered, "
                f"or key id {key_id!r} now names another key"
            ) from None
        original = Payload()
        try:
            original.ParseFromString(plain)
        except DecodeError:
            raise DecryptionError(f"payload encrypted with key id {key_id!r} holds no payload") from None
        return original


def codec_for(settings: Settings) -> EncryptionCodec | None:
    """The codec WARROOM_ENCRYPTION_KEY asks for; None when it is unset."""
    if settings.encryption_key is None:
        return None
    return EncryptionCodec.from_setting(settings.encryption_key.get_secret_value())


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter, encrypting every payload when WARROOM_ENCRYPTION_KEY is set.

    With encryption, failure messages and stack traces move into an (encrypted) payload too, so an error that
    quotes an incident's title does not leak it into the history.
    """
    codec = codec_for(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
