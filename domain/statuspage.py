"""Atlassian Statuspage: what warroom may publish on the public status page, and how stages map onto it.

Nothing is published without a preview first: `/incident statuspage ...` and `/incident update --public ...`
store a draft in the incident and show it; `/incident statuspage --confirm <n>` publishes draft n. A private
incident never has a draft, an order or a call to Statuspage (the workflow refuses, the activity is never
asked). Public text comes only from what a person wrote for the page, or from the fixed neutral line of a
status (`NEUTRAL_BODY`): a stage's context, an update's text and the incident's title stay internal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.base import Model
from domain.usage import UsageError, clean_text, quote, usage_for
from domain.vocab import Severity, Stage

PageStatus = Literal["investigating", "identified", "monitoring", "resolved"]
ComponentStatus = Literal[
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]
NAME_MAX = 255  # Statuspage's limit for an incident name

STAGE_STATUS: dict[Stage, PageStatus] = {
    Stage.INVESTIGATING: "investigating",
    Stage.IDENTIFIED: "identified",
    Stage.MITIGATED: "monitoring",
}
NEUTRAL_BODY: dict[str, str] = {
    "investigating": "We are looking into this issue and will post more here as we learn more.",
    "identified": "We have found the cause and are working on a fix.",
    "monitoring": "A fix is in place; we are watching to make sure it holds.",
    "resolved": "This issue is resolved. Thank you for your patience.",
}
SEVERITY_IMPACT: dict[Severity, ComponentStatus] = {
    Severity.SEV1: "major_outage",
    Severity.SEV2: "partial_outage",
    Severity.SEV3: "degraded_performance",
    Severity.SEV4: "degraded_performance",
}
COMPONENT_STATUSES: dict[str, ComponentStatus] = {
    "operational": "operational",
    "degraded": "degraded_performance",
    "degraded_performance": "degraded_performance",
    "partial": "partial_outage",
    "partial_outage": "partial_outage",
    "major": "major_outage",
    "major_outage": "major_outage",
    "maintenance": "under_maintenance",
    "under_maintenance": "under_maintenance",
}
STATUS_LABELS: dict[str, str] = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "under_maintenance": "Under maintenance",
}


class ComponentImpact(Model):
    """One component of the page and the status it shows; `status` None: from the incident's severity."""

    name: str  # as STATUSPAGE_COMPONENTS names it (`api`)
    component_id: str
    status: ComponentStatus | None = None


class PublicDraftRequest(Model):
    """What `/incident statuspage ...` (kind `open`) or `/incident update --public ...` (`update`) asks to
    preview. `body` empty: the neutral line of the status."""

    kind: Literal["open", "update"]
    name: str = ""
    body: str = ""
    components: tuple[ComponentImpact, ...] = ()
    actor: str | None = None


class PublicDraft(Model):
    """A preview waiting for `--confirm <number>`: exactly what will be published."""

    number: int
    kind: Literal["open", "update"]
    name: str = ""
    body: str
    status: PageStatus
    components: tuple[ComponentImpact, ...] = ()
    actor: str | None = None


class PublicConfirm(Model):
    number: int
    actor: str | None = None


class PublicRequest(Model):
    """IncidentWorkflow's `statuspage` update: a preview to store and show, or a preview to publish."""

    preview: PublicDraftRequest | None = None
    confirm: PublicConfirm | None = None


class PublicOrder(Model):
    """Work for the status page, done in order (workflows.statuspage); `key` makes retries act once."""

    key: str
    action: Literal["create", "update", "resolve"]
    status: PageStatus
    body: str
    name: str = ""
    components: tuple[ComponentImpact, ...] = ()
    actor: str | None = None


class StatuspageState(BaseModel):
    """The incident's public side (a field of IncidentState; empty for every incident before it)."""

    page_incident_id: str | None = None  # Statuspage's incident ID, once created
    shortlink: str | None = None
    opening: bool = False  # a confirmed create is queued or in flight
    status: PageStatus | None = None  # the status last queued
    components: tuple[ComponentImpact, ...] = ()
    draft: PublicDraft | None = None
    next_draft: int = 1
    pending: list[PublicOrder] = Field(default_factory=list)

    @property
    def public(self) -> bool:
        """The incident has (or is getting) a public Statuspage incident."""
        return self.page_incident_id is not None or self.opening


class StatuspageRequest(Model):
    """What the activity is given: the order, and the page incident it applies to (update, resolve)."""

    incident_id: int
    order: PublicOrder
    page_incident_id: str | None = None


class StatuspageInfo(Model):
    page_incident_id: str
    shortlink: str | None = None
    status: str


# --- what follows a public incident (workflows.transitions calls these; nothing for any other incident) ----


def follow_stage(sp: StatuspageState, private: bool, stage: Stage, next_key: Callable[[], str]) -> None:
    """A new stage moves a public incident to its status, with the status's neutral line (a stage's context
    stays internal)."""
    status = STAGE_STATUS[stage]
    if private or not sp.public or status == sp.status:
        return
    sp.status = status
    sp.pending.append(PublicOrder(key=next_key(), action="update", status=status, body=NEUTRAL_BODY[status]))


def follow_resolve(sp: StatuspageState, private: bool, next_key: Callable[[], str]) -> None:
    """Resolving resolves a public incident and puts its components back to operational."""
    if private or not sp.public:
        return
    sp.status = "resolved"
    sp.pending.append(
        PublicOrder(
            key=next_key(),
            action="resolve",
            status="resolved",
            body=NEUTRAL_BODY["resolved"],
            components=sp.components,
        )
    )


# --- reading the command ----------------------------------------------------------------------------------


