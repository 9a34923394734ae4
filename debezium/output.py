"""How connector commands show things: tables for people, sorted JSON/YAML for scripts, secrets masked.

Everything here is pure: values in, text out.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from cdcsync.debezium.connector_state import ConnectorInfo, ConnectorState

MASK = "******"
FORMATS = ("table", "json", "yaml")
# Keys whose literal values are secrets: passwords, tokens, JAAS configs, private key material.
# (Not every "key": key.converter is not a secret.)
_SECRET_KEY = re.compile(
    r"password|passwd|secret|token|credential|jaas|private[._-]?key|api[._-]?key|access[._-]?key|"
    r"sslkey|ssl\.key|keystore",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")  # a config provider reference, e.g. ${env:VAR} or ${file:/p:k}
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<password>[^@/\s]+)@")


def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def mask_value(key: str, value: str) -> str:
    """A secret key's literal value becomes ``******`` (a ``${...}`` placeholder is shown: it is no secret);
    a password inside a URL is masked in any value."""
    if is_secret_key(key) and _PLACEHOLDER.fullmatch(value.strip()) is None:
        return MASK
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{MASK}@", value)


def mask_config(config: Mapping[str, str]) -> dict[str, str]:
    return {key: mask_value(key, value) for key, value in sorted(config.items())}


def render(document: Any, fmt: str) -> str:
    """``document`` as stable text: keys sorted, so the same state always prints the same."""
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True).rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
    return "\n".join(lines)


def trace_summary(trace: str) -> str:
    """A Java stack trace in one line: its first line, and the root cause when there is one."""
    lines = trace.strip().splitlines()
    if not lines:
        return ""
    causes = [line.strip() for line in lines if line.startswith("Caused by:")]
    return f"{lines[0]} ({causes[-1]})" if causes else lines[0]


def status_rows(states: Iterable[ConnectorState]) -> list[tuple[str, str, str, str, str]]:
    """One row per task (one for a connector without tasks): connector, state, task, task state, worker."""
    rows: list[tuple[str, str, str, str, str]] = []
    for state in sorted(states, key=lambda s: s.name):
        if not state.tasks:
            rows.append((state.name, state.state, "-", "-", state.worker_id))
        for task in state.tasks:
            rows.append((state.name, state.state, str(task.id), task.state, task.worker_id))
    return rows


def tasks_summary(state: ConnectorState) -> str:
    """``1/1`` when every task runs, else the count running and the other states: ``0/2 (1 FAILED, 1 PAUSED)``."""
    running = sum(1 for t in state.tasks if t.state == "RUNNING")
    others = Counter(t.state for t in state.tasks if t.state != "RUNNING")
    detail = ", ".join(f"{n} {s}" for s, n in sorted(others.items()))
    return f"{running}/{len(state.tasks)}" + (f" ({detail})" if detail else "")


GET_HEADER = ("NAME", "TYPE", "STATE", "TASKS")


def get_rows(infos: Iterable[ConnectorInfo]) -> list[tuple[str, str, str, str]]:
    return [
        (i.name, i.status.type, i.status.state, tasks_summary(i.status)) for i in sorted(infos, key=lambda i: i.name)
    ]


def connector_document(info: ConnectorInfo, topics: Sequence[str] | None = None) -> dict[str, Any]:
    """One connector for ``-o json|yaml``: status, tasks (trace summarized), masked config, and topics if known."""
    state = info.status
    document: dict[str, Any] = {
        "name": info.name,
        "type": state.type,
        "state": state.state,
        "worker": state.worker_id,
        "tasks": [
            {"id": t.id, "state": t.state, "worker": t.worker_id, "trace": trace_summary(t.trace) if t.trace else None}
            for t in sorted(state.tasks, key=lambda t: t.id)
        ],
        "config": mask_config(info.config),
    }
    if state.trace:
        document["trace"] = trace_summary(state.trace)
    if topics is not None:
        document["topics"] = sorted(topics)
    return document


def describe_lines(info: ConnectorInfo, topics: Sequence[str]) -> list[str]:
    """``describe NAME`` for people: the connector, its tasks, topics and masked config."""
    state = info.status
    lines = [
        f"Name:    {info.name}",
        f"Type:    {state.type}",
        f"Class:   {info.config.get('connector.class', '-')}",
        f"State:   {state.state}",
        f"Worker:  {state.worker_id or '-'}",
    ]
    if state.trace:
        lines.append(f"Error:   {trace_summary(state.trace)}")
    lines.append("Tasks:")
    task_rows = [
        (str(t.id), t.state, t.worker_id or "-", trace_summary(t.trace) if t.trace else "")
        for t in sorted(state.tasks, key=lambda t: t.id)
    ]
    lines += _indented(format_table(("ID", "STATE", "WORKER", "ERROR"), task_rows)) if task_rows else ["  none"]
    lines.append("Topics:")
    lines += [f"  {topic}" for topic in sorted(topics)] or ["  none yet"]
    lines.append("Config:")
    lines += _indented(format_table(("KEY", "VALUE"), list(mask_config(info.config).items())))
    return lines


def _indented(text: str) -> list[str]:
    return [f"  {line}" for line in text.splitlines()]
