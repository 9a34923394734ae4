"""``cdcsync sources check`` and ``cdcsync snapshot``: one thin function each.

Exit codes (mapped in ``pipeline.cli``): ``sources check`` exits 0 when it found no
error (warnings are printed but pass), 1 on any error, and with ``--strict`` also
on warnings; ``snapshot`` exits 2 for a table no connector captures, and ``snapshot --incomplete``
12 when an initial snapshot is still interrupted afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.preflight_report import format_bytes, parse_size, slot_lines
from cdcsync.debezium.signals import find_captured_table, trigger_incremental_snapshot
from cdcsync.debezium.snapshot_notifications import SnapshotNotification, wait_for_snapshot
from cdcsync.debezium.snapshot_recovery import ensure_initial_snapshots
from cdcsync.debezium.source_preflight import WAL_WARNING_ENV, PreflightFailed, check_sources
from cdcsync.pipeline.cli_options import ConnectOptions, bootstrap_servers_option, connect_options, kafka_bootstrap
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.targets import connector_placeholder_env

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

    Placeholders in the connector definitions resolve from the environment
    (CDCSYNC_PG_HOST, CDCSYNC_PG_PORT, CDCSYNC_DEBEZIUM_USER, CDCSYNC_DEBEZIUM_PASSWORD),
    falling back to the local stack's. Read-only.
    """
    report = check_sources(
        load_connector_specs(connectors_dir), connector_placeholder_env(), wal_warning_bytes=wal_warning
    )
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


def signal_url(spec: ConnectorSpec) -> str:
    """Where to write ``spec``'s signals: CDCSYNC_<SERVICE>_SIGNAL_DB_URL, else the local stack's admin."""
    database = spec.config["database.dbname"]
    return os.environ.get(f"CDCSYNC_{database.upper()}_SIGNAL_DB_URL") or StackEndpoints(
        StackSettings.from_env()
    ).admin_url(database)


@click.command("snapshot")
@click.option("--table", "qualified", default=None, metavar="SERVICE.TABLE", help="e.g. course.lectures")
@click.option(
    "--incomplete",
    is_flag=True,
    help="Instead of --table: every table whose initial snapshot was interrupted, whole, one after another "
    "(waits for each; signals through CDCSYNC_<SERVICE>_SIGNAL_DB_URL, else the local stack's admin).",
)
@click.option("--where", default=None, metavar="SQL", help="Only rows matching this SQL condition, e.g. 'id < 100'.")
@click.option(
    "--db-url",
    envvar="CDCSYNC_SIGNAL_DB_URL",
    show_envvar=True,
    default=None,
    help="The service's database, as a role with INSERT on cdcsync_signal.debezium_signal. "
    "Default: the local stack's admin role.",
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
    settings = StackSettings.from_env()
    bootstrap = kafka_bootstrap(bootstrap_servers)
    if qualified is None:
        _recover_incomplete(connect, load_connector_specs(connectors_dir), bootstrap, timeout)
        return
    try:
        spec, table = find_captured_table(load_connector_specs(connectors_dir), qualified)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--table") from None
    url = db_url or StackEndpoints(settings).admin_url(spec.config["database.dbname"])
    try:
        signal_id = trigger_incremental_snapshot(url, spec, table, where)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(signal_id)
    if not wait:
        return

    def progress(notification: SnapshotNotification) -> None:
        click.echo(f"  {notification.type.lower().replace('_', ' ')}", err=True)

    done = wait_for_snapshot(bootstrap, spec, signal_id, table, timeout=timeout, on_progress=progress)
    rows = "" if done.rows_scanned is None else f": {done.rows_scanned} rows re-emitted"
    click.echo(f"snapshot of {spec.config['database.dbname']}.{table} done{rows}", err=True)


def _recover_incomplete(
    connect: ConnectOptions, specs: tuple[ConnectorSpec, ...], bootstrap: str, timeout: float
) -> None:
    with connect.client() as client:
        done = ensure_initial_snapshots(
            client, bootstrap, specs, signal_url, timeout=timeout, say=lambda line: click.echo(line, err=True)
        )
    click.echo(f"re-snapshotted: {', '.join(done)}" if done else "no interrupted initial snapshot")
