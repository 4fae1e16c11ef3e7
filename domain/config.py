"""Optional structured configuration: `warroom.toml`, named by WARROOM_CONFIG.

Everything in it that shapes an incident's behaviour is snapshotted into the Declaration at declare time
(`WarroomConfig.declaration_fields`), so a running incident keeps the configuration it started with.
"""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.naming import DEFAULT_CHANNEL_TEMPLATE, MAX_CHANNEL_NAME
from domain.permissions import PermissionsConfig
from domain.vocab import BROADCAST_REACTIONS, Severity, Stage

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_EMOJI = re.compile(r"^[a-z0-9][a-z0-9_+'-]*$")
_NAME_LITERAL = re.compile(r"^[a-z0-9_-]*$")
_SEVERITIES = f"{Severity.SEV1.value}..{Severity.SEV4.value}"
_STAGES = ", ".join(s.value for s in Stage)
MAX_LABEL = 40
MIN_SLUG_ROOM = 20  # characters of the title the template must leave room for


class ConfigError(ValueError):
    """warroom.toml is missing or wrong; the message names the file, the key and the problem."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _channel_ids(value: dict[str, tuple[str, ...]], known: set[str], what: str) -> dict[str, tuple[str, ...]]:
    for key, ids in value.items():
        if key not in known:
            raise ValueError(f".{key}: not a {what}")
        bad = [i for i in ids if not CHANNEL_ID.match(i)]
        if bad:
            raise ValueError(f".{key}: channel IDs look like C0123ABCD, not {', '.join(map(repr, bad))}")
    return {k: tuple(dict.fromkeys(v)) for k, v in value.items()}


class BroadcastConfig(_Section):
    by_severity: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    by_stage: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("by_severity")
    @classmethod
    def _severities(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return _channel_ids(value, {s.value for s in Severity}, f"severity ({_SEVERITIES})")

    @field_validator("by_stage")
    @classmethod
    def _stages(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return _channel_ids(value, {s.value for s in Stage}, f"stage ({_STAGES})")


def _emoji_names(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [e for e in value if not _EMOJI.match(e)]
    if bad:
        raise ValueError(f"emoji names without colons (like mega), not {', '.join(map(repr, bad))}")
    return tuple(dict.fromkeys(value))


class ReactionsConfig(_Section):
    broadcast: tuple[str, ...] = tuple(sorted(BROADCAST_REACTIONS))
    followup: tuple[str, ...] = ()  # e.g. ["mailbox"]: that reaction records a follow-up instead

    @field_validator("broadcast")
    @classmethod
    def _emoji(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one emoji name")
        return _emoji_names(value)

    @field_validator("followup")
    @classmethod
    def _followup_emoji(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _emoji_names(value)

    @model_validator(mode="after")
    def _disjoint(self) -> ReactionsConfig:
        both = sorted(set(self.broadcast) & set(self.followup))
        if both:
            raise ValueError(f"{', '.join(both)} cannot both broadcast and record a follow-up")
        return self


BUILT_IN_ROLES: dict[str, str] = {
    "commander": "Incident commander: leads the response, decides, and keeps everyone on one plan.",
    "comms": "Communications lead: keeps stakeholders informed with regular status updates.",
}
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
MAX_ROLE_DESCRIPTION = 300
# Minutes without a status update before the commander is nudged; 0 never nudges.
DEFAULT_NUDGE_MINUTES: dict[str, int] = {"sev1": 15, "sev2": 30, "sev3": 60, "sev4": 0}


def _roles(value: dict[str, str]) -> dict[str, str]:
    for name, description in value.items():
        if not _ROLE.match(name):
            raise ValueError(f".{name}: a role name is a lowercase letter, then letters, digits, - or _")
        if not description.strip() or len(description) > MAX_ROLE_DESCRIPTION:
            raise ValueError(f".{name}: describe the role in 1 to {MAX_ROLE_DESCRIPTION} characters")
    return {k: " ".join(v.split()) for k, v in value.items()}


def _nudges(value: dict[str, int]) -> dict[str, int]:
    for key, minutes in value.items():
        if key not in {s.value for s in Severity}:
            raise ValueError(f".{key}: not a severity ({_SEVERITIES})")
        if not 0 <= minutes <= 24 * 60:
            raise ValueError(f".{key}: minutes from 0 (never) to 1440")
    return {**DEFAULT_NUDGE_MINUTES, **value}


class ChannelsConfig(_Section):
    name_template: str = DEFAULT_CHANNEL_TEMPLATE

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError as err:
            raise ValueError(f"not a valid template ({err})") from None
        fields = [name for _, name, _, _ in parts if name is not None]
        for name in fields:
            if name not in ("id", "slug"):
                raise ValueError(f"unknown placeholder {{{name}}}; only {{id}} and {{slug}}")
        if any(spec or conv for _, name, spec, conv in parts if name is not None):
            raise ValueError("placeholders take no format spec or conversion")
        for needed in ("id", "slug"):
            if fields.count(needed) != 1:
                raise ValueError(f"must contain {{{needed}}} exactly once")
        literal = "".join(text for text, _, _, _ in parts)
        if not _NAME_LITERAL.match(literal):
            raise ValueError("outside {id} and {slug} only lowercase letters, digits, - and _ are valid")
        if len(literal) + 9 + MIN_SLUG_ROOM > MAX_CHANNEL_NAME:  # 9: the longest incident ID
            raise ValueError(f"too long: leave room for the title within {MAX_CHANNEL_NAME} characters")
        return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, label in value.items():
        if key not in {s.value for s in Severity}:
            raise ValueError(f".{key}: not a severity ({_SEVERITIES})")
        if not label.strip() or "\n" in label or len(label) > MAX_LABEL:
            raise ValueError(f".{key}: a label is one line of 1 to {MAX_LABEL} characters")
    return {k: v.strip() for k, v in value.items()}


class WarroomConfig(_Section):
    broadcast: BroadcastConfig = Field(default_factory=BroadcastConfig)
    reactions: ReactionsConfig = Field(default_factory=ReactionsConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    severities: dict[str, str] = Field(default_factory=dict)
    roles: dict[str, str] = Field(default_factory=dict)  # custom roles: name -> description
    nudges: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_NUDGE_MINUTES))
    # Read by the ingress on each command, never snapshotted: a change applies once `warroom web` restarts.
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)

    _check_labels = field_validator("severities")(_labels)
    _check_roles = field_validator("roles")(_roles)
    _check_nudges = field_validator("nudges")(_nudges)

    @property
    def all_roles(self) -> dict[str, str]:
        """Built-in roles (commander, comms) and warroom.toml's, which may re-describe the built-in ones."""
        return {**BUILT_IN_ROLES, **self.roles}

    def severity_channels(self, severity: Severity) -> tuple[str, ...]:
        return self.broadcast.by_severity.get(severity.value, ())

    def declaration_fields(self) -> dict[str, Any]:
        """The snapshot a Declaration carries (its defaults are the values of an empty config)."""
        return {
            "stage_broadcasts": dict(self.broadcast.by_stage),
            "broadcast_reactions": self.reactions.broadcast,
            "severity_labels": dict(self.severities),
            "channel_name_template": self.channels.name_template,
            "roles": self.all_roles,
            "nudge_minutes": dict(self.nudges),
            "followup_reactions": self.reactions.followup,
        }


def _location(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _problem(error: Any) -> str:
    where = _location(tuple(error["loc"]))
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("."):  # a validator naming the key below its field
        return f"{where}{message}"
    return f"{where}: {message}" if where else message


def parse_config(text: str, source: str = "warroom.toml") -> WarroomConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    try:
        return WarroomConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(_problem(e) for e in err.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: str | Path | None) -> WarroomConfig:
    """The configuration in `path`; None (WARROOM_CONFIG unset) is the empty configuration."""
    if path is None:
        return WarroomConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read WARROOM_CONFIG: {err.strerror or err}") from None
    return parse_config(text, str(path))
