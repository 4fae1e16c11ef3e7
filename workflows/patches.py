"""`workflow.patched` IDs in use by IncidentWorkflow, and where each is asked: see CONTRIBUTING.md
("Changing workflow code without breaking running incidents"). Never reuse an ID."""

from __future__ import annotations

STAGE_BROADCASTS = "stage-broadcasts"  # IncidentWorkflow._stage_broadcasts
CONTINUE_WITH_QUEUED_WORK = "continue-as-new-with-queued-work"  # IncidentWorkflow._hand_over_queued_work
CHANNEL_OVERVIEW_CATCH_UP = "channel-overview-catch-up"  # channel.Channel.open
ROLE_DMS = "role-dms"  # IncidentWorkflow.assign_commander
TIMELINE_EXPORT = "timeline-export"  # IncidentWorkflow.run, at completion
REACTIONS_IN_ORDER = "reactions-in-order"  # IncidentWorkflow.reaction_added
CHANNEL_FAILURE_EXIT = "channel-failure-exit"  # channel.Channel.open, only when the channel failed
TIMELINE_ARCHIVE = "timeline-archive"  # archive.TimelineArchive.run, only once a timeline is long
DIRECTORY_CLOSE = "directory-close"  # directory_link.leave, at completion
UPDATE_IN_TASK = "update-posted-in-its-task"  # IncidentWorkflow.post_update: posted by a local activity
# Paging.resolve_sources (workflows/paging.py), at completion, only for an incident declared from (or joined
# by) a PagerDuty incident / Opsgenie alert warroom did not page: it resolves them there too
RESOLVE_PAGER_SOURCES = "resolve-pager-sources"
NOT_POSTED_DM = "not-posted-dm"  # outbox.Outbox._announce, only when the incident channel refused an update
