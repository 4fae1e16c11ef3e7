"""Text Slack delivered (a message's `text`): already mrkdwn, with entities escaped (`&amp;`, `&lt;`, `&gt;`)
and links and mentions in Slack's syntax (`<https://x|label>`, `<@U1>`, `<#C1|name>`, `<!here>`).

In Slack it is quoted as it is, apart from broadcast mentions, which are defused so that quoting a message
never pings a whole channel or user group. Where it leaves Slack (the timeline files, a Jira summary) it is
converted to plain text or split into text and links for Markdown.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_CONTROL = re.compile(r"<([^<>]*)>")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # `&amp;` last: `&amp;lt;` is `&lt;` as text


class Part(NamedTuple):
    """A run of plain text (`url` None) or a link with its label, as Slack text holds them."""

    text: str
    url: str | None = None


def _special(body: str) -> str:
    """`!here`, `!channel`, `!subteam^S1|@oncall`, `!date^…|fallback` as the words a reader sees."""
    name, _, label = body[1:].partition("|")
    if name.startswith("date^"):
        return label or "a date"
    if name.startswith("subteam^"):
        return label if label.startswith("@") else f"@{label or 'group'}"
    return label if label.startswith("@") else f"@{name}"


def defuse(text: str) -> str:
    """Slack text to quote in a message: unchanged, except `<!here>`, `<!channel>`, `<!everyone>`,
    `<!subteam^…>` (and any other `<!…>` special) become plain text that pings nobody."""

    def plain(m: re.Match[str]) -> str:
        body = m.group(1)
        return (
            _special(body).replace("<", "&lt;").replace(">", "&gt;") if body.startswith("!") else m.group(0)
        )

    return _CONTROL.sub(plain, text)


def unescape(text: str) -> str:
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _control(body: str) -> Part:
    target, _, label = body.partition("|")
    if target.startswith("@"):
        return Part(f"@{label}" if label else target)
    if target.startswith("#"):
        return Part(f"#{label}" if label else target)
    if target.startswith("!"):
        return Part(unescape(_special(body)))
    url = unescape(target)
    return Part(unescape(label) or url, url)


def parts(text: str) -> list[Part]:
    """Slack text as plain-text runs and links: entities unescaped, mentions as `@U1` (`@name` with a
    label) / `#name`."""
    out: list[Part] = []
    pos = 0
    for m in _CONTROL.finditer(text):
        if m.start() > pos:
            out.append(Part(unescape(text[pos : m.start()])))
        out.append(_control(m.group(1)))
        pos = m.end()
    if pos < len(text):
        out.append(Part(unescape(text[pos:])))
    return out


def to_plain(text: str) -> str:
    """Slack text as plain text: `&amp;` -> `&`, `<url|label>` -> `label (url)`, `<@U1>` -> `@U1`,
    `<@U1|ada>` -> `@ada`, `<#C1|ops>` -> `#ops`."""
    return "".join(p.text if p.url is None or p.url == p.text else f"{p.text} ({p.url})" for p in parts(text))
