"""``cdcsync connectors apply|status``: one thin function per command.

Errors are raised as ``CdcsyncError`` subclasses; ``pipeline.cli.main`` turns
them into a message and an exit code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from pathlib import Path

import click

from debezium.connect_client import ConnectClient, ConnectorNotFound, ConnectorState
from debezium.connector_spec import ConnectorSpec, load_connector_specs
from pipeline.errors import ConnectError
from pipeline.settings import StackSettings


class ApplyOutcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def planned_outcome(client: ConnectClient, spec: ConnectorSpec) -> ApplyOutcome:
    """What applying ``spec`` would do, judged from the running config."""
    try:
        running = client.get_connector_config(spec.name)
    except ConnectorNotFound:
        return ApplyOutcome.CREATED
    return ApplyOutcome.UNCHANGED if spec.matches(running) else ApplyOutcome.UPDATED


def apply_connector(client: ConnectClient, spec: ConnectorSpec) -> ApplyOutcome:
    """Create or update ``spec`` so the running config equals it. Idempotent."""
    planned = planned_outcome(client, spec)
    if planned is ApplyOutcome.UNCHANGED:
        return planned
    created = client.put_connector_config(spec.name, spec.config)
    return ApplyOutcome.CREATED if created else ApplyOutcome.UPDATED


def status_rows(states: Iterable[ConnectorState]) -> list[tuple[str, str, str, str, str]]:
    """One row per task (one for a connector without tasks): connector, state, task, task state, worker."""
    rows: list[tuple[str, str, str, str, str]] = []
    for state in sorted(states, key=lambda s: s.name):
        if not state.tasks:
            rows.append((state.name, state.state, "-", "-", state.worker_id))
        for task in state.tasks:
            rows.append((state.name, state.state, str(task.id), task.state, task.worker_id))
    return rows


def trace_summary(trace: str) -> str:
    """A Java stack trace in one line: its first line, and the root cause when there is one."""
    lines = trace.strip().splitlines()
    if not lines:
        return ""
    causes = [line.strip() for line in lines if line.startswith("Caused by:")]
    return f"{lines[0]} ({causes[-1]})" if causes else lines[0]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
    return "\n".join(lines)


def _connect_url(url: str | None) -> str:
    return url or StackSettings.from_env().connect_url


connect_url_option = click.option(
    "--connect-url",
    envvar="CONNECT_URL",
    show_envvar=True,
    default=None,
    help="Kafka Connect REST URL. Default: the local stack's (cdcsync stack env).",
)


@click.group()
def connectors() -> None:
    """Debezium connectors in Kafka Connect: one per service database."""


@connectors.command("apply")
@connect_url_option
@click.option(
    "--connectors-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CDCSYNC_CONNECTORS_DIR",
    show_envvar=True,
    default=None,
    help="Directory of connector JSON files. Default: the definitions shipped with cdcsync.",
)
@click.option("--dry-run", is_flag=True, help="Validate through Connect and say what would change; change nothing.")
def apply(connect_url: str | None, connectors_dir: Path | None, dry_run: bool) -> None:
    """Create or update every connector so Kafka Connect runs the definitions (idempotent)."""
    specs = load_connector_specs(connectors_dir)
    with ConnectClient(_connect_url(connect_url)) as client:
        if dry_run:
            _dry_run(client, specs)
            return
        for spec in specs:
            click.echo(f"{spec.name}: {apply_connector(client, spec).value}")


def _dry_run(client: ConnectClient, specs: Sequence[ConnectorSpec]) -> None:
    invalid = []
    for spec in specs:
        errors = client.validate_connector_config(spec.name, spec.config)
        verdict = "invalid" if errors else f"would be {planned_outcome(client, spec).value}"
        click.echo(f"{spec.name}: {verdict}")
        for key, messages in errors.items():
            for message in messages:
                click.echo(f"  {key}: {message}")
        if errors:
            invalid.append(spec.name)
    if invalid:
        raise ConnectError(f"Kafka Connect rejects {', '.join(invalid)}; nothing was applied")


@connectors.command("status")
@connect_url_option
def status(connect_url: str | None) -> None:
    """Connector and task states, as a table."""
    with ConnectClient(_connect_url(connect_url)) as client:
        states = client.list_connectors()
    if not states:
        click.echo("no connectors (run: cdcsync connectors apply)")
        return
    click.echo(format_table(("CONNECTOR", "STATE", "TASK", "TASK STATE", "WORKER"), status_rows(states.values())))
    for state in sorted(states.values(), key=lambda s: s.name):
        if state.trace:
            click.echo(f"{state.name}: {trace_summary(state.trace)}", err=True)
        for task in state.tasks:
            if task.trace:
                click.echo(f"{state.name} task {task.id}: {trace_summary(task.trace)}", err=True)
