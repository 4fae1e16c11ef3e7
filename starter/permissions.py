"""Enforces warroom.toml's `[permissions]` in the ingress, before any Temporal call that would change state.

A rule naming a user group asks Slack who is in it (`usergroups.users.list`, scope `usergroups:read`); the
answer is kept for `GROUP_TTL` seconds, so a burst of commands asks once. Each lookup is bounded by
`LOOKUP_TIMEOUT`, well inside Slack's 3 s (starter/slack_deadline.py): a group Slack did not answer for in
time, or refused to list, counts as one the person is not in, and the denial says so. A lookup cut off by
the timeout keeps running and fills the cache for the next command.

A rule naming "commander" compares with the incident's commander (its declarer while it has none), which
the caller reads with the state query: a query changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from domain.permissions import COMMANDER, Action, PermissionsConfig, is_group, mentions, plain
from domain.vocab import Severity, incident_label

log = structlog.get_logger("warroom.permissions")

GROUP_TTL = 60.0  # seconds a user group's members are trusted without asking Slack again
LOOKUP_TIMEOUT = 1.0  # seconds one membership lookup may take before the command is answered without it

SCOPE = "usergroups:read"
_DOES = {"resolve": "resolve {inc}", "severity": "change the severity of {inc}"}


@dataclass(frozen=True)
class Denial:
    """Why a command was refused: `text` (Slack mrkdwn, mentions render as names) and `plain` (for a
    form's error text, which renders none)."""

    text: str
    plain: str


class PermissionDenied(Exception):
    """Raised inside a form's work so its answer keeps the form open with the denial under `block`."""

    def __init__(self, denial: Denial, block: str) -> None:
        super().__init__(denial.plain)
        self.denial = denial
        self.block = block


class Permissions:
    def __init__(
        self,
        config: PermissionsConfig,
        client: AsyncWebClient,
        *,
        ttl: float = GROUP_TTL,
        timeout: float = LOOKUP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.client = client
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}  # group -> (fetched at, members)
        self._lookups: dict[str, asyncio.Task[frozenset[str]]] = {}  # a lookup in flight per group

    def restricts(self, action: Action) -> bool:
        return self.config.restricts(action)

    def needs_commander(self, action: Action) -> bool:
        return COMMANDER in self.config.rule(action)

    async def check(
        self, action: Action, user_id: str, *, incident_id: int | None = None, commander: str | None = None
    ) -> Denial | None:
        """None if `user_id` may do `action` (on `incident_id`, led by `commander`), else the denial."""
        rule = self.config.rule(action)
        if not self.restricts(action) or user_id in rule:
            return None
        if COMMANDER in rule and commander is not None and user_id == commander:
            return None
        groups = [p for p in rule if is_group(p)]
        unknown: dict[str, str] = {}  # group -> why Slack did not list it
        found = await asyncio.gather(*(self._members_of(g) for g in groups))
        for group, members in zip(groups, found, strict=True):
            if isinstance(members, str):
                unknown[group] = members
            elif user_id in members:
                return None
        log.info("permission_denied", action=action, user=user_id, unchecked_groups=list(unknown))
        return self._denial(action, rule, incident_id, commander, unknown)

    async def check_declare(self, severity: Severity, user_id: str) -> Denial | None:
        if severity is not Severity.SEV1:
            return None
        return await self.check("declare_sev1", user_id)

    async def check_severity(
        self, severity: Severity, user_id: str, incident_id: int, commander: str | None
    ) -> Denial | None:
        """A severity change; raising to sev1 must also pass `declare_sev1`, so a sev2 cannot become a sev1
        around it."""
        denial = await self.check("severity", user_id, incident_id=incident_id, commander=commander)
        if denial is None and severity is Severity.SEV1:
            return await self.check("declare_sev1", user_id, incident_id=incident_id, commander=commander)
        return denial

    # --- who is in a user group ------------------------------------------------------------------------

    async def _members_of(self, group: str) -> frozenset[str] | str:
        """The group's members, or why Slack did not list them (in time)."""
        cached = self._members.get(group)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        task = self._lookups.get(group)
        if task is None:
            task = asyncio.create_task(self._fetch(group))
            self._lookups[group] = task
            task.add_done_callback(lambda done: self._done(group, done))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except TimeoutError:
            log.warning("usergroup_lookup_slow", group=group, timeout=self.timeout)
            return "no answer in time"
        except SlackApiError as err:
            error = str(err.response.get("error") if err.response is not None else "unknown")
            log.warning("usergroup_lookup_failed", group=group, error=error)
            return f"{error}: the app needs the {SCOPE} scope" if error == "missing_scope" else error
        except Exception as err:  # the network: the command is answered all the same
            log.warning("usergroup_lookup_failed", group=group, error=type(err).__name__)
            return type(err).__name__

    async def _fetch(self, group: str) -> frozenset[str]:
        response = await self.client.usergroups_users_list(usergroup=group)
        users = response.get("users")
        members = frozenset(str(u) for u in users) if isinstance(users, list) else frozenset()
        self._members[group] = (self.clock(), members)
        return members

    def _done(self, group: str, task: asyncio.Task[frozenset[str]]) -> None:
        if self._lookups.get(group) is task:
            del self._lookups[group]
        if not task.cancelled():
            task.exception()  # retrieved: a failure was logged by whoever waited, or nobody waits any more

    # --- what the person is told -----------------------------------------------------------------------

    def _denial(
        self,
        action: Action,
        rule: tuple[str, ...],
        incident_id: int | None,
        commander: str | None,
        unknown: dict[str, str],
    ) -> Denial:
        if action == "declare_sev1":
            does = "raise {inc} to sev1" if incident_id is not None else "declare a sev1"
            fallback = "" if incident_id is not None else " Declare it as sev2 or lower, or ask one of them."
        else:
            does, fallback = _DOES[action], ""
        doing = does.format(inc=incident_label(incident_id) if incident_id is not None else "")
        text = f":no_entry: Only {mentions(rule)} may {doing}.{fallback}"
        flat = f"Only {plain(rule)} may {doing}.{fallback}"
        if COMMANDER in rule and commander is None:
            note = " It has no commander yet: name one with the `commander` command."
            text, flat = text + note, flat + note.replace("`", "")
        for group, why in unknown.items():
            note = "warroom could not ask Slack who is in {group} ({why}); try again in a moment."
            text += " " + note.format(group=f"<!subteam^{group}>", why=why)
            flat += " " + note.format(group=group, why=why)
        return Denial(text, flat)


async def declare_if_allowed(
    permissions: Permissions | None,
    severity: Severity,
    user_id: str | None,
    declare: Callable[[], Awaitable[int]],
) -> int:
    """The declare form's work: `permissions.declare_sev1` first (PermissionDenied under the severity block,
    and `declare` is never called), then the declaration."""
    if permissions is not None:
        denial = await permissions.check_declare(severity, user_id or "")
        if denial is not None:
            raise PermissionDenied(denial, "severity")
    return await declare()
