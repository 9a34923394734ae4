"""``cdcsync connectors ...``: Kafka Connect operations in verb-noun style, one thin function per command.

apply, get, describe and status are here; pause, resume, stop, restart, delete and
offsets in ``lifecycle_commands``; context in ``context_commands``. Every command
takes the shared options of ``cli_options`` (URL, context, auth, TLS). Errors are
raised as ``CdcsyncError`` subclasses; ``pipeline.cli.main`` turns them into a
message and the exit code documented in ``pipeline.errors``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from cdcsync.debezium.apply import ApplyOutcome, apply_connector, load_specs, planned_outcome, validate_specs
from cdcsync.debezium.change_format import FORMAT_ENV, ChangeFormat, with_formats
from cdcsync.debezium.connect_errors import ConnectorConfigInvalid, ConnectorNotFound
from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.output import (
    GET_HEADER,
    connector_document,
    describe_lines,
    format_table,
    get_rows,
    render,
    status_rows,
    trace_summary,
)
from cdcsync.debezium.snapshot_states import InitialSnapshotInterrupted, wait_for_snapshots
from cdcsync.debezium.source_connection import placeholder_variables
from cdcsync.debezium.source_preflight import PreflightFailed, check_sources
from cdcsync.debezium.waiting import wait_for_state
from cdcsync.pipeline.cli_options import (
    ConnectOptions,
    bootstrap_servers_option,
    command_targets,
    connect_options,
    output_option,
    wait_options,
)
from cdcsync.pipeline.connectors_lifecycle_commands import delete, offsets, pause, restart, resume, stop
from cdcsync.pipeline.context_commands import context
from cdcsync.pipeline.targets import Targets

# Re-exported for pipeline.lifecycle and pipeline.status_report.
__all__ = ["ApplyOutcome", "apply_connector", "connectors", "format_table", "planned_outcome", "status_rows"]


@click.group()
def connectors() -> None:
    """Debezium connectors in Kafka Connect: apply, inspect and operate them.

    Where Connect is: --connect-url / CONNECT_URL, else the current context
    (cdcsync connectors context); with --local, the local stack's.
    """


_PATHS = click.Path(path_type=Path)


@connectors.command("apply")
@connect_options
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    type=_PATHS,
    help="A connector JSON file or a directory of them; repeatable. Default: the definitions shipped with cdcsync.",
)
@click.option(
    "--connectors-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CDCSYNC_CONNECTORS_DIR",
    show_envvar=True,
    help="Same as -f DIR.",
)
@click.option("--dry-run", is_flag=True, help="Validate through the plugin and say what would change; change nothing.")
@click.option(
    "--skip-preflight",
    is_flag=True,
    envvar="CDCSYNC_SKIP_PREFLIGHT",
    show_envvar=True,
    help="Do not check the source databases first (cdcsync sources check).",
)
@click.option(
    "--format",
    "change_format",
    type=click.Choice([f.value for f in ChangeFormat]),
    envvar=FORMAT_ENV,
    show_envvar=True,
    default=None,
    help="The format the connectors write: json (the definitions as they are) or avro (through the schema "
    "registry at the worker's ${env:CDCSYNC_REGISTRY_URL}). Default: the local stack's format with --local, "
    "else json. Switching re-configures the same connectors: offsets stay, nothing is re-snapshotted.",
)
@wait_options("every applied connector and its tasks are RUNNING and its initial snapshot is over")
@bootstrap_servers_option("where --wait reads Debezium's notifications")
def apply(
    *,
    connect: ConnectOptions,
    files: tuple[Path, ...],
    connectors_dir: Path | None,
    dry_run: bool,
    skip_preflight: bool,
    change_format: str | None,
    wait: bool,
    timeout: float,
    bootstrap_servers: str | None,
) -> None:
    """Create or update connectors so Kafka Connect runs exactly these definitions (idempotent).

    Prints per connector: created, updated or unchanged. The source databases are
    checked first; errors there refuse the apply. With --wait, an initial snapshot
    that was interrupted and that Debezium will not redo exits 12, naming the
    connector, the tables, the cause and the fix (cdcsync snapshot --incomplete).
    """
    del bootstrap_servers  # read through command_targets, which knows where it came from
    kafka = ("KAFKA_BOOTSTRAP_SERVERS",) if wait and not dry_run else ()
    targets = command_targets(kafka, {"KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers"}, connect=connect)
    chosen = ChangeFormat(change_format) if change_format else (targets.local.format if targets.local else None)
    specs = with_formats(
        load_specs([*files, *([connectors_dir] if connectors_dir else [])]), chosen or ChangeFormat.JSON
    )
    if not skip_preflight:
        _preflight(specs, targets)
    with connect.client() as client:
        if dry_run:
            results = validate_specs(client, specs)
            for result in results:
                click.echo("\n".join(result.lines()))
            invalid = [r.spec.name for r in results if r.errors]
            if invalid:
                raise ConnectorConfigInvalid(f"the plugin rejects {', '.join(invalid)}; nothing was applied")
            return
        outcomes = {spec.name: apply_connector(client, spec) for spec in specs}
        for name, outcome in outcomes.items():
            click.echo(f"{name}: {outcome.value}")
        if wait:
            deadline = time.monotonic() + timeout
            unchanged = [n for n, o in outcomes.items() if o is ApplyOutcome.UNCHANGED]
            wait_for_state(client, list(outcomes), "RUNNING", timeout, settled=unchanged)
            click.echo(f"running: {', '.join(outcomes)}")
            states = wait_for_snapshots(
                client,
                targets.kafka_bootstrap_servers,
                specs,
                max(deadline - time.monotonic(), 0.0),
                on_running=lambda state: click.echo(state.summary(), err=True),
                registry_url=targets.schema_registry_url,
            )
            interrupted = [s for s in states.values() if s.interrupted]
            if interrupted:
                raise InitialSnapshotInterrupted(interrupted)
            if states:
                click.echo(f"initial snapshots complete: {', '.join(states)}")


def _preflight(specs: tuple[ConnectorSpec, ...], targets: Targets) -> None:
    report = check_sources(specs, targets.placeholder_env(placeholder_variables(specs)))
    if report.problems:
        for line in report.lines():
            click.echo(line, err=True)
    if report.has_errors:
        raise PreflightFailed("apply refused: the source preflight found errors (above). Fix them, or --skip-preflight")


@connectors.command("get")
@connect_options
@output_option
@click.argument("names", nargs=-1)
def get(connect: ConnectOptions, fmt: str, names: tuple[str, ...]) -> None:
    """Connectors (all, or NAMES): name, type, state and tasks; -o json|yaml adds the masked config."""
    with connect.client() as client:
        infos = client.list_connector_infos()
    missing = [n for n in names if n not in infos]
    if missing:
        raise ConnectorNotFound(f"connector {missing[0]!r}")
    chosen = [infos[n] for n in sorted(set(names) or infos)]
    if fmt != "table":
        click.echo(render([connector_document(info) for info in chosen], fmt))
    elif chosen:
        click.echo(format_table(GET_HEADER, get_rows(chosen)))
    else:
        click.echo("no connectors (cdcsync connectors apply creates them)")


@connectors.command("describe")
@connect_options
@output_option
@click.argument("name")
def describe(connect: ConnectOptions, fmt: str, name: str) -> None:
    """One connector: config (secrets masked), tasks with their errors, topics and worker."""
    with connect.client() as client:
        info = client.connector_info(name)
        topics = client.connector_topics(name)
    if fmt == "table":
        click.echo("\n".join(describe_lines(info, topics)))
    else:
        click.echo(render(connector_document(info, topics), fmt))


@connectors.command("status")
@connect_options
def status(connect: ConnectOptions) -> None:
    """Connector and task states, one row per task; failed tasks' root causes on stderr."""
    with connect.client() as client:
        states = client.list_connectors()
    if not states:
        click.echo("no connectors (cdcsync connectors apply creates them)")
        return
    click.echo(format_table(("CONNECTOR", "STATE", "TASK", "TASK STATE", "WORKER"), status_rows(states.values())))
    for state in sorted(states.values(), key=lambda s: s.name):
        if state.trace:
            click.echo(f"{state.name}: {trace_summary(state.trace)}", err=True)
        for task in state.tasks:
            if task.trace:
                click.echo(f"{state.name} task {task.id}: {trace_summary(task.trace)}", err=True)


for _command in (pause, resume, stop, restart, delete, offsets, context):
    connectors.add_command(_command)
