"""An open incident whose command Temporal did not take (its last workflow task failed or timed out on an
overloaded worker: FAILED_PRECONDITION with WorkflowNotReady; or too many updates in flight:
RESOURCE_EXHAUSTED) is never reported "already resolved": the client tries again, then tells the caller it is
busy and to send it again.

The soak on two loaded cores met the first case from a real server; the server's answers are reproduced here
on a stand-in handle, since a dev server does not produce them on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from domain.models import CommandReply, StatusUpdate
from starter.incidents import BUSY_ATTEMPTS, CommandRejected, IncidentBusy, Incidents

NOT_READY = "Unable to perform workflow execution update due to unexpected workflow task failure."


@dataclass
class Handle:
    """A workflow handle whose first `refusals` updates are refused with `status`."""

    status: RPCStatusCode
    refusals: int
    running: bool = True
    calls: list[Any] = field(default_factory=list)

    async def execute_update(self, update: Any, arg: Any, id: str | None = None) -> CommandReply:
        self.calls.append(id)
        if len(self.calls) <= self.refusals:
            raise RPCError(NOT_READY, self.status, b"")
        return CommandReply(text="Update posted.")

    async def describe(self) -> Any:
        status = WorkflowExecutionStatus.RUNNING if self.running else WorkflowExecutionStatus.COMPLETED

        @dataclass
        class Description:
            status: WorkflowExecutionStatus

        return Description(status)


class Client:
    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def get_workflow_handle(self, workflow_id: str) -> Handle:
        return self.handle


def incidents(handle: Handle) -> Incidents:
    return Incidents(Client(handle), task_queue="warroom")  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.RESOURCE_EXHAUSTED])
async def test_a_refused_command_is_tried_again_with_the_same_update_id(status: RPCStatusCode) -> None:
    handle = Handle(status, refusals=BUSY_ATTEMPTS - 1)
    reply = await incidents(handle).post_update(7, StatusUpdate(text="rolled back"), request_id="Ev1")
    assert reply == "Update posted."
    assert handle.calls == ["Ev1"] * BUSY_ATTEMPTS  # one update ID: Temporal applies it at most once


@pytest.mark.parametrize("status", [RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.RESOURCE_EXHAUSTED])
async def test_an_open_incident_that_keeps_refusing_is_busy_not_resolved(status: RPCStatusCode) -> None:
    handle = Handle(status, refusals=99)
    with pytest.raises(IncidentBusy) as busy:
        await incidents(handle).post_update(7, StatusUpdate(text="rolled back"))
    assert str(busy.value) == (
        "INC-7 is busy and did not take this; nothing was changed. Send it again in a moment."
    )
    assert len(handle.calls) == BUSY_ATTEMPTS


async def test_a_finished_incident_is_already_resolved() -> None:
    handle = Handle(RPCStatusCode.FAILED_PRECONDITION, refusals=99, running=False)
    with pytest.raises(CommandRejected, match=r"^INC-7 is already resolved\.$"):
        await incidents(handle).post_update(7, StatusUpdate(text="too late"))
    assert len(handle.calls) == 1
