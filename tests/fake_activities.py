"""In-memory stand-ins for every activity the worker runs, with the real names and signatures (checked in
tests/test_soak.py): for tests about workflows at a scale the Slack sandbox would make slow (hundreds of
incidents, a month-long incident). Each succeeds at once with a plausible answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity

from domain.alerts import PagerRef, Responder
from domain.effects import (
    AnnounceRequest,
    CallInfo,
    CallLinkRequest,
    CallRequest,
    ChannelRef,
    ChannelSetup,
    CreateChannelRequest,
    Delivery,
    DirectMessageRequest,
    MessageInfo,
    MessageRequest,
    NoteRequest,
    OverviewRequest,
    ReminderPlan,
    ReminderPlanRequest,
    TicketInfo,
    TicketRequest,
    TimelineArchiveRequest,
    TimelineExportRequest,
)
from domain.models import ReminderInput
from domain.paging import InviteRequest, InviteResult, PageLink, PageRequest
from domain.statuspage import StatuspageInfo, StatuspageRequest


@activity.defn(name="create_channel")
async def create_channel(req: CreateChannelRequest) -> ChannelRef:
    return ChannelRef(id=f"C{req.incident_id:08d}", name=f"inc-{req.incident_id}")


@activity.defn(name="set_up_channel")
async def set_up_channel(req: ChannelSetup) -> str:
    return f"{1_700_000_000 + req.incident.incident_id}.000100"


@activity.defn(name="publish_overview")
async def publish_overview(req: OverviewRequest) -> list[Delivery]:
    return [Delivery(channel_id=t.channel_id, ts=t.ts or "1700000000.000200") for t in req.targets]


@activity.defn(name="announce")
async def announce(req: AnnounceRequest) -> list[Delivery]:
    return [Delivery(channel_id=t.channel_id, ts="1700000000.000300") for t in req.threads]


@activity.defn(name="fetch_message")
async def fetch_message(req: MessageRequest) -> MessageInfo:
    return MessageInfo(text="a message", author="U0RESPONDER", permalink=None)


@activity.defn(name="post_note")
async def post_note(req: NoteRequest) -> str:
    return "1700000000.000400"


@activity.defn(name="link_call")
async def link_call(req: CallLinkRequest) -> str:
    return "Bk0000001"


@activity.defn(name="plan_reminder")
async def plan_reminder(req: ReminderPlanRequest) -> ReminderPlan:
    due = req.now + timedelta(hours=1)
    return ReminderPlan(due=due, local=due.strftime("%a %d %b %H:%M (UTC)"))


@activity.defn(name="deliver_reminder")
async def deliver_reminder(req: ReminderInput) -> str:
    return "1700000000.000500"


@activity.defn(name="send_dm")
async def send_dm(req: DirectMessageRequest) -> str:
    return "1700000000.000600"


@activity.defn(name="publish_timeline")
async def publish_timeline(req: TimelineExportRequest) -> str:
    return "1700000000.000700"


@activity.defn(name="archive_timeline")
async def archive_timeline(req: TimelineArchiveRequest) -> str:
    return f"F{req.incident_id:04d}{req.part:05d}"


@activity.defn(name="create_call")
async def create_call(req: CallRequest) -> CallInfo:
    return CallInfo(provider=req.provider, join_url="https://zoom.example/j/1", meeting_id="1")


@activity.defn(name="create_ticket")
async def create_ticket(req: TicketRequest) -> TicketInfo:
    key = f"OPS-{req.incident.incident_id}"
    return TicketInfo(key=key, url=f"https://jira.example/browse/{key}", summary=req.summary)


@activity.defn(name="publish_statuspage")
async def publish_statuspage(req: StatuspageRequest) -> StatuspageInfo:
    return StatuspageInfo(page_incident_id=req.page_incident_id or "p1", status="investigating")


@activity.defn(name="page")
async def page(req: PageRequest) -> PageLink:
    return PageLink(provider=req.provider, key=req.key, vendor_id="Q1", target=req.target)


@activity.defn(name="responder_email")
async def responder_email(who: Responder) -> str:
    return "oncall@example.com"


@activity.defn(name="resolve_page")
async def resolve_page(link: PageLink) -> bool:
    return True


@activity.defn(name="resolve_source")
async def resolve_source(ref: PagerRef) -> bool:
    return True


@activity.defn(name="invite_by_email")
async def invite_by_email(req: InviteRequest) -> InviteResult:
    return InviteResult(user_id="U0ONCALL")


FAKE_ACTIVITIES: list[Callable[..., Any]] = [
    create_channel,
    set_up_channel,
    publish_overview,
    announce,
    fetch_message,
    post_note,
    link_call,
    plan_reminder,
    deliver_reminder,
    send_dm,
    publish_timeline,
    archive_timeline,
    create_call,
    create_ticket,
    publish_statuspage,
    page,
    responder_email,
    resolve_page,
    resolve_source,
    invite_by_email,
]


def signature(fn: Callable[..., Any]) -> tuple[str | None, list[type] | None, type | None]:
    d = activity._Definition.must_from_callable(fn)
    return d.name, d.arg_types, d.ret_type


def replaced(*fakes: Callable[..., Any]) -> list[Callable[..., Any]]:
    """FAKE_ACTIVITIES with those of the same names replaced by `fakes`."""
    names = {activity._Definition.must_from_callable(f).name for f in fakes}
    kept = [f for f in FAKE_ACTIVITIES if activity._Definition.must_from_callable(f).name not in names]
    return [*kept, *fakes]
