"""The markdown table and the targets, from the JSON a run writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODES = ("memory", "file")


def dig(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def pair(d: Any) -> str:
    """`p50 / p99` of a distribution; a p99 beyond the samples we saw land is `lost`."""
    if not isinstance(d, dict) or not d.get("n"):
        return "-"
    p99 = num(d["p99"]) if d["p99"] is not None else f"lost {d['lost']}"
    return f"{num(d['p50'])} / {p99}"


def times_floor(d: Any, floor_p50: Any) -> str:
    if not isinstance(d, dict) or d.get("p50") is None or not floor_p50:
        return ""
    return f"{d['p50'] / floor_p50:.1f}x"


def best_step(ramp: Any) -> dict[str, Any]:
    """The step at the highest rate that held, else the first one."""
    steps = ramp if isinstance(ramp, list) else []
    held = [s for s in steps if s.get("holds")]
    return max(held, key=lambda s: s["rate"]) if held else (steps[0] if steps else {})


@dataclass(frozen=True)
class Row:
    figure: str
    cell: Callable[[dict[str, Any]], str]  # one server's result -> its cell
    ratio: Callable[[dict[str, Any]], str] = lambda r: ""
    target: str = ""


def _latency(section: str, key: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: pair(dig(r, section, key))


def _latency_ratio(section: str, key: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: times_floor(dig(r, section, key), dig(r, "floor", "signal_to_activity_ms", "p50"))


def _rss(r: dict[str, Any]) -> str:
    rss = dig(r, "worker_rss_mb") or {}
    return " / ".join(f"{num(v)} ({k})" for k, v in rss.items())


def most_open(r: dict[str, Any]) -> tuple[int, float] | None:
    """(open incidents, worker RSS MB) at the most open incidents measured."""
    rss = {int(k): v for k, v in (dig(r, "worker_rss_mb") or {}).items() if k.isdigit()}
    return max(rss.items()) if rss else None


def _cpu(r: dict[str, Any]) -> str:
    step = best_step(dig(r, "sustained", "ramp"))
    cpu = step.get("cpu_ms_per_update") or {}
    if not cpu:
        return "-"
    parts = ("worker", "ingress", "server", "bench")
    busy, others = dig(step, "cores_used", "machine_busy_share"), dig(step, "cores_used", "others")
    machine = f", machine {busy:.0%} busy ({others:.1f} cores by others)" if busy is not None else ""
    return " / ".join(num(cpu.get(p), 1) for p in parts) + f" at {num(step.get('rate'))}/s{machine}"


def _fanout(r: dict[str, Any]) -> str:
    f = dig(r, "rate_limited_fanout")
    if not f:
        return "-"
    each = f["burst_each_ms"]
    return (
        f"1 update: {num(f['one_update_ms'])}; {f['burst']} at once: each p50 {num(each['p50'])}, "
        f"all {num(f['burst_all_done_ms'])} ({f['http_429']} x 429)"
    )


def _alert(r: dict[str, Any], source: str = "alertmanager") -> str:
    a = dig(r, source)
    if not a:
        return "-"
    return f"skipped: {a['skipped']}" if "skipped" in a else pair(a["alert_to_overview_ms"])


def _can(r: dict[str, Any]) -> str:
    c = dig(r, "continue_as_new")
    if not c:
        return "-"
    cont = "" if c["continued_as_new"] else " (not reached)"
    size = num(c["bytes"] / 1024)
    measured = f"{num(c['events'])} events, {num(c['updates'])} updates, {size} KiB per run{cont}"
    spaced = dig(r, "latency_1_channel", "history_events_per_update")
    return measured + (f"; ~{4096 / spaced:,.0f} updates per run at human pace" if spaced else "")


def _events_ratio(r: dict[str, Any]) -> str:
    mine, floor = (
        dig(r, "latency_1_channel", "history_events_per_update"),
        dig(r, "floor", "history_events_per_signal"),
    )
    return f"{mine / floor:.1f}x" if mine and floor else ""


def _cpu_ratio(r: dict[str, Any]) -> str:
    mine = best_step(dig(r, "sustained", "ramp")).get("cpu_ms_per_update") or {}
    floor = best_step(dig(r, "floor", "ramp")).get("cpu_ms_per_signal") or {}
    total, floor_total = sum(mine.values()), sum(floor.values())
    return f"{total / floor_total:.1f}x" if total and floor_total else ""


def held_events(r: dict[str, Any]) -> Any:
    """Events per update at the highest sustained rate that held."""
    return best_step(dig(r, "sustained", "ramp")).get("history_events_per_update")


def _events(r: dict[str, Any]) -> str:
    seq = dig(r, "latency_1_channel", "history_events_per_update")
    loaded = dig(r, "history_events_per_update_under_load")
    held = held_events(r)
    at = best_step(dig(r, "sustained", "ramp")).get("rate")
    at_held = f" / {num(held, 1)} at {num(at)}/s (held)" if held is not None else ""
    return f"{num(seq, 1)} one at a time{at_held} / {num(loaded, 1)} over the whole ramp, overload included"


def _cache_miss(r: dict[str, Any]) -> str:
    c = dig(r, "cache_miss")
    if not c:
        return "-"
    ms = c["replay_ms"]
    return f"{num(c['events'])} events: {num(ms['p50'])} / {num(ms['max'])}"


def server_cpu(r: dict[str, Any]) -> tuple[float | None, float | None]:
    """Server CPU ms per update at warroom's best step, and per signal at the floor's."""
    mine = best_step(dig(r, "sustained", "ramp")).get("cpu_ms_per_update") or {}
    floor = best_step(dig(r, "floor", "ramp")).get("cpu_ms_per_signal") or {}
    return mine.get("server"), floor.get("server")


def _rate(r: dict[str, Any]) -> str:
    return num(dig(r, "sustained", "max_per_s"))


def _rate_ratio(r: dict[str, Any]) -> str:
    mine, floor = dig(r, "sustained", "max_per_s"), dig(r, "floor", "max_per_s")
    return f"{mine / floor:.2f}x" if mine is not None and floor else ""


def _ack(r: dict[str, Any], rate: int) -> str:
    failed = dig(r, "ingress_ack", str(rate), "ack_failures")
    return pair(dig(r, "ingress_ack", str(rate), "ack_ms")) + (f" ({failed} not accepted)" if failed else "")


def _ack_row(rate: int) -> Row:
    section = ("ingress_ack", str(rate), "ack_ms")
    return Row(
        f"ingress ack `/incident update` at {rate} req/s, p50 / p99 ms",
        lambda r: _ack(r, rate),
        lambda r: times_floor(dig(r, *section), dig(r, "floor", "signal_to_activity_ms", "p50")),
        "p99 < 50 ms" if rate == 50 else "",
    )


ROWS = [
    Row("floor: signal → its no-op activity ran, p50 / p99 ms", _latency("floor", "signal_to_activity_ms")),
    Row("floor: max signals/s (p99 < 1 s, 100 workflows)", lambda r: num(dig(r, "floor", "max_per_s"))),
    *(_ack_row(rate) for rate in (10, 50, 200)),
    Row(
        "declare → overview in every broadcast channel (1), p50 / p99 ms",
        _latency("latency_1_channel", "declare_to_overview_ms"),
        _latency_ratio("latency_1_channel", "declare_to_overview_ms"),
    ),
    Row(
        "declare → overview in every broadcast channel (10)",
        _latency("latency_10_channels", "declare_to_overview_ms"),
        _latency_ratio("latency_10_channels", "declare_to_overview_ms"),
    ),
    Row(
        "update → reply in every broadcast thread (1)",
        _latency("latency_1_channel", "update_to_broadcast_ms"),
        _latency_ratio("latency_1_channel", "update_to_broadcast_ms"),
        "p50 ≤ 1.0x floor",
    ),
    Row(
        "update → reply (1), the next update sent the moment the previous landed",
        _latency("latency_1_channel", "update_to_broadcast_back_to_back_ms"),
        _latency_ratio("latency_1_channel", "update_to_broadcast_back_to_back_ms"),
    ),
    Row(
        "update → reply in every broadcast thread (10)",
        _latency("latency_10_channels", "update_to_broadcast_ms"),
        _latency_ratio("latency_10_channels", "update_to_broadcast_ms"),
    ),
    Row(
        "reaction → reply in every broadcast thread (1)",
        _latency("latency_1_channel", "reaction_to_broadcast_ms"),
        _latency_ratio("latency_1_channel", "reaction_to_broadcast_ms"),
    ),
    Row(
        "reaction → reply in every broadcast thread (10)",
        _latency("latency_10_channels", "reaction_to_broadcast_ms"),
        _latency_ratio("latency_10_channels", "reaction_to_broadcast_ms"),
    ),
    Row("Alertmanager alert → overview in the broadcast channel", _alert),
    Row("PagerDuty webhook → overview in the broadcast channel", lambda r: _alert(r, "pagerduty")),
    Row("update fan-out to 10 channels at Slack's 1 post/s/channel, ms", _fanout),
    Row(
        "sustained updates/s over 100 open incidents (p99 → broadcast < 1 s)",
        _rate,
        _rate_ratio,
        "≥ 1.0x floor",
    ),
    Row("history events per status update (floor: per signal)", _events, _events_ratio, "≤ 6"),
    Row("continue-as-new (suggested at 4,096 events / 4 MB)", _can),
    Row("cache miss: replaying one whole run of an incident, p50 / max ms", _cache_miss),
    Row("worker RSS MB (open incidents)", _rss, target="1,000 open < 500 MB"),
    Row("CPU ms per update: worker / ingress / server / bench (sandbox + driver)", _cpu, _cpu_ratio),
]


def table(results: dict[str, Any]) -> str:
    servers = results["servers"]
    modes = [m for m in MODES if m in servers]
    head = ["figure", *(f"{m}" for m in modes), "in-memory ÷ floor", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        cells = [row.cell(servers[m]) for m in modes]
        ratio = row.ratio(servers["memory"]) if "memory" in servers else ""
        lines.append("| " + " | ".join([row.figure, *cells, ratio, row.target]) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    ok: bool | None  # None: not measured in this run


def _check(value: Any, test: Callable[[Any], bool], shown: str) -> tuple[str, bool | None]:
    return (shown, test(value)) if value is not None else ("not measured", None)


def targets(results: dict[str, Any]) -> list[Target]:
    r = dig(results, "servers", "memory") or {}
    ack = dig(r, "ingress_ack", "50", "ack_ms", "p99")
    floor = dig(r, "floor", "signal_to_activity_ms", "p50")
    update = dig(r, "latency_1_channel", "update_to_broadcast_ms", "p50")
    rate = dig(r, "sustained", "max_per_s")
    floor_rate = dig(r, "floor", "max_per_s")
    events = dig(r, "latency_1_channel", "history_events_per_update")
    held = held_events(r)
    events = max(events, held) if events is not None and held is not None else events
    server, floor_server = server_cpu(r)
    most = most_open(r)
    rss = most[1] if most and most[0] >= 1000 else None
    found = [
        ("ingress ack p99 < 50 ms at 50 req/s", *_check(ack, lambda v: v < 50, f"{num(ack, 1)} ms")),
        (
            "update → broadcast p50 ≤ 1.0x floor p50 (1 channel)",
            *_check(
                update if floor else None,
                lambda v: v <= floor,
                f"{num(update, 1)} ms vs {num(floor, 1)} ms",
            ),
        ),
        (
            "sustained updates/s ≥ the floor's signals/s (in-memory, same run)",
            *_check(
                rate if floor_rate else None,
                lambda v: v >= floor_rate,
                f"{num(rate)}/s vs {num(floor_rate)}/s",
            ),
        ),
        (
            "server CPU ms per update ≤ the floor's per signal",
            *_check(
                server if floor_server else None,
                lambda v: v <= floor_server,
                f"{num(server, 1)} vs {num(floor_server, 1)} ms",
            ),
        ),
        (
            "<= 6 history events per status update (one at a time, and at the highest rate that held)",
            *_check(events, lambda v: v <= 6, num(events, 1)),
        ),
        (
            "1,000 open incidents in < 500 MB worker RSS",
            *_check(rss, lambda v: v < 500, f"{num(rss)} MB with {most[0] if most else 0:,} open"),
        ),
    ]
    return [Target(name, shown, ok) for name, shown, ok in found]


def verdicts(results: dict[str, Any]) -> str:
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"{marks[t.ok]}  {t.name}: {t.measured}" for t in targets(results))