def parse_components(csv: str) -> dict[str, str]:
    """STATUSPAGE_COMPONENTS (`api=8kbf7d35c070,checkout=3m1n2b4v5c6x`) -> {name: component ID}."""
    found: dict[str, str] = {}
    for part in (p.strip() for p in csv.split(",")):
        if not part:
            continue
        name, sep, component_id = part.partition("=")
        name, component_id = name.strip().lower(), component_id.strip()
        if not sep or not name or not component_id or ":" in name or " " in name:
            raise ValueError(f"STATUSPAGE_COMPONENTS entries look like name=component_id, not {part!r}")
        found[name] = component_id
    return found


def split_components(text: str, known: Mapping[str, str]) -> tuple[tuple[ComponentImpact, ...], str]:
    """Leading `name` or `name:status` words naming configured components, and the rest of the text."""
    impacts: list[ComponentImpact] = []
    rest = text
    while parts := rest.split(None, 1):
        name, colon, status = parts[0].partition(":")
        component_id = known.get(name.lower())
        if component_id is None:
            if colon and status.lower() in COMPONENT_STATUSES:
                names = ", ".join(f"`{n}`" for n in known) or "none (set STATUSPAGE_COMPONENTS)"
                raise UsageError(f"{quote(name)} is not a status page component. Components: {names}.")
            break
        chosen = COMPONENT_STATUSES.get(status.lower()) if colon else None
        if colon and chosen is None:
            raise UsageError(
                f"{quote(status)} is not a component status; use degraded, partial, major or maintenance."
            )
        if all(i.component_id != component_id for i in impacts):
            impacts.append(ComponentImpact(name=name.lower(), component_id=component_id, status=chosen))
        rest = parts[1] if len(parts) > 1 else ""
    return tuple(impacts), rest.strip()


def split_name(text: str) -> tuple[str, str]:
    """`Public title | message` -> (title, message); without `|`, the whole text is the title."""
    name, _, body = text.partition("|")
    return " ".join(name.split()), body.strip()


# --- the commands (domain.commands parses `statuspage` and `update --public` with these) ------------------

TEXT_MAX = 3000
_CONFIRM_FLAGS = ("--confirm", "\u2014confirm", "\u2013confirm")  # phones turn `--` into a dash
_PUBLIC_FLAGS = ("--public", "\u2014public", "\u2013public")


class StatuspageOpen(BaseModel):
    """`statuspage [component[:status] ...] <title>[ | message]`: preview a public incident. The ingress
    reads the components (it knows STATUSPAGE_COMPONENTS)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["statuspage"] = "statuspage"
    text: str = Field(min_length=1, max_length=TEXT_MAX)


class StatuspageConfirm(BaseModel):
    """`statuspage --confirm <n>`: publish preview n."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["confirm_statuspage"] = "confirm_statuspage"
    number: int = Field(ge=1, le=100_000)


class PublicUpdate(BaseModel):
    """`update --public <text>`: preview a public update of the status page incident."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["public_update"] = "public_update"
    text: str = Field(min_length=1, max_length=TEXT_MAX)


_SLACK_REF = re.compile(r"<([^<>|\s]*)(?:\|([^<>]*))?>")


def public_text(raw: str) -> str:
    """Text as Slack sent it, for the public page: Slack references read as their words (`<@U1|ada>` ->
    `@ada`, `<#C1|ops>` -> `#ops`, `<!here>` -> nothing, `<https://x|log>` -> `log (https://x)`), then cleaned
    like any command text. A bare `<@U1>` stays `@U1`: the preview shows it, to be written out by name."""

    def words(m: re.Match[str]) -> str:
        target, label = m[1], m[2]
        if target[:1] in ("@", "#"):
            return target[0] + (label or target[1:])
        if target.startswith("!"):
            return label or ""
        return f"{label} ({target})" if label and label != target else target

    return clean_text(_SLACK_REF.sub(words, raw))


def is_public_update(rest: str) -> bool:
    parts = rest.split(None, 1)
    return bool(parts) and parts[0].lower() in _PUBLIC_FLAGS


def parse_public_update(rest: str) -> PublicUpdate:
    parts = rest.split(None, 1)
    text = public_text(parts[1] if len(parts) > 1 else "")
    if not text:
        raise UsageError("`update --public` needs the text to publish.", usage_for("update"))
    if len(text) > TEXT_MAX:
        raise UsageError(f"The update is {len(text)} characters; keep it to {TEXT_MAX}.", usage_for("update"))
    return PublicUpdate(text=text)


PublicCommand = StatuspageOpen | StatuspageConfirm | PublicUpdate


def parse_public(word: str, rest: str) -> PublicCommand:
    """`statuspage ...`, or `update --public ...` (`word` is `update`)."""
    return parse_public_update(rest) if word == "update" else parse_statuspage(rest)


def parse_statuspage(rest: str) -> StatuspageOpen | StatuspageConfirm:
    parts = rest.split()
    if parts and parts[0].lower() in _CONFIRM_FLAGS:
        number = parts[1].lstrip("#") if len(parts) == 2 else ""
        if not number.isdigit() or not 1 <= int(number[:6]) <= 100_000:
            raise UsageError(
                "Confirm with the number the preview showed, e.g. `/incident statuspage --confirm 1`.",
                usage_for("statuspage"),
            )
        return StatuspageConfirm(number=int(number))
    text = public_text(rest)
    if not text:
        raise UsageError("`statuspage` needs the public title.", usage_for("statuspage"))
    if len(text) > TEXT_MAX:
        complaint = f"The text is {len(text)} characters; keep it to {TEXT_MAX}."
        raise UsageError(complaint, usage_for("statuspage"))
    return StatuspageOpen(text=text)
