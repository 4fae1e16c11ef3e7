"""The product's words: stages, severities, statuses."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where responders are; any order, each change carries context."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MITIGATED = "mitigated"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Severity(StrEnum):
    """sev1 is the worst."""

    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"

    @property
    def label(self) -> str:
        return self.value.upper()


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


DEFAULT_SEVERITY = Severity.SEV3

# Emoji names (without colons) that turn a message in an incident channel into a status update.
BROADCAST_REACTIONS = frozenset({"mega", "pushpin", "mailbox"})


def incident_label(incident_id: int) -> str:
    return f"INC-{incident_id}"
