"""The bench's side-by-side table (Markdown, so it pastes into the README) and its JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def _rates(result: dict[str, Any]) -> list[float]:
    return [float(rate) for rate in result["plan"]["rates_per_s"]]


def render_table(result: dict[str, Any]) -> str:
    rates = _rates(result)
    head = [
        "pipeline",
        "initial load rows/s",
        *(f"{rate:g}/s p50 / p99 ms" for rate in rates),
        "backlog rows/s",
        "peak RSS MiB",
        "note",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for peer in result["peers"]:
        if peer["status"] != "measured":
            cells = [peer["name"], *["-"] * (len(head) - 2), f"{peer['status']}: {peer.get('reason', '')}"]
            lines.append("| " + " | ".join(cells) + " |")
            continue
        by_rate = {float(f["rate_per_s"]): f for f in peer.get("freshness", [])}
        fresh = []
        for rate in rates:
            f = by_rate.get(rate)
            if f is None or "skipped" in f:
                fresh.append("-" if f is None else "not run")
                continue
            s = f["commit_to_visible_s"]
            late = f" ({f['timeouts']} > {f['probe_timeout_s']:g}s)" if f["timeouts"] else ""
            fresh.append(f"{_ms(s['p50'])} / {_ms(s['p99'])}{late}")
        load = peer.get("initial_load", {})
        backlog = peer.get("backlog") or {}
        peaks = [v for v in (load.get("peak_rss_bytes"), backlog.get("sink_peak_rss_bytes")) if v is not None]
        note = f"{load.get('target_rows', 0):,} rows in {load.get('seconds', 0)}s"
        if backlog.get("not_run"):
            note += f"; backlog not measured: {backlog['not_run']}"
        cells = [
            peer["name"],
            _rate(load.get("rows_per_s")),
            *fresh,
            _rate(backlog.get("calendar_rows_per_s")),
            _mib(max(peaks) if peaks else None),
            note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for peer in result["peers"]:
        for name, ceiling in ((peer.get("backlog") or {}).get("ceilings") or {}).items():
            label = {"server_insert_select": "raw ceiling: server INSERT…SELECT upsert",
                     "client_copy_upsert": "raw ceiling: client COPY + upsert"}.get(name, name)  # fmt: skip
            cells = [label, "-", *["-"] * len(rates), _rate(ceiling.get("rows_per_s")), "-"]
            cells.append(f"{ceiling['rows']:,} rows; cdcsync/ceiling = {ceiling.get('sink_ratio', '-')}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_freshness(result: dict[str, Any]) -> str:
    """Every peer's commit-to-visible per rate: the load achieved, p50/p95/p99/max in ms, probes, drain."""
    head = ["pipeline", "rate /s", "achieved /s", "p50", "p95", "p99", "max", "probes (timed out)", "drained in ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for peer in result["peers"]:
        for f in peer.get("freshness", []):
            if "skipped" in f:
                lines.append(f"| {peer['name']} | {f['rate_per_s']:g} | {f['skipped']} |" + " |" * (len(head) - 3))
                continue
            s = f["commit_to_visible_s"]
            cells = [peer["name"], f"{f['rate_per_s']:g}", f"{f['achieved_rate_per_s']:,}"]
            cells += [_ms(s[k]) for k in ("p50", "p95", "p99", "max")]
            cells += [f"{f['probes']} ({f['timeouts']})", _ms(f["drain_s"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_stages(result: dict[str, Any]) -> str:
    """cdcsync's per-stage breakdown, p50 (p99) in ms, per rate."""
    head = ["rate", "source commit → Kafka append", "append → sink receive", "receive → calendar commit (p50)",
            "append → calendar commit", "calendar commit → probe sees it"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for peer in result["peers"]:
        for f in peer.get("freshness", []):
            stages = f.get("stages") if "skipped" not in f else None
            if not stages:
                continue

            def pair(values: dict[str, float | None]) -> str:
                return f"{_ms(values.get('p50'))} ({_ms(values.get('p99'))})"

            lines.append(
                "| "
                + " | ".join(
                    [
                        f"{f['rate_per_s']:g}/s",
                        pair(stages["source_commit_to_kafka_append_s"]),
                        pair(stages["kafka_append_to_sink_receive_s"]),
                        _ms(stages["sink_receive_to_calendar_commit_p50_s"]),
                        pair(stages["kafka_append_to_calendar_commit_s"]),
                        pair(stages["calendar_commit_to_visible_s"]),
                    ]
                )
                + " |"
            )
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
