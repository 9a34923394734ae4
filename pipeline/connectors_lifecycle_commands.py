"""``cdcsync connectors pause|resume|stop|restart|delete`` and ``offsets get|reset``.

Connect carries each of these out asynchronously; ``--wait`` polls the status
until the connectors reach the state (or ``--timeout`` passes: exit code 10).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorStateConflict
from cdcsync.debezium.output import format_table, render
from cdcsync.debezium.waiting import wait_for_state
from cdcsync.pipeline.cli_options import ConnectOptions, connect_options, output_option, wait_options

_NAMES = click.argument("names", nargs=-1, required=True)


Act = Callable[[ConnectClient, str], None]


def _each(
    connect: ConnectOptions, names: tuple[str, ...], act: Act, done: str, *, wait_for: str | None, timeout: float
) -> None:
    """``act`` on each connector, say ``done``, then wait for ``wait_for`` state unless None."""
    with connect.client() as client:
        for name in names:
            act(client, name)
            click.echo(f"{name}: {done}")
        if wait_for is not None:
            wait_for_state(client, list(names), wait_for, timeout)
            click.echo(f"{', '.join(names)}: {wait_for}")


@click.command()
@connect_options
@wait_options("the connectors are PAUSED")
@_NAMES
def pause(connect: ConnectOptions, wait: bool, timeout: float, names: tuple[str, ...]) -> None:
    """Pause connectors and their tasks; they keep their resources, produce nothing. Undo: resume."""
    _each(
        connect,
        names,
        ConnectClient.pause_connector,
        "pause requested",
        wait_for="PAUSED" if wait else None,
        timeout=timeout,
    )


@click.command()
@connect_options
@wait_options("the connectors and their tasks are RUNNING")
@_NAMES
def resume(connect: ConnectOptions, wait: bool, timeout: float, names: tuple[str, ...]) -> None:
    """Resume PAUSED or STOPPED connectors."""
    _each(
        connect,
        names,
        ConnectClient.resume_connector,
        "resume requested",
        wait_for="RUNNING" if wait else None,
        timeout=timeout,
    )


@click.command()
@connect_options
@wait_options("the connectors are STOPPED")
@_NAMES
def stop(connect: ConnectOptions, wait: bool, timeout: float, names: tuple[str, ...]) -> None:
    """Stop connectors and shut their tasks down, keeping config and offsets (Kafka 3.5+).

    A STOPPED connector's offsets can be read and reset (cdcsync connectors offsets).
    Its replication slot stays and retains WAL while it is stopped. Undo: resume.
    """
    _each(
        connect,
        names,
        ConnectClient.stop_connector,
        "stop requested",
        wait_for="STOPPED" if wait else None,
        timeout=timeout,
    )


@click.command()
@connect_options
@click.option("--tasks", "include_tasks", is_flag=True, help="Restart the tasks too, not only the connector instance.")
@click.option(
    "--failed-only",
    is_flag=True,
    help="Restart only the FAILED connector instance and FAILED tasks (implies --tasks).",
)
@wait_options("the connectors and their tasks are RUNNING")
@_NAMES
def restart(
    *,
    connect: ConnectOptions,
    include_tasks: bool,
    failed_only: bool,
    wait: bool,
    timeout: float,
    names: tuple[str, ...],
) -> None:
    """Restart connectors: the instance, with --tasks their tasks, with --failed-only only what FAILED."""
    with connect.client() as client:
        for name in names:
            client.restart_connector(name, include_tasks=include_tasks or failed_only, only_failed=failed_only)
            click.echo(f"{name}: restart requested")
        if wait:
            wait_for_state(client, list(names), "RUNNING", timeout)
            click.echo(f"{', '.join(names)}: RUNNING")


@click.command()
@connect_options
@_NAMES
def delete(connect: ConnectOptions, names: tuple[str, ...]) -> None:
    """Delete connectors. Kafka Connect keeps their offsets and PostgreSQL their replication slots.

    Re-creating a connector under the same name resumes from its stored position
    without a new snapshot. An unused slot keeps retaining WAL: drop it
    (SELECT pg_drop_replication_slot('SLOT')) if the connector is gone for good.
    """
    _each(connect, names, ConnectClient.delete_connector, "deleted", wait_for=None, timeout=0.0)


@click.group()
def offsets() -> None:
    """Source offsets of a connector (Kafka 3.6+): for Debezium PostgreSQL, the last LSN it recorded."""


@offsets.command("get")
@connect_options
@output_option
@click.argument("name")
def offsets_get(connect: ConnectOptions, fmt: str, name: str) -> None:
    """The offsets Kafka Connect stores for NAME, per source partition."""
    with connect.client() as client:
        stored = client.get_offsets(name)
    if fmt != "table":
        click.echo(render({"name": name, "offsets": stored}, fmt))
    elif stored:
        rows = [(_compact(o.get("partition")), _compact(o.get("offset"))) for o in stored]
        click.echo(format_table(("PARTITION", "OFFSET"), sorted(rows)))
    else:
        click.echo(f"{name}: no offsets stored")


RESET_HELP = """Delete NAME's offsets; NAME must be STOPPED (cdcsync connectors stop NAME --wait).

\b
What it means for Debezium PostgreSQL:
- The replication slot is not dropped and keeps its confirmed_flush_lsn; it
  retains WAL from there until the connector streams again.
- With snapshot.mode=initial (the shipped connectors) a connector without
  offsets takes a new snapshot when resumed: every captured row is written to
  its topic again as a read event (op "r"), then it streams changes from the
  snapshot's position. Consumers see every row a second time.
- With snapshot.mode=no_data (or never) there is no snapshot: streaming
  starts from the slot's confirmed_flush_lsn.
"""


@offsets.command("reset", help=RESET_HELP)
@connect_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
def offsets_reset(connect: ConnectOptions, yes: bool, name: str) -> None:
    with connect.client() as client:
        _require_stopped(client, name)
        after = after_reset(client.get_connector_config(name).get("snapshot.mode", "initial"))
        if not yes:
            click.confirm(f"Reset the offsets of {name}? When resumed it {after}", abort=True)
        message = client.reset_offsets(name)
    click.echo(f"{name}: offsets reset. {message}".rstrip())
    click.echo(f"{name}: the replication slot is kept; when resumed (cdcsync connectors resume {name}) it {after}")


def after_reset(snapshot_mode: str) -> str:
    """What a Debezium PostgreSQL connector without offsets does when it starts, by snapshot.mode. Pure."""
    if snapshot_mode in ("initial", "always", "initial_only", "when_needed"):
        return "takes a new snapshot (every row again, as reads), then streams from the snapshot's position"
    if snapshot_mode in ("no_data", "never"):
        return "streams from the slot's confirmed_flush_lsn without a snapshot"
    return f"does what snapshot.mode={snapshot_mode} does without offsets"


def _require_stopped(client: ConnectClient, name: str) -> None:
    state = client.connector_status(name).state
    if state != "STOPPED":
        raise ConnectorStateConflict(name, state, "STOPPED", f"cdcsync connectors stop {name} --wait, then reset")


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
