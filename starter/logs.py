"""Logs: one structlog setup for every warroom process, so every line has the same shape.

JSON lines in production (`warroom worker`, `warroom web`), readable lines under `warroom dev`. Standard
library logging (the Temporal SDK's `workflow.logger` and `activity.logger`, aiohttp, Bolt) goes through the
same processors. A line about an incident carries `incident_id` and `workflow_id`, whether it comes from the
ingress (bound per request), its workflow or one of its activities (derived from the SDK's workflow ID).
Configured secrets and anything shaped like a Slack token are replaced by `[redacted]` in every value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity
from temporalio import workflow as temporal_workflow

from domain.naming import incident_id_of, incident_workflow_id

HANDLER_NAME = "warroom"
REDACTED = "[redacted]"
# Bot, user, app-level, refresh and configuration tokens.
SLACK_TOKEN = re.compile(r"(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
FIRST_KEYS = ("timestamp", "level", "logger", "event", "incident_id", "workflow_id")

# Fields of the request being served. A mutable dict, so that what a task started by the request binds
# (Bolt and asyncio.wait_for run listeners in their own tasks) still shows on the request's own lines.
_request: ContextVar[dict[str, Any] | None] = ContextVar("warroom_log_request", default=None)


@contextmanager
def request_scope(**fields: Any) -> Iterator[None]:
    """Every line logged while serving one request carries `fields` and whatever `bind` adds later."""
    token = _request.set(dict(fields))
    try:
        yield
    finally:
        _request.reset(token)


def bind(**fields: Any) -> None:
    """Adds fields to the current request's lines; outside a request, to this task's lines."""
    scope = _request.get()
    if scope is not None:
        scope.update(fields)
    else:
        structlog.contextvars.bind_contextvars(**fields)


def bind_incident(incident_id: int, task_queue: str) -> None:
    bind(incident_id=incident_id, workflow_id=incident_workflow_id(incident_id, task_queue))


def _merge_request(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in (_request.get() or {}).items():
        event.setdefault(key, value)
    return event


def _no_formatter_leftovers(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A record another handler formatted first has `message` (the event again) and maybe `asctime`."""
    event.pop("message", None)
    event.pop("asctime", None)
    return event


def _temporal_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Flattens what the SDK's loggers put in `extra`; an incident's workflow ID gives its incident ID."""
    wf = event.pop("temporal_workflow", None)
    act = event.pop("temporal_activity", None)
    event.pop("temporal_log", None)  # Core's raw record: its text is already the message
    event.pop("__temporal_error_identifier", None)
    if isinstance(wf, Mapping):
        event.setdefault("workflow_id", wf.get("workflow_id"))
        event.setdefault("run_id", wf.get("run_id"))
        if "update_name" in wf:
            event.setdefault("update", wf["update_name"])
    if isinstance(act, Mapping):
        event.setdefault("workflow_id", act.get("workflow_id"))
        event.setdefault("run_id", act.get("workflow_run_id"))
        event.setdefault("activity", act.get("activity_type"))
        event.setdefault("attempt", act.get("attempt"))
    workflow_id = event.get("workflow_id")
    if isinstance(workflow_id, str) and event.get("incident_id") is None:
        incident_id = incident_id_of(workflow_id)
        if incident_id is not None:
            event["incident_id"] = incident_id
    return event


class Redactor:
    """Replaces configured secret values and Slack-token-shaped strings, at any depth of any value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join([*(re.escape(v) for v in values), SLACK_TOKEN.pattern]))

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        return {key: self.clean(value) for key, value in event.items()}

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(v) for v in value]
        return self._pattern.sub(REDACTED, str(value))  # e.g. an exception or a model: its text


def _ordered(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    first = {key: event.pop(key) for key in FIRST_KEYS if key in event}
    return {**first, **event}


def configure_logging(
    json: bool = True, level: str = "info", secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    """Sends every log line of this process, structlog's and the standard library's, to `stream` (stderr).

    Calling it again replaces the previous setup (tests do). Returns the handler it installed.
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _merge_request,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _temporal_fields,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # a later configure_logging must reach every module's logger
    )
    out = stream or sys.stderr
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), _no_formatter_leftovers, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            Redactor(secrets),
            _ordered,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The SDK's adapters also put workflow/activity info in `extra`, which becomes fields here.
    temporal_workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    return handler


def remove_logging(handler: logging.Handler) -> None:
    """Undoes configure_logging (tests)."""
    logging.getLogger().removeHandler(handler)
    structlog.reset_defaults()
    temporal_workflow.logger.workflow_info_on_message = True
    activity.logger.activity_info_on_message = True
