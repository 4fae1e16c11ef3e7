"""Message text as Slack stores it: what a person typed, escaped and linkified, and checks on stored text.

Slack keeps `&`, `<` and `>` of user text as `&amp;`, `&lt;` and `&gt;`, and writes links and mentions in its
own angle-bracket syntax (`<https://x|label>`, `<@U123>`, `<#C123|name>`, `<!here>`); apps receive and read
back that form, never what the person saw on screen.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}

# What the Slack client turns into link or mention syntax as a person types. A mention needs a non-word
# character (or nothing) before the `@`, so an email address stays text.
_TYPED = re.compile(
    r"(?P<url>\bhttps?://[^\s<>]+)"
    r"|(?<![\w@.])@(?P<special>here|channel|everyone)\b"
    r"|(?<![\w@.])@(?P<name>[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?)",
    re.IGNORECASE,
)
# Punctuation that ends a sentence rather than a URL ("see https://x/d/abc.").
_URL_TAIL = ".,;:!?'\""

# Stored text: a bracketed token, or a lone `<` / `>` (which well-formed stored text never has).
_BRACKETS = re.compile(r"<[^<>]*>|[<>]")
_TOKEN = re.compile(
    r"(?:@[UW][A-Z0-9]+"  # a user
    r"|#C[A-Z0-9]+"  # a channel
    r"|![a-z]+(?:\^[^|]*)?"  # !here, !channel, !everyone, !subteam^S123, !date^...
    r"|[a-z][a-z0-9+.-]*:[^|\s]+)"  # a link: https://..., mailto:...
    r"(?:\|.*)?",  # an optional label
    re.IGNORECASE | re.DOTALL,
)
_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def escape(text: str) -> str:
    """Escapes the three characters Slack escapes; nothing else."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def _split_url(url: str) -> tuple[str, str]:
    """The URL and the trailing punctuation that belongs to the sentence around it."""
    end = len(url)
    while end > 0:
        last = url[end - 1]
        if last in _URL_TAIL or (last == ")" and url.count("(", 0, end) < url.count(")", 0, end)):
            end -= 1
            continue
        break
    return url[:end], url[end:]


def from_typed(text: str, users_by_name: Mapping[str, str] | None = None) -> str:
    """What Slack stores for text a person typed: escaped, bare URLs as `<url>`, `@here` as `<!here>`, and
    `@name` of a user in `users_by_name` (name -> user id) as `<@U...>`; an unknown `@name` stays text."""
    names = users_by_name or {}
    out: list[str] = []
    pos = 0
    for match in _TYPED.finditer(text):
        out.append(escape(text[pos : match.start()]))
        pos = match.end()
        if match["url"]:
            url, tail = _split_url(match["url"])
            out.append(f"<{escape(url)}>{escape(tail)}")
        elif match["special"]:
            out.append(f"<!{match['special'].lower()}>")
        elif match["name"] in names:
            out.append(f"<@{names[match['name']]}>")
        else:
            out.append(escape(match[0]))
    out.append(escape(text[pos:]))
    return "".join(out)


# What Slack escapes in a slash command's text when the command has `should_escape: true`.
_COMMAND_REFS = re.compile(
    r"(?<![\w@.])@(?P<special>here|channel|everyone)\b"
    r"|(?<![\w@.])@(?P<name>[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?)"
    r"|(?<![\w#&])#(?P<channel>[a-z0-9_-]+)",
    re.IGNORECASE,
)
_ANGLE_TOKEN = re.compile(r"<[^<>]*>")


def escape_command(text: str, users_by_name: Mapping[str, str], channels_by_name: Mapping[str, str]) -> str:
    """A slash command's text as Slack sends it with escaping on: `@alice` of a known user as
    `<@U...|alice>`, `#ops` of a channel the person can see as `<#C...|ops>`, `@here`, `@channel` and
    `@everyone` as `<!here>`...; unknown names stay as typed, and so does anything already in angle brackets.
    (Links and `&`, `<`, `>` are left alone: the sandbox's callers send those already in Slack's form.)"""

    def one(match: re.Match[str]) -> str:
        if match["special"]:
            return f"<!{match['special'].lower()}>"
        if match["name"]:
            user_id = users_by_name.get(match["name"].lower())
            return f"<@{user_id}|{match['name'].lower()}>" if user_id else match[0]
        channel_id = channels_by_name.get(match["channel"].lower())
        return f"<#{channel_id}|{match['channel'].lower()}>" if channel_id else match[0]

    out: list[str] = []
    pos = 0
    for token in _ANGLE_TOKEN.finditer(text):
        out.append(_COMMAND_REFS.sub(one, text[pos : token.start()]))
        out.append(token[0])
        pos = token.end()
    out.append(_COMMAND_REFS.sub(one, text[pos:]))
    return "".join(out)


def stored_text_problem(text: str) -> str | None:
    """Why `text` is not well-formed stored Slack text, or None if it is."""
    for match in _BRACKETS.finditer(text):
        token = match[0]
        if token in ("<", ">"):
            return f"bare {token!r} at offset {match.start()}: Slack stores it as {_ESCAPES[token]}"
        if not _TOKEN.fullmatch(token[1:-1]):
            return (
                f"{token!r} at offset {match.start()} is not a link or mention "
                "(<https://...|label>, <@U...>, <#C...|name>, <!here>); escape a literal '<' as &lt;"
            )
    ampersand = _AMPERSAND.search(text)
    if ampersand is not None:
        return f"'&' at offset {ampersand.start()} is not escaped: Slack stores it as &amp;"
    return None
