"""``cdcsync sources check`` and ``cdcsync snapshot``: one thin function each.

Exit codes (mapped in ``pipeline.cli``): ``sources check`` exits 0 when it found no
error (warnings are printed but pass), 1 on any error, and with ``--strict`` also
on warnings; ``snapshot`` exits 2 for a table no connector captures, and ``snapshot --incomplete``
12 when an initial snapshot is still interrupted afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.preflight_report import format_bytes, parse_size, slot_lines
from cdcsync.debezium.signals import find_captured_table, trigger_incremental_snapshot
from cdcsync.debezium.snapshot_notifications import SnapshotNotification, wait_for_snapshot
from cdcsync.debezium.snapshot_recovery import ensure_initial_snapshots
from cdcsync.debezium.source_connection import placeholder_variables
from cdcsync.debezium.source_preflight import WAL_WARNING_ENV, PreflightFailed, check_sources
from cdcsync.pipeline.cli_options import (
    ConnectOptions,
    bootstrap_servers_option,
    command_targets,
    connect_options,
)
from cdcsync.pipeline.targets import Targets, signal_variable

connectors_dir_option = click.option(
    "--connectors-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CDCSYNC_CONNECTORS_DIR",
    show_envvar=True,
    default=None,
    help="Directory of connector JSON files. Default: the definitions shipped with cdcsync.",
)


def _size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def sources() -> None:
    """The source databases the connectors read."""


@sources.command("check")
@connectors_dir_option
@click.option(
    "--wal-warning",
    envvar=WAL_WARNING_ENV,
    show_envvar=True,
    default="1GiB",
    callback=_size,
    help="Warn about a replication slot retaining at least this much WAL (1GiB, 512MiB, bytes).",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable keys, for scripts).")
def check(connectors_dir: Path | None, wal_warning: int, strict: bool, as_json: bool) -> None:
    """Check every source database the connectors read, as the connectors' own role, and say how to fix each problem.

    Placeholders in the connector definitions resolve from the environment as the
    Connect worker has it (CDCSYNC_PG_HOST, CDCSYNC_PG_PORT, CDCSYNC_DEBEZIUM_USER,
    CDCSYNC_DEBEZIUM_PASSWORD), or from the local stack's worker with --local. Read-only.
    """
    specs = load_connector_specs(connectors_dir)
    env = command_targets(()).placeholder_env(placeholder_variables(specs))
    report = check_sources(specs, env, wal_warning_bytes=wal_warning)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(f"replication slots (! = retains at least {format_bytes(report.wal_warning_bytes)}):")
        for line in slot_lines(report.slots, report.wal_warning_bytes):
            click.echo(line)
        for line in report.lines():
            click.echo(line)
    if report.has_errors or (strict and report.has_warnings):
        what = "errors" if report.has_errors else "warnings (--strict)"
        raise PreflightFailed(f"the source preflight found {what}")


@click.command("snapshot")
@click.option("--table", "qualified", default=None, metavar="SERVICE.TABLE", help="e.g. course.lectures")
@click.option(
    "--incomplete",
    is_flag=True,
    help="Instead of --table: every table whose initial snapshot was interrupted, whole, one after another "
    "(waits for each; signals through CDCSYNC_<SERVICE>_SIGNAL_DB_URL, the local stack's admin with --local).",
)
@click.option("--where", default=None, metavar="SQL", help="Only rows matching this SQL condition, e.g. 'id < 100'.")
@click.option(
    "--db-url",
    envvar="CDCSYNC_SIGNAL_DB_URL",
    show_envvar=True,
    default=None,
    help="The service's database, as a role with INSERT on cdcsync_signal.debezium_signal. "
    "Default: CDCSYNC_<SERVICE>_SIGNAL_DB_URL (the local stack's admin role with --local).",
)
@connectors_dir_option
@click.option("--wait", is_flag=True, help="Wait until Debezium reports the snapshot done (reads its notifications).")
@click.option("--timeout", type=float, default=600.0, help="Seconds --wait waits.")
@bootstrap_servers_option("for --wait and --incomplete")
@connect_options
def snapshot(  # noqa: PLR0917 - click passes every option positionally
    qualified: str | None,
    incomplete: bool,
    where: str | None,
    db_url: str | None,
    connectors_dir: Path | None,
    wait: bool,
    timeout: float,
    bootstrap_servers: str | None,
    connect: ConnectOptions,
) -> None:
    """Re-emit a captured table's rows as snapshot ('r') events: a Debezium incremental snapshot.

    Inserts an execute-snapshot signal into the service's signal table and prints its id.
    Streaming goes on meanwhile; the sink applies the re-sent rows idempotently.
    With --incomplete, recovers every interrupted initial snapshot (cdcsync status shows them).
    """
    if incomplete == (qualified is not None) or (incomplete and (where or db_url)):
        raise click.UsageError("give --table SERVICE.TABLE [--where SQL] [--db-url URL], or --incomplete alone")
    del bootstrap_servers  # read through command_targets, which knows where it came from
    specs = load_connector_specs(connectors_dir)
    kafka = ("KAFKA_BOOTSTRAP_SERVERS",) if wait or incomplete else ()
    options = {"KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers"}
    if qualified is None:
        targets = command_targets(kafka, options, connect=connect)
        _recover_incomplete(connect, specs, targets, timeout)
        return
    try:
        spec, table = find_captured_table(specs, qualified)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--table") from None
    database = spec.config["database.dbname"]
    signal_key = signal_variable(database)
    targets = command_targets(kafka, {**options, signal_key: "db_url"})
    url = targets.signal_url(database)
    del db_url
    try:
        signal_id = trigger_incremental_snapshot(url, spec, table, where)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(signal_id)
    if not wait:
        return

    def progress(notification: SnapshotNotification) -> None:
        click.echo(f"  {notification.type.lower().replace('_', ' ')}", err=True)

    bootstrap = targets.kafka_bootstrap_servers
    done = wait_for_snapshot(
        bootstrap,
        spec,
        signal_id,
        table,
        timeout=timeout,
        on_progress=progress,
        registry_url=targets.schema_registry_url,
    )
    rows = "" if done.rows_scanned is None else f": {done.rows_scanned} rows re-emitted"
    click.echo(f"snapshot of {spec.config['database.dbname']}.{table} done{rows}", err=True)


def _recover_incomplete(
    connect: ConnectOptions, specs: tuple[ConnectorSpec, ...], targets: Targets, timeout: float
) -> None:
    with connect.client() as client:
        done = ensure_initial_snapshots(
            client,
            targets.kafka_bootstrap_servers,
            specs,
            lambda spec: targets.signal_url(spec.config["database.dbname"]),
            timeout=timeout,
            say=lambda line: click.echo(line, err=True),
            registry_url=targets.schema_registry_url,
        )
    click.echo(f"re-snapshotted: {', '.join(done)}" if done else "no interrupted initial snapshot")
