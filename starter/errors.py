"""Errors the programmatic API raises: each message is safe to show a user as it is."""

from __future__ import annotations


class IncidentError(Exception):
    """A problem the caller can act on; the message is safe to show a user."""


class IncidentNotFound(IncidentError):
    pass


class CommandRejected(IncidentError):
    pass


class IncidentBusy(IncidentError):
    """A transient state worth retrying (e.g. an alert key that is being released)."""
