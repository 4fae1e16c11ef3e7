"""`warroom slack ...`: be a Slack user against the local sandbox that `warroom dev` runs."""

from __future__ import annotations

from typing import Any

import aiohttp

from sandbox.client import SandboxClient

USAGE = (
    'usage: warroom slack "/incident ..." | react CHANNEL TS [EMOJI] | say CHANNEL TEXT | show [CHANNEL]'
    " | dms\n"
    "CHANNEL may be an ID (C0...) or a name (#inc-1-...); `dms` shows the DMs warroom sent you (--user)."
)


async def run_slack(words: list[str], user: str, channel: str | None, url: str) -> int:
    try:
        async with SandboxClient(url) as sb:
            return await _run(sb, words, user, channel)
    except aiohttp.ClientConnectionError:
        print(f"warroom: no Slack sandbox at {url}; start `warroom dev` without SLACK_BOT_TOKEN first")
        return 2


async def _channel_id(sb: SandboxClient, ref: str) -> str:
    if ref.startswith("#"):
        found = await sb.channel_by_name(ref[1:])
        if not found:
            raise SystemExit(f"warroom: no channel named {ref} in the sandbox")
        return str(found["id"])
    return ref


async def _run(sb: SandboxClient, words: list[str], user: str, channel: str | None) -> int:
    head = words[0]
    if head.startswith("/"):
        text = " ".join(words)
        command, _, rest = text.partition(" ")
        where = await _channel_id(sb, channel or "#general")
        result = await sb.command(user_id=user, channel_id=where, text=rest, command=command)
        print(_ack_text(result))
        return 0 if result.get("status") == 200 else 1
    if head == "react" and len(words) >= 3:
        emoji = words[3] if len(words) > 3 else "mega"
        result = await sb.react(
            user_id=user, channel_id=await _channel_id(sb, words[1]), ts=words[2], reaction=emoji
        )
        print(f"reacted :{emoji}: (ingress answered {result.get('status')})")
        return 0
    if head == "say" and len(words) >= 3:
        result = await sb.message(
            user_id=user, channel_id=await _channel_id(sb, words[1]), text=" ".join(words[2:])
        )
        print(f"posted ts={result.get('ts')}")
        return 0
    if head == "show":
        await _show(sb, words[1] if len(words) > 1 else None)
        return 0
    if head == "dms" and len(words) == 1:
        return await _show_dms(sb, user)
    print(USAGE)
    return 2


def _displayed(text: object) -> str:
    """Message text as Slack displays it: its stored entities (`&amp;`, `&lt;`, `&gt;`) decoded once, so an
    entity escaped twice by mistake still shows (`&amp;`); links and mentions stay in Slack's syntax."""
    return str(text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _ack_text(result: dict[str, Any]) -> str:
    body = result.get("body")
    if isinstance(body, dict):
        return str(body.get("text") or "(form opened)")
    return str(body or f"(HTTP {result.get('status')})")


async def _show(sb: SandboxClient, channel: str | None) -> None:
    state = await sb.state()
    channels = state.get("channels", [])
    if channel is None:
        for c in channels:
            print(f"{c['id']}  #{c['name']}  {c.get('purpose', {}).get('value', '')}")
            for b in c.get("bookmarks") or []:
                print(f"    bookmark: {b.get('title')}  {b.get('link')}")
        return
    channel_id = await _channel_id(sb, channel)
    for m in await sb.messages(channel_id):
        print(f"[{m['ts']}] {m.get('user', '?')}: {_displayed(m.get('text', ''))}")
        for r in m.get("replies", []):
            names = ", ".join(str(f.get("name")) for f in r.get("files") or [])
            files = f" [files: {names}]" if names else ""
            print(f"    ↳ [{r['ts']}] {r.get('user', '?')}: {_displayed(r.get('text', ''))}{files}")


async def _show_dms(sb: SandboxClient, user: str) -> int:
    """The direct messages warroom sent `user` (reminders), oldest first."""
    channel_id = (await sb.state()).get("dms", {}).get(user)
    if channel_id is None:
        print(f"no DMs to {user} yet")
        return 0
    for m in await sb.messages(channel_id):
        print(f"[{m['ts']}] {m.get('user', '?')}: {_displayed(m.get('text', ''))}")
    return 0
