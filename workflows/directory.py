"""IncidentDirectoryWorkflow: hands out short incident IDs and maps incident channels to incidents.

One long-lived workflow (ID `warroom-directory`). Its update handler is synchronous, so two declares can
never get the same ID; channel lookups are queries, consistent as soon as the incident registered.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import ChannelRegistration, DirectoryState

# Updates per run are capped by the server (2,000); move to a fresh run well before that.
ALLOCATIONS_PER_RUN = 500


@workflow.defn
class IncidentDirectoryWorkflow:
    @workflow.init
    def __init__(self, state: DirectoryState) -> None:
        self._state = state
        self._allocations = 0

    @workflow.run
    async def run(self, state: DirectoryState) -> None:
        await workflow.wait_condition(
            lambda: self._allocations >= ALLOCATIONS_PER_RUN or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.update
    def allocate_id(self) -> int:
        """The next incident ID (1, 2, 3, ...)."""
        incident_id = self._state.next_id
        self._state.next_id += 1
        self._allocations += 1
        return incident_id

    @workflow.signal
    def register_channel(self, registration: ChannelRegistration) -> None:
        self._state.channels[registration.channel_id] = registration.incident_id

    @workflow.query
    def incident_for_channel(self, channel_id: str) -> int | None:
        return self._state.channels.get(channel_id)
