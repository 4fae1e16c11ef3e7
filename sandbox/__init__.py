"""A stateful stand-in for Slack over HTTP: the Web API the bot calls and the platform that calls the bot."""

from sandbox.client import SandboxClient, SandboxError
from sandbox.models import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID
from sandbox.server import SandboxServer, create_app
from sandbox.signing import signature, signed_headers, verify
from sandbox.state import SandboxState

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "SandboxClient",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
    "create_app",
    "signature",
    "signed_headers",
    "verify",
]
