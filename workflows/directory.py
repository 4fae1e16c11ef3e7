"""IncidentDirectoryWorkflow: hands out short incident IDs, maps incident channels and alert dedup keys to
incidents.

One long-lived workflow per deployment (ID `<task queue>-directory`: `warroom-directory` for the default
queue, `domain.naming.directory_workflow_id`). Its update handlers are synchronous, so two declares can never
get the same ID and fifty identical alerts at once claim one incident; lookups are queries. It keeps only what
open incidents need: an incident that completes signals `closed`, and its channel and alert key are dropped.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import (
        ChannelRegistration,
        DedupClaim,
        DedupGrant,
        DedupRelease,
        DirectoryState,
        IncidentClosed,
    )
    from domain.paging import KeyLink
    from domain.storm import storming
    from workflows.observe import show_directory

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
        show_directory(self._state)
        await workflow.wait_condition(
            lambda: self._allocations >= ALLOCATIONS_PER_RUN or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.logger.info("directory continuing as new", extra={"next_incident_id": self._state.next_id})
        workflow.continue_as_new(self._state)

    @workflow.update
    def allocate_id(self) -> int:
        """The next incident ID (1, 2, 3, ...)."""
        return self._next_id()

    def _next_id(self) -> int:
        incident_id = self._state.next_id
        self._state.next_id += 1
        self._allocations += 1
        show_directory(self._state)
        return incident_id

    @workflow.update
    def claim(self, claim: DedupClaim) -> DedupGrant:
        """The open incident for this alert key, or a new incident ID reserved for it. With a storm limit
        (domain.storm), a key arriving when the last `cap` new keys all came within the window joins the
        alert storm incident instead (whose ID is reserved when the storm begins)."""
        st = self._state
        existing = st.open_keys.get(claim.key)
        if existing is not None:
            return DedupGrant(incident_id=existing, created=False, storm=existing == st.storm_incident)
        if claim.storm is not None:
            storm, st.arrivals = storming(st.arrivals, workflow.now(), claim.storm)
            if storm:
                created = st.storm_incident is None
                if st.storm_incident is None:
                    st.storm_incident = self._next_id()
                st.open_keys[claim.key] = st.storm_incident
                show_directory(st)
                return DedupGrant(incident_id=st.storm_incident, created=created, storm=True)
        incident_id = self._next_id()
        st.open_keys[claim.key] = incident_id
        show_directory(st)
        return DedupGrant(incident_id=incident_id, created=True)

    @workflow.update
    def split(self, key: str) -> int:
        """`/incident split`: the alert key gets an incident of its own (a new ID), leaving the storm."""
        incident_id = self._next_id()
        self._state.open_keys[key] = incident_id
        show_directory(self._state)
        return incident_id

    @workflow.signal
    def release(self, release: DedupRelease) -> None:
        """The incident resolved: the same key firing again declares a new incident."""
        if self._state.open_keys.get(release.key) == release.incident_id:
            del self._state.open_keys[release.key]
            show_directory(self._state)

    @workflow.signal
    def link_key(self, link: KeyLink) -> None:
        """`/incident page`: the pager's webhooks for the page join the incident that paged (a new signal:
        no recorded history sends it). A key already taken keeps its incident."""
        if link.key not in self._state.open_keys:
            self._state.open_keys[link.key] = link.incident_id
            show_directory(self._state)

    @workflow.query
    def incident_for_key(self, key: str) -> int | None:
        return self._state.open_keys.get(key)

    @workflow.signal
    def register_channel(self, registration: ChannelRegistration) -> None:
        self._state.channels[registration.channel_id] = registration.incident_id
        show_directory(self._state)

    @workflow.signal
    def closed(self, closed: IncidentClosed) -> None:
        """The incident completed (patch `directory-close`): its channel and any alert key still pointing at
        it are forgotten, so the directory holds open incidents only. The incident's own state and Temporal's
        visibility still have them."""
        st = self._state
        if closed.channel_id is not None and st.channels.get(closed.channel_id) == closed.incident_id:
            del st.channels[closed.channel_id]
        for key in [k for k, incident_id in st.open_keys.items() if incident_id == closed.incident_id]:
            del st.open_keys[key]
        if st.storm_incident == closed.incident_id:  # the storm is over: the next storm gets a new one
            st.storm_incident = None
        st.closed += 1
        show_directory(st)

    @workflow.query
    def incident_for_channel(self, channel_id: str) -> int | None:
        return self._state.channels.get(channel_id)
