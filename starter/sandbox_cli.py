"""`warroom slack ...`: be a Slack user against the local sandbox that `warroom dev` runs.

What it prints is what a person reads in Slack, as plain text (`activities.slack_mrkdwn.to_plain`): entities
decoded, `<@U1|ada>` as `@ada`, `<#C1|ops>` as `#ops`, `<https://x|label>` as `label (https://x)`.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from activities.slack_mrkdwn import to_plain
from sandbox.client import SandboxClient, SandboxError

DEFAULT_USER = "U0DEVUSER"

# (form, what it does): `warroom slack --help` and the usage line for a form that does not fit.
FORMS = (
    ('"/incident ..."', "a slash command as --user in --channel; prints the reply only you see"),
    ("say CHANNEL TEXT", "post TEXT as --user; prints its ts alone: ts=$(warroom slack say ...)"),
    (
        "react CHANNEL TS|last [EMOJI]",
        "react as --user (default: mega, a broadcast); last: the newest message",
    ),
    ("show [CHANNEL]", "the channels and their descriptions, or one channel's messages and threads"),
    ("dms", "the direct messages warroom sent --user (reminders, role descriptions)"),
    ("statuspage", "the public status page's stand-in: components, incidents and their updates"),
)
FORMS_HELP = (
    "\n".join(f"  {form:<31} {does}" for form, does in FORMS)
    + "\n\nCHANNEL (and --channel): a channel ID (C0...), #name or name, e.g. '#inc-1-checkout'."
)
USAGE = "usage: warroom slack [--user USER] [--channel CHANNEL] [--sandbox URL] WORDS...\n" + FORMS_HELP

_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_BARE_MENTION = re.compile(r"<([@#])([UWCGD][A-Z0-9]+)>")


class SandboxCliError(Exception):
    """What the user asked for is not in the sandbox (an unknown channel, no message to react to)."""


async def run_slack(words: list[str], user: str, channel: str | None, url: str) -> int:
    try:
        async with SandboxClient(url) as sb:
            return await _run(sb, words, user, channel)
    except aiohttp.ClientConnectionError:
        print(f"warroom: no Slack sandbox at {url}; start `warroom dev` without SLACK_BOT_TOKEN first")
        return 2
    except (SandboxCliError, SandboxError) as err:
        print(f"warroom: {err}")
        return 2


async def channel_id(sb: SandboxClient, ref: str) -> str:
    """A channel ID as it is, or the ID of the channel named `#name` or `name`."""
    if _CHANNEL_ID.fullmatch(ref):
        return ref
    found = await sb.channel_by_name(ref.removeprefix("#"))
    if not found:
        raise SandboxCliError(
            f"no channel named #{ref.removeprefix('#')} in the sandbox (see `warroom slack show`)"
        )
    return str(found["id"])


async def _newest_ts(sb: SandboxClient, channel: str, ref: str) -> str:
    messages = await sb.messages(channel)
    if not messages:
        raise SandboxCliError(f"no message in {ref} to react to")
    return str(messages[-1]["ts"])


async def _run(sb: SandboxClient, words: list[str], user: str, channel: str | None) -> int:
    head = words[0]
    if head.startswith("/"):
        text = " ".join(words)
        command, _, rest = text.partition(" ")
        where = await channel_id(sb, channel or "#general")
        result = await sb.command(user_id=user, channel_id=where, text=rest, command=command)
        print(_Names(await sb.state()).text(_ack_text(result)))
        return 0 if result.get("status") == 200 else 1
    if head == "react" and len(words) in (3, 4):
        emoji = words[3].strip(":") if len(words) > 3 else "mega"
        where = await channel_id(sb, words[1])
        ts = await _newest_ts(sb, where, words[1]) if words[2] == "last" else words[2]
        result = await sb.react(user_id=user, channel_id=where, ts=ts, reaction=emoji)
        print(f"reacted :{emoji}: to {ts} (ingress answered {result.get('status')})")
        return 0
    if head == "say" and len(words) >= 3:
        where = await channel_id(sb, words[1])
        result = await sb.message(user_id=user, channel_id=where, text=" ".join(words[2:]))
        print(result.get("ts"))
        return 0
    if head == "show" and len(words) <= 2:
        await _show(sb, words[1] if len(words) > 1 else None)
        return 0
    if head == "dms" and len(words) == 1:
        return await _show_dms(sb, user)
    if head == "statuspage" and len(words) == 1:
        await _show_statuspage(sb)
        return 0
    print(USAGE)
    return 2


def _ack_text(result: dict[str, Any]) -> str:
    body = result.get("body")
    if isinstance(body, dict):
        return str(body.get("text") or "(form opened)")
    return str(body or f"(HTTP {result.get('status')})")


class _Names:
    """People and channels by name, as a Slack client shows them: `@alice`, not `U0ALICE`."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.names = {str(u["id"]): str(u["name"]) for u in state.get("users", [])}
        self.names.update({str(c["id"]): str(c["name"]) for c in state.get("channels", [])})

    def who(self, message: dict[str, Any]) -> str:
        user = str(message.get("user", "?"))
        return self.names.get(user, user)

    def text(self, text: str) -> str:
        def named(match: re.Match[str]) -> str:
            name = self.names.get(match[2])
            return f"<{match[1]}{match[2]}|{name}>" if name else match[0]

        return to_plain(_BARE_MENTION.sub(named, text))

    def line(self, message: dict[str, Any]) -> str:
        return f"[{message['ts']}] {self.who(message)}: {self.text(str(message.get('text', '')))}"


async def _show(sb: SandboxClient, channel: str | None) -> None:
    state = await sb.state()
    names = _Names(state)
    channels = state.get("channels", [])
    if channel is None:
        for c in channels:
            print(f"{c['id']}  #{c['name']}  {names.text(str(c.get('purpose', {}).get('value', '')))}")
            for b in c.get("bookmarks") or []:
                print(f"    bookmark: {b.get('title')}  {b.get('link')}")
        return
    for m in await sb.messages(await channel_id(sb, channel)):
        print(names.line(m))
        for r in m.get("replies", []):
            files = ", ".join(str(f.get("name")) for f in r.get("files") or [])
            print(f"    ↳ {names.line(r)}" + (f" [files: {files}]" if files else ""))


async def _show_dms(sb: SandboxClient, user: str) -> int:
    """The direct messages warroom sent `user` (reminders), oldest first."""
    state = await sb.state()
    channel = state.get("dms", {}).get(user)
    if channel is None:
        print(f"no DMs to {user} yet")
        return 0
    names = _Names(state)
    for m in await sb.messages(channel):
        print(names.line(m))
    return 0


async def _show_statuspage(sb: SandboxClient) -> None:
    """What the public status page shows (the sandbox's Statuspage stand-in), newest update first."""
    page = await sb.vendor_state("statuspage")
    print("components: " + ", ".join(f"{c['name']} {c['status']}" for c in page.get("components", [])))
    for incident in page.get("incidents", []):
        print(
            f"{incident['id']}  {incident['status']}  {incident['name']}  {incident.get('shortlink') or ''}"
        )
        for u in incident.get("incident_updates", []):
            print(f"    {u['display_at']}  {u['status']}: {u['body']}")
    if not page.get("incidents"):
        print("no incidents on the status page")
