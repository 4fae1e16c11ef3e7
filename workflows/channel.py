"""The incident channel at the start: created, registered with the directory, set up (invite, overview,
bookmarks) beside the broadcast overviews; or, when Slack refuses it for good, the incident goes on without
one. Runs inside the workflow."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities
    from domain.effects import ChannelRef, ChannelSetup, CreateChannelRequest
    from workflows import attributes, directory_link, transitions
    from workflows.context import IncidentContext
    from workflows.outbox import Outbox
    from workflows.patches import CHANNEL_FAILURE_EXIT, CHANNEL_OVERVIEW_CATCH_UP


class Channel:
    """Opens one incident's channel (IncidentWorkflow.run, before its main loop)."""

    def __init__(self, ctx: IncidentContext, outbox: Outbox) -> None:
        self._ctx = ctx
        self._s = ctx.s
        self._outbox = outbox

    async def open(self) -> None:
        s = self._s
        request = CreateChannelRequest(
            incident_id=s.incident_id, title=s.title, private=s.private, name_template=s.channel_name_template
        )
        ref: ChannelRef | None
        ref, cause = await self._ctx.attempt(SlackActivities.create_channel, request)
        if ref is None:
            # Asked only on failure: a patch marker is stored unencrypted (Temporal writes it, not our codec).
            if workflow.patched(CHANNEL_FAILURE_EXIT):
                self._without_channel(cause or "Slack refused")
                return
            # Runs from before the patch: this note waited for the channel, forever.
            await self._ctx.note(f":warning: warroom could not create channel: {cause}")
            return
        s.channel_id, s.channel_name = ref.id, ref.name
        attributes.sync(s)
        self._ctx.record("channel", f"created #{ref.name}", None)
        invite = (s.declared_by,) if s.declared_by else ()
        setup = ChannelSetup(incident=s.view(), invite=invite, key=transitions.key(s, "overview:channel"))
        setup_version = s.overview_version

        async def set_up() -> None:
            s.channel_overview_ts = await self._ctx.activity(SlackActivities.set_up_channel, setup)

        # The directory, the channel itself and the broadcast overviews do not depend on each other.
        work = [directory_link.register_channel(self._ctx, ref.id), set_up()]
        if self._outbox.missing_overviews():
            work.append(self._outbox.publish_overviews())
        await asyncio.gather(*work)
        if (
            s.overview_version != setup_version
            and s.channel_overview_ts
            and workflow.patched(CHANNEL_OVERVIEW_CATCH_UP)
        ):
            # Something changed while the channel was set up (a call created alongside, a quick stage change):
            # its overview shows the older view, so every overview is edited once more.
            s.overview_published = min(s.overview_published, setup_version)
        s.channel_ready = True

    def _without_channel(self, cause: str) -> None:
        """Slack refused the channel for good: the incident goes on without one (overviews and updates still
        reach the broadcast channels; the CLI still works) and the declarer learns why by DM at once."""
        transitions.without_channel(self._s, cause)
        self._ctx.changed()
