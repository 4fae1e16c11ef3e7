"""Incident IDs, workflow IDs and Slack channel names."""

from __future__ import annotations

import re
import unicodedata

MAX_CHANNEL_NAME = 80
DEFAULT_TASK_QUEUE = "warroom"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_REPEATED_DASH = re.compile(r"-{2,}")
_SCOPED = re.compile(r"(?:(?P<queue>.+)-)?(?P<kind>incident|reminder)-\d{1,9}(?:-\d{1,9})?")
DEFAULT_CHANNEL_TEMPLATE = "inc-{id}-{slug}"

# Workflow IDs carry the deployment's task queue (WARROOM_TASK_QUEUE), so deployments can share a namespace:
#
#   task queue     directory            incident n            reminder r
#   `warroom`      `warroom-directory`  `incident-<n>`        `reminder-<r>`     (the IDs of every version)
#   any other q    `<q>-directory`      `<q>-incident-<n>`    `<q>-reminder-<r>`
#
# Inside a workflow, the deployment is read from the incident's own workflow ID (`task_queue_of`), not from
# the task queue it runs on: an incident started before IDs carried the queue (`incident-<n>` on a queue
# `staging`) keeps talking to the directory it registered with, in replay and after continue-as-new.


def _prefix(task_queue: str) -> str:
    return "" if task_queue == DEFAULT_TASK_QUEUE else f"{task_queue}-"


def directory_workflow_id(task_queue: str) -> str:
    """`warroom-directory` for the default queue, `<q>-directory` for any other."""
    return f"{task_queue}-directory"


def incident_workflow_id(incident_id: int, task_queue: str) -> str:
    """`incident-42` for the default queue, `<q>-incident-42` for any other."""
    return f"{_prefix(task_queue)}incident-{incident_id}"


def reminder_workflow_id(reminder_id: str, task_queue: str) -> str:
    """`reminder-42-1` for the default queue, `<q>-reminder-42-1` for any other."""
    return f"{_prefix(task_queue)}reminder-{reminder_id}"


def task_queue_of(workflow_id: str) -> str | None:
    """The task queue whose IDs an incident's or reminder's workflow ID follows: `staging-incident-42` ->
    `staging`; `incident-42` -> `warroom` (also an incident started before IDs carried the queue, whatever
    queue it runs on); any other ID (a directory's) -> None."""
    m = _SCOPED.fullmatch(workflow_id)
    if not m:
        return None
    return m["queue"] or DEFAULT_TASK_QUEUE


def incident_id_of(workflow_id: str) -> int | None:
    """`incident-42` or `<q>-incident-42` -> 42; any other workflow ID (a directory's, a reminder's): None."""
    m = re.fullmatch(r"(?:.+-)?incident-(\d{1,9})", workflow_id)
    return int(m.group(1)) if m else None


def incidents_query(task_queue: str) -> str:
    """The visibility query for one deployment's incident workflows: its task queue's only, so two deployments
    sharing a namespace never list each other's incidents."""
    return f"WorkflowType = 'IncidentWorkflow' AND TaskQueue = '{task_queue}'"


def parse_incident_ref(text: str) -> int | None:
    """Accepts `42`, `INC-42`, `inc-42` or `incident-42`."""
    m = re.fullmatch(r"(?:inc(?:ident)?-)?(\d{1,9})", text.strip(), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def channel_name(
    incident_id: int, title: str, suffix: int = 1, template: str = DEFAULT_CHANNEL_TEMPLATE
) -> str:
    """`inc-42-checkout-latency-above-2s`: valid for Slack (lowercase, `-`, at most 80 characters).

    `template` (warroom.toml `channels.name_template`, validated there) places `{id}` and `{slug}`.
    suffix > 1 gives the name to try when the first is taken: `inc-42-checkout-2`.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = _NOT_SLUG.sub("-", ascii_title).strip("-")
    fixed = template.format(id=incident_id, slug="")
    tail = f"-{suffix}" if suffix > 1 else ""
    room = MAX_CHANNEL_NAME - len(fixed) - len(tail)
    slug = slug[: max(room, 0)].rstrip("-")
    name = template.format(id=incident_id, slug=slug)
    if not slug:  # no title left: drop the separators that framed it
        name = _REPEATED_DASH.sub("-", name).strip("-_")
    return f"{name}{tail}"[:MAX_CHANNEL_NAME]
