"""What IncidentWorkflow and its helpers (outbox, channel, integrations, nudges) share: the state, the
timeline with its log lines, and running an activity with retries (a failure is noted, never raised).

Runs inside the workflow: it calls `workflow.*` APIs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities
    from domain.effects import NoteRequest
    from domain.models import IncidentState
    from workflows import attributes, observe, transitions

SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
SLACK_TIMEOUT = timedelta(seconds=30)
# Slack activities heartbeat before every call (activities.slack_base): a worker that dies mid-attempt is
# noticed after this, not after the whole start-to-close timeout.
SLACK_HEARTBEAT = timedelta(seconds=15)
# Zoom, Meet, Jira: minutes of retries with backoff (Retry-After honoured), then one note in the channel.
VENDOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=7,
)
VENDOR_TIMEOUT = timedelta(seconds=30)


def reject(message: str) -> NoReturn:
    """Rejects an update in its validator: the caller sees `message`, history records nothing."""
    raise ApplicationError(message, type="UsageError", non_retryable=True)


class IncidentContext:
    """One incident's state and the effects every part of its workflow uses."""

    def __init__(self, s: IncidentState) -> None:
        self.s = s
        self.opening = True  # the channel is being created; notes wait for it
        self._logged = s.events_recorded  # events already logged (a continued run logged its own)

    # --- the timeline, the log and the Temporal UI -----------------------------------------------------

    def record(
        self, kind: str, text: str, actor: str | None, link: str | None = None, quoted: bool = False
    ) -> None:
        transitions.record(self.s, workflow.now(), kind, text, actor, link=link, quoted=quoted)
        self.report()

    def report(self) -> None:
        """Logs the timeline events not logged yet and refreshes the Temporal UI's current details: call it
        after every transition."""
        s = self.s
        new = min(s.events_recorded - self._logged, len(s.timeline))
        for event in s.timeline[len(s.timeline) - new :] if new > 0 else ():
            observe.log_event(s, event.kind, event.text)
        self._logged = s.events_recorded
        observe.show_incident(self.s)

    def changed(self) -> None:
        """After a transition that changed the overview: report(), then upsert the search attributes that
        changed (each upsert is a command in history)."""
        self.report()
        attributes.sync(self.s)

    # --- activities ------------------------------------------------------------------------------------

    async def note(self, text: str) -> None:
        if self.s.channel_id is None:  # a vendor failed before the channel exists: wait for it
            await workflow.wait_condition(lambda: not self.opening)
        if self.s.channel_id:
            note = NoteRequest(channel_id=self.s.channel_id, text=text, key=transitions.key(self.s, "note"))
            await self.activity(SlackActivities.post_note, note, notify=False)

    async def activity(  # type: ignore[no-untyped-def]
        self, fn, arg, *, notify: bool = True, what: str | None = None, hint: str = "", vendor: bool = False
    ):
        """Runs an activity; after its last retry the failure is noted (once, in the channel), never raised.

        `what` names the action in the note (`create the Zoom call`), `hint` says what to do next.
        """
        result, cause = await self.attempt(fn, arg, vendor=vendor)
        if cause is not None and notify:
            doing = what or fn.__name__.replace("_", " ")
            await self.note(f":warning: warroom could not {doing}: {cause}{hint}")
        return result

    async def attempt(self, fn, arg, *, vendor: bool = False):  # type: ignore[no-untyped-def]
        """Runs an activity with its retries: (result, None), or (None, why) after the last retry, recorded
        as a problem in the timeline."""
        try:
            result = await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=VENDOR_TIMEOUT if vendor else SLACK_TIMEOUT,
                heartbeat_timeout=None if vendor else SLACK_HEARTBEAT,
                retry_policy=VENDOR_RETRY if vendor else SLACK_RETRY,
            )
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
            self.record("problem", f"{fn.__name__} failed: {cause}", None)
            return None, cause
        return result, None
