"""The `/incident remind` grammar: set a reminder, list them, cancel one (domain.commands dispatches here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.timeexpr import split_when
from domain.usage import UsageError, usage_for

TEXT_MAX = 3000  # as domain.commands.TEXT_MAX
REMINDER_ID = r"[A-Za-z0-9_.:-]{1,100}"
ReminderId = Annotated[str, Field(pattern=rf"^{REMINDER_ID}$")]


class Remind(BaseModel):
    """DM the caller `text` at `when` (an expression for `domain.timeexpr.resolve_when`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["remind"] = "remind"
    when: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]


class CancelReminder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["cancel_reminder"] = "cancel_reminder"
    reminder_id: ReminderId


class ListReminders(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["list_reminders"] = "list_reminders"


def parse_remind(rest: str, text: Callable[[str], str]) -> Remind | CancelReminder | ListReminders:
    """`rest` after the word; `text` checks the reminder's text (UsageError when empty or too long)."""
    parts = rest.split(None, 1)
    if parts and parts[0].lower() == "cancel":
        ids = parts[1].split() if len(parts) > 1 else []
        if len(ids) != 1 or not re.fullmatch(REMINDER_ID, ids[0]):
            raise UsageError("Give the ID of one reminder, as `reminders` lists it.", usage_for("remind"))
        return CancelReminder(reminder_id=ids[0])
    if parts and parts[0].lower() == "list" and len(parts) == 1:
        return ListReminders()
    try:
        when, body = split_when(rest)
    except UsageError as e:
        raise e.with_usage(usage_for("remind")) from None
    return Remind(when=when, text=text(body))
