"""What a vendor stand-in (Zoom, Google Meet, Jira) offers the sandbox server it is mounted on."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from aiohttp import web


class VendorFake(Protocol):
    """A stateful stand-in for one vendor API, served over HTTP by the sandbox under its own prefix."""

    name: str  # "zoom", "meet", "jira": also its URL prefix and control prefix `/_sandbox/<name>/`

    def add_routes(self, app: web.Application) -> None:
        """Adds the vendor's API routes (e.g. `/zoom/v2/users/me/meetings`) and control routes."""

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        """warroom's environment settings (e.g. `ZOOM_API_URL`) that point it at this stand-in.

        `workdir` is where a file such settings need (a service account key) may be written.
        """
        ...

    def reset(self) -> None:
        """Forgets all state and faults."""
