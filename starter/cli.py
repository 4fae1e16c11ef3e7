"""The `warroom` command line: run the processes, act on incidents, and talk to the local Slack sandbox."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from activities.slack_mrkdwn import to_plain
from domain.alerts import GenericAlert, from_generic
from domain.commands import UsageError
from domain.encryption import codec_for
from domain.models import Resolution, StageChange, StatusUpdate
from domain.naming import parse_incident_ref
from domain.settings import Settings
from domain.usage import closest
from domain.vocab import Severity, Stage, Status, incident_label
from starter.incidents import IncidentError, Incidents, IncidentSummary
from starter.logs import configure_logging
from starter.report import collect, parse_window, render_json, render_table
from starter.sandbox_cli import DEFAULT_USER, FORMS_HELP

DEFAULT_SANDBOX = "http://127.0.0.1:3001"
# Long-lived processes whose logs a collector reads: JSON lines by default.
SERVICES = ("worker", "web", "codec-server")

log = structlog.get_logger("warroom.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warroom", description="Slack incident response on Temporal.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = sub.add_parser(
        "dev", help="run everything locally (Temporal dev server, worker, web, Slack sandbox)"
    )
    dev.add_argument(
        "--state-dir",
        default=".warroom",
        help="where Temporal's SQLite file (temporal.db) and the Slack sandbox's workspace "
        "(slack-sandbox.json) are kept, so a restart resumes where it stopped (default: .warroom)",
    )
    dev.add_argument(
        "--fresh", action="store_true", help="forget both (every incident and sandbox message) and start over"
    )
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--sandbox-port", type=int, default=3001)
    sub.add_parser("worker", help="run a worker (workflows and activities)")
    sub.add_parser("web", help="run the web ingress (Slack events, alerts, health, metrics)")
    codec = sub.add_parser(
        "codec-server",
        help="serve POST /encode and /decode so the Temporal UI shows encrypted payloads "
        "(needs WARROOM_ENCRYPTION_KEY)",
    )
    codec.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    codec.add_argument("--port", type=int, default=None, help="port (default: WARROOM_CODEC_PORT, 8888)")

    declare = sub.add_parser("declare", help="declare an incident")
    declare.add_argument("title")
    declare.add_argument("--severity", choices=[s.value for s in Severity], default=None)
    declare.add_argument("--private", action="store_true")
    declare.add_argument(
        "--broadcast", help="comma-separated channel IDs (default: WARROOM_BROADCAST_CHANNELS)"
    )
    declare.add_argument(
        "--dedup-key", help="join the open incident declared with this key instead of declaring another"
    )
    stage = sub.add_parser("stage", help="change an incident's stage")
    stage.add_argument("incident", help="42 or INC-42")
    stage.add_argument("stage", choices=[s.value for s in Stage])
    stage.add_argument("context", nargs="?", default="")
    update = sub.add_parser("update", help="post a status update")
    update.add_argument("incident")
    update.add_argument("text")
    resolve = sub.add_parser("resolve", help="resolve an incident")
    resolve.add_argument("incident")
    resolve.add_argument("summary", nargs="?", default="")
    status = sub.add_parser("status", help="show an incident's state as JSON")
    status.add_argument("incident")
    ls = sub.add_parser("list", help="list incidents (Temporal visibility)")
    ls.add_argument("--stage", choices=[s.value for s in Stage])
    ls.add_argument("--severity", choices=[s.value for s in Severity])
    ls.add_argument("--status", choices=[s.value for s in Status])
    report = sub.add_parser(
        "report",
        help="incidents declared in a window: counts by severity, median and p90 time to "
        "identified, mitigated and resolved",
    )
    report.add_argument(
        "--since",
        type=_window,
        default="30d",
        metavar="WINDOW",
        help="how far back: 90m, 12h, 30d or 2w (default: 30d)",
    )
    report.add_argument("--json", action="store_true", help="JSON (durations in seconds) instead of a table")

    slack = sub.add_parser(
        "slack",
        help="drive the local Slack sandbox: send a command, say, react, show messages and DMs",
        description="Be a Slack user against the sandbox `warroom dev` runs when SLACK_BOT_TOKEN is unset.",
        epilog="forms of WORDS:\n" + FORMS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    slack.add_argument("words", nargs="+", metavar="WORDS", help="one of the forms below")
    slack.add_argument(
        "--user", default=DEFAULT_USER, help=f"the sandbox user who acts (default: {DEFAULT_USER})"
    )
    slack.add_argument(
        "--channel",
        default=None,
        help="where a slash command runs: a channel ID, #name or name (default: #general)",
    )
    slack.add_argument(
        "--sandbox",
        default=os.environ.get("WARROOM_SANDBOX_URL", DEFAULT_SANDBOX),
        metavar="URL",
        help="the sandbox's URL, as `warroom dev` prints it "
        f"(default: WARROOM_SANDBOX_URL or {DEFAULT_SANDBOX})",
    )
    return p


def _window(text: str) -> timedelta:
    """`--since`: a bad window is a usage error (exit 2) that shows the accepted forms."""
    try:
        return parse_window(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _incident(ref: str) -> int:
    incident_id = parse_incident_ref(ref)
    if incident_id is None:
        raise UsageError(f"`{ref}` is not an incident; use 42 or INC-42.", "warroom status INC-42")
    return incident_id


async def _with_incidents(settings: Settings, work: Callable[[Incidents], Awaitable[Any]]) -> Any:
    import worker

    client = await worker.connect(settings)
    return await work(Incidents.from_settings(client, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "dev":
            from starter.dev import DevOptions, run_dev

            opts = DevOptions(
                Path(args.state_dir), args.temporal_port, args.ui_port, args.sandbox_port, fresh=args.fresh
            )
            await run_dev(settings, opts)
        case "worker":
            import worker

            await worker.run_worker(settings)
        case "web":
            await _run_web(settings)
        case "codec-server":
            await _run_codec_server(settings, args.host, args.port)
        case "slack":
            from starter.sandbox_cli import run_slack

            return await run_slack(args.words, args.user, args.channel, args.sandbox)
        case _:
            return await _run_incident_command(args, settings)
    return 0


async def _run_web(settings: Settings) -> None:
    import worker
    from starter.serve import SlackMode, serve_forever, start_web

    SlackMode.from_settings(settings)  # a missing signing secret stops here, before connecting to Temporal
    client = await worker.connect(settings, worker.telemetry())
    web = await start_web(settings, client, worker.slack_client(settings))
    log.info("web_listening", port=web.port, routes=web.mode.routes)
    try:
        await serve_forever()
    finally:
        await web.stop()


async def _run_codec_server(settings: Settings, host: str, port: int | None) -> None:
    from starter.codec_server import start_codec_server
    from starter.serve import serve_forever

    server = await start_codec_server(settings, host, port)
    try:
        await serve_forever()
    finally:
        await server.stop()


async def _run_incident_command(args: argparse.Namespace, settings: Settings) -> int:
    async def work(inc: Incidents) -> Any:
        match args.command:
            case "declare":
                channels = (
                    tuple(c.strip() for c in args.broadcast.split(",") if c.strip())
                    if args.broadcast
                    else None
                )
                severity = Severity(args.severity) if args.severity else settings.default_severity
                if args.dedup_key:
                    return await _declare_deduplicated(inc, args, severity, settings)
                incident_id = await inc.declare(
                    args.title, severity, private=args.private, source="cli", broadcast_channels=channels
                )
                return f"declared {incident_label(incident_id)}"
            case "stage":
                return to_plain(
                    await inc.change_stage(
                        _incident(args.incident), StageChange(stage=Stage(args.stage), context=args.context)
                    )
                )
            case "update":
                return to_plain(await inc.post_update(_incident(args.incident), StatusUpdate(text=args.text)))
            case "resolve":
                return to_plain(await inc.resolve(_incident(args.incident), Resolution(summary=args.summary)))
            case "status":
                state = await inc.state(_incident(args.incident))
                return json.dumps(state.model_dump(mode="json", exclude={"outbox"}), indent=2)
            case "list":
                found = await inc.list(
                    Stage(args.stage) if args.stage else None,
                    Severity(args.severity) if args.severity else None,
                    Status(args.status) if args.status else None,
                )
                return list_table(found)
            case "report":
                summary = await collect(inc.client, inc.task_queue, datetime.now(UTC) - args.since)
                return render_json(summary) if args.json else render_table(summary)
        return ""

    print(await _with_incidents(settings, work))
    return 0


LIST_COLUMNS = ("ID", "SEVERITY", "STAGE", "STATUS", "TITLE")


def list_table(found: list[IncidentSummary]) -> str:
    """`warroom list`: a header row, then one incident a line, columns as wide as their widest cell."""
    if not found:
        return "no incidents match"
    rows = [LIST_COLUMNS] + [
        (incident_label(i.incident_id), i.severity, i.stage, i.status, i.title) for i in found
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(len(LIST_COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


async def _until_signalled(work: Awaitable[int]) -> int:
    """Ctrl-C and SIGTERM (docker stop, systemd) cancel the work so every `finally` cleans up."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        log.info("stopped")
        return 0


