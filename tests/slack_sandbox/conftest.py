"""Fixtures the sandbox's own tests share: a fake app ingress, the sandbox pointing at it, the real slack-sdk
client and the control client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.sandbox_fixtures import SECRET, TOKEN, FakeIngress


@pytest.fixture
async def ingress() -> AsyncIterator[FakeIngress]:
    fake = FakeIngress()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sb(ingress: FakeIngress) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(TOKEN, SECRET, ingress_url=ingress.url) as server:
        yield server


@pytest.fixture
def slack(sb: SandboxServer) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=sb.api_url)


@pytest.fixture
async def control(sb: SandboxServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sb.url) as client:
        yield client
