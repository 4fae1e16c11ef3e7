"""warroom.toml's `[permissions]`: who may resolve, change severity or declare a sev1 from Slack.

Each key lists principals:

- `"anyone"`: everyone in the workspace (the default: today's behaviour);
- `"commander"`: the incident's commander, or while it has none, whoever declared it (not valid for
  `declare_sev1`: there is no incident yet);
- a Slack user ID, `"U0123ABCD"` (or `"W..."` on Enterprise Grid), optionally written `"@U0123ABCD"`;
- a Slack user group ID, `"S0123ABCD"` (optionally `"@S0123ABCD"`): its members, as Slack lists them.

The ingress enforces these (starter/permissions.py); the CLI and the Python API are operators' tools with
Temporal access and are not checked.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

Action = Literal["resolve", "severity", "declare_sev1"]
ACTIONS: tuple[Action, ...] = ("resolve", "severity", "declare_sev1")
ANYONE = "anyone"
COMMANDER = "commander"
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_FORMS = '"anyone", "commander", a user ID ("U0123ABCD") or a user group ID ("S0123ABCD")'
NO_PRIVACY = (
    ".privacy: no command changes an incident's privacy once it is declared (only `declare --private` "
    "or the declare form chooses it), so there is nothing to permit; remove the key"
)


def is_group(principal: str) -> bool:
    return bool(GROUP_ID.match(principal))


def is_user(principal: str) -> bool:
    return bool(USER_ID.match(principal))


def _principal(entry: str) -> str:
    """The principal an entry names, normalised (`@U1` -> `U1`); ValueError naming the entry if none."""
    if entry in (ANYONE, COMMANDER):
        return entry
    bare = entry.removeprefix("@")
    if is_user(bare) or is_group(bare):
        return bare
    hint = " (a handle or name is not an ID: copy the ID from the person's or group's profile)"
    raise ValueError(f"{entry!r} is not {_FORMS}{hint if entry.startswith('@') else ''}")


def _rule(value: tuple[str, ...], key: str) -> tuple[str, ...]:
    """The validated principals of one key (pydantic names the key in front of any error)."""
    if not value:
        raise ValueError('list at least one principal (["anyone"] is the default)')
    principals = tuple(dict.fromkeys(_principal(e) for e in value))
    if ANYONE in principals and len(principals) > 1:
        raise ValueError('"anyone" already includes everyone; list it alone or not at all')
    if key == "declare_sev1" and COMMANDER in principals:
        raise ValueError('"commander" is not valid here: an incident being declared has no commander yet')
    return principals


class PermissionsConfig(BaseModel):
    """`[permissions]`; every key defaults to `["anyone"]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolve: tuple[str, ...] = (ANYONE,)
    severity: tuple[str, ...] = (ANYONE,)  # every severity change; raising to sev1 also needs declare_sev1
    declare_sev1: tuple[str, ...] = (ANYONE,)  # declaring at sev1, and raising an open incident to sev1

    @model_validator(mode="before")
    @classmethod
    def _no_privacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "privacy" in data:
            raise ValueError(NO_PRIVACY)
        return data

    @field_validator("resolve", "severity", "declare_sev1")
    @classmethod
    def _check(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return _rule(value, str(info.field_name))

    def rule(self, action: Action) -> tuple[str, ...]:
        return tuple(getattr(self, action))

    def restricts(self, action: Action) -> bool:
        return ANYONE not in self.rule(action)


def mentions(principals: tuple[str, ...]) -> str:
    """Who a rule lets act, in Slack mrkdwn (names render for the reader): `the commander, <@U1> or
    <!subteam^S1>`."""
    return _join([_mention(p) for p in principals])


def plain(principals: tuple[str, ...]) -> str:
    """The same in plain text (a form's error text renders no mentions)."""
    return _join(
        [
            "the commander"
            if p == COMMANDER
            else f"members of user group {p}"
            if is_group(p)
            else f"user {p}"
            if is_user(p)
            else p
            for p in principals
        ]
    )


def _mention(principal: str) -> str:
    if principal == COMMANDER:
        return "the commander"
    if is_group(principal):
        return f"<!subteam^{principal}>"
    if is_user(principal):
        return f"<@{principal}>"
    return principal


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"