async def _declare_deduplicated(
    inc: Incidents, args: argparse.Namespace, severity: Severity, settings: Settings
) -> str:
    """Same semantics as an alert's dedup key: joins the open incident that has it."""
    alert = GenericAlert(title=args.title, severity=severity.value, dedup_key=args.dedup_key, source="cli")
    outcome = await inc.handle_alert(from_generic(alert, settings.alert_severity_map))
    return f"{outcome.action} {incident_label(outcome.incident_id or 0)}"


def _configure_logs(command: str, settings: Settings) -> None:
    """JSON lines for `warroom worker` and `warroom web`, readable lines for everything run by hand;
    WARROOM_LOG_FORMAT overrides both."""
    log_format = settings.log_format or ("json" if command in SERVICES else "console")
    configure_logging(json=log_format == "json", level=settings.log_level, secrets=settings.secrets())


def unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """One line for a first word that is no subcommand (argparse suggests only from Python 3.12 on, and
    lists every choice); None when the first word is a subcommand or an option."""
    if not argv or argv[0].startswith("-"):
        return None
    known = [name for a in parser._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices]
    typed = argv[0]
    if typed in known:
        return None
    near = closest(typed, known)
    if near is not None:
        how = f"'warroom {near} --help' shows how"
        return f"warroom: unknown command '{typed}'. Did you mean 'warroom {near}'? {how}."
    return f"warroom: unknown command '{typed}'; 'warroom --help' lists the commands."


def main(argv: list[str] | None = None) -> None:
    """Entry point. Ends with os._exit after flushing: the Temporal SDK can crash at interpreter exit."""
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    wrong = unknown_command(parser, argv)
    if wrong is not None:
        print(wrong, file=sys.stderr)
        sys.exit(2)
    args = parser.parse_args(argv)
    code = 1
    try:
        settings = Settings()
        # Fail early on a malformed setting, warroom.toml or WARROOM_ENCRYPTION_KEY.
        _ = settings.broadcast_channels, settings.config, codec_for(settings), settings.statuspage_components
        _configure_logs(args.command, settings)
        code = asyncio.run(_until_signalled(_run(args, settings)))
    except KeyboardInterrupt:
        code = 130
    except IncidentError as err:  # written for Slack, as the workflow answers a slash command
        print(f"warroom: {to_plain(str(err))}", file=sys.stderr)
        code = 2
    except (UsageError, ValueError, ValidationError, RuntimeError) as err:
        print(f"warroom: {err}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
