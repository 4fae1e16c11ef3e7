"""What the benchmark's users do: declare, post updates, react, fire alerts. Each action returns when its
request was answered; `Stack.posts` tells when its effect reached the broadcast channels."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.slack import USER, Ack, ChannelRef
from bench.stack import Stack
from domain.naming import channel_name

WAIT = 15.0  # seconds any one effect may take before it counts as lost
_DECLARED = re.compile(r"INC-(\d+)")


@dataclass(frozen=True)
class Incident:
    id: int
    channel: ChannelRef
    broadcast: tuple[str, ...]


@dataclass(frozen=True)
class Sent:
    mark: str
    at: float  # perf_counter when the request left
    ack: Ack

    def ms_until(self, done: float | None) -> float:
        return (done - self.at) * 1000 if done is not None else float("inf")


async def declare(stack: Stack, channels: int) -> tuple[Sent, int | None]:
    """`/incident declare` from #general through the ingress configured with `channels` broadcast channels."""
    mark = stack.marks.next()
    at = time.perf_counter()
    ack = await stack.ingress[channels].command(f"declare sev3 bench {mark}", stack.general)
    found = _DECLARED.search(ack.text) if ack.status == 200 else None
    if found:
        stack.open_incidents += 1
    return Sent(mark, at, ack), int(found.group(1)) if found else None


async def incident_after(stack: Stack, sent: Sent, incident_id: int, channels: int) -> Incident | None:
    """The declared incident once its channel exists (its name follows from ID and title)."""
    name = channel_name(incident_id, f"bench {sent.mark}")
    deadline = time.perf_counter() + WAIT
    while time.perf_counter() < deadline:
        channel = stack.sandbox.state.channel_by_name(name)
        if channel is not None:
            ref = ChannelRef(channel.id, channel.name)
            return Incident(incident_id, ref, tuple(stack.channels(channels)))
        await asyncio.sleep(0.01)
    return None


async def update(stack: Stack, incident: Incident, ingress: int = 1) -> Sent:
    mark = stack.marks.next()
    at = time.perf_counter()
    ack = await stack.ingress[ingress].command(f"update bench update {mark}", incident.channel)
    return Sent(mark, at, ack)


async def react(stack: Stack, incident: Incident) -> Sent:
    """Someone posts in the incident channel and another reacts with :mega:; Slack delivers the event."""
    mark = stack.marks.next()
    state = stack.sandbox.state
    message = state.post(state.channel(incident.channel.id), user=USER, text=f"p99 back to normal {mark}")
    at = time.perf_counter()
    result = await stack.sandbox.platform.react(USER, incident.channel.id, message.ts, "mega")
    status = int(result.get("status") or 0)
    return Sent(mark, at, Ack((time.perf_counter() - at) * 1000, status, str(result.get("body"))))


def alertmanager_payload(mark: str) -> dict[str, Any]:
    """A firing Alertmanager v4 webhook with one alert; its own group key, so it declares an incident."""
    labels = {"alertname": "BenchAlert", "severity": "critical", "bench": mark}
    now = datetime.now(UTC).isoformat()
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"bench {mark}"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": mark,
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{bench="{mark}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"bench": mark},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"bench {mark}"},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }


def pagerduty_payload(mark: str) -> dict[str, Any]:
    """A PagerDuty V3 `incident.triggered` webhook for a new PagerDuty incident, so it declares one."""
    now = datetime.now(UTC).isoformat()
    service = {"id": "PBENCH1", "type": "service_reference", "summary": "Bench service"}
    incident = {"id": f"P{mark.upper()}", "type": "incident", "title": f"bench {mark}", "number": 1}
    incident |= {"status": "triggered", "urgency": "high", "service": service, "html_url": ""}
    event = {"id": f"E{mark}", "event_type": "incident.triggered", "resource_type": "incident"}
    return {"event": {**event, "occurred_at": now, "agent": None, "data": incident}}


async def alert(stack: Stack, source: str = "alertmanager") -> Sent:
    """A firing Alertmanager group (or PagerDuty incident) never seen before: it declares an incident."""
    mark = stack.marks.next()
    at = time.perf_counter()
    ingress = stack.ingress[1]
    if source == "pagerduty":
        ack = await ingress.pagerduty(pagerduty_payload(mark))
    else:
        ack = await ingress.alertmanager(alertmanager_payload(mark))
    if ack.status == 202:
        stack.open_incidents += 1
    return Sent(mark, at, ack)


async def landed(stack: Stack, sent: Sent, channels: tuple[str, ...] | list[str]) -> float:
    """Milliseconds from the request until its message was in every one of `channels` (inf if never)."""
    await stack.posts.wait([sent.mark], lambda _: channels, WAIT)
    return sent.ms_until(stack.posts.done_at(sent.mark, channels))
