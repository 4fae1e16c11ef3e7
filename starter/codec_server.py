"""`warroom codec-server`: Temporal's codec server protocol, so the Temporal Web UI and CLI can show payloads
that WARROOM_ENCRYPTION_KEY encrypts.

`POST /encode` and `POST /decode` take and answer `{"payloads": [{"metadata": {...}, "data": "..."}]}`, the
proto3 JSON of `temporal.api.common.v1.Payloads` (bytes as base64). The browser calls it from the UI's page,
so only the origins in WARROOM_CODEC_CORS_ORIGINS may; with WARROOM_CODEC_TOKEN set every call needs
`Authorization: Bearer <token>`. Nothing a payload holds, and no key, is ever logged or put in an error.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from domain.encryption import DecryptionError, EncryptionCodec, codec_for
from domain.settings import Settings
from starter.metrics import Handler
from starter.serve import ConfigError

log = structlog.get_logger("warroom.codec")

MAX_BODY = 16 * 1024 * 1024  # the UI sends a whole event's payloads at once; Temporal allows 2 MB each
ALLOW_HEADERS = "Content-Type, Authorization, X-Namespace"
ALLOW_METHODS = "POST, OPTIONS"
UNAUTHORIZED = "missing or wrong bearer token: send `Authorization: Bearer $WARROOM_CODEC_TOKEN`"
BAD_BODY = 'the body must be JSON like {"payloads": [{"metadata": {...}, "data": "<base64>"}]}'

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class CodecRoutes:
    """The handlers and the CORS middleware of the codec server."""

    def __init__(self, codec: EncryptionCodec, origins: Sequence[str], token: str | None) -> None:
        self._codec = codec
        self._origins = frozenset(origins)
        self._token = token.encode() if token else None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys it decrypts with, the encrypting one first."""
        return self._codec.key_ids

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.cors])
        app.router.add_post("/encode", self.encode)
        app.router.add_post("/decode", self.decode)
        for path in ("/encode", "/decode"):
            app.router.add_route("OPTIONS", path, self.preflight)
        return app

    @web.middleware
    async def cors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """CORS headers on every answer to an allowed origin, and on none to any other."""
        response = await handler(request)
        origin = request.headers.get("Origin")
        if origin is not None and origin in self._origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
        return response

    async def preflight(self, request: web.Request) -> web.Response:
        """`OPTIONS`: 204 for an allowed origin (the middleware adds the headers), 403 for any other."""
        if request.headers.get("Origin") not in self._origins:
            log.warning(
                "codec_origin_refused", path=request.path, hint="add it to WARROOM_CODEC_CORS_ORIGINS"
            )
            return _error(403, "origin not allowed: add it to WARROOM_CODEC_CORS_ORIGINS")
        return web.Response(status=204)

    async def encode(self, request: web.Request) -> web.Response:
        """`POST /encode`: encrypts the payloads (the UI encodes what it sends, e.g. a signal's input)."""
        return await self._answer(request, self._codec.encode)

    async def decode(self, request: web.Request) -> web.Response:
        """`POST /decode`: decrypts the payloads; ones that are not encrypted come back unchanged."""
        return await self._answer(request, self._codec.decode)

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    async def _answer(self, request: web.Request, transform: Transform) -> web.Response:
        if not self._authorized(request):
            log.warning("codec_unauthorized", path=request.path)
            return _error(401, UNAUTHORIZED)
        try:
            payloads = json_format.Parse(await request.read(), Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError):
            # The parser's own message may quote the body: not passed on.
            return _error(400, BAD_BODY)
        try:
            result = await transform(payloads.payloads)
        except DecryptionError as err:  # names a key id and the problem, never the contents
            log.warning("codec_decrypt_failed", path=request.path, error=str(err))
            return _error(422, str(err))
        log.info("codec_request", path=request.path, payloads=len(result))
        return web.json_response({"payloads": [json_format.MessageToDict(p) for p in result]})


def codec_routes(settings: Settings) -> CodecRoutes:
    """The routes for these settings: ConfigError without WARROOM_ENCRYPTION_KEY, ValueError if malformed."""
    codec = codec_for(settings)
    if codec is None:
        raise ConfigError(
            "warroom codec-server needs WARROOM_ENCRYPTION_KEY (the worker's keys) to decode payloads"
        )
    token = settings.codec_token.get_secret_value() if settings.codec_token else None
    if token is None:
        log.warning(
            "codec_server_without_token", hint="loopback only; set WARROOM_CODEC_TOKEN to serve further"
        )
    return CodecRoutes(codec, settings.codec_cors_origins, token)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


@dataclass
class RunningCodecServer:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_codec_server(settings: Settings, host: str, port: int | None = None) -> RunningCodecServer:
    """Starts serving; port None means WARROOM_CODEC_PORT, 0 a free port (tests). Without WARROOM_CODEC_TOKEN
    it serves only on loopback (ConfigError otherwise): whoever reaches it can decrypt every payload."""
    if settings.codec_token is None and not _loopback(host):
        raise ConfigError(
            f"warroom codec-server decrypts payloads for anyone who reaches it: set WARROOM_CODEC_TOKEN to"
            f" listen on {host}, or listen on 127.0.0.1 (the default --host) and reach it through SSH"
        )
    routes = codec_routes(settings)
    runner = web.AppRunner(routes.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.codec_port if port is None else port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else 0
    log.info(
        "codec_server_listening",
        url=f"http://{host}:{bound}",
        origins=",".join(settings.codec_cors_origins),
        key_ids=",".join(routes.key_ids),
    )
    return RunningCodecServer(runner, bound)
