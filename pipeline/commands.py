"""Top-level commands: ``up``, ``down``, ``status`` and ``demo``."""

from __future__ import annotations

import dataclasses

import click

from cdcsync.pipeline.cli_options import command_targets, say_target
from cdcsync.pipeline.demo import run_demo
from cdcsync.pipeline.errors import VerifyMismatch
from cdcsync.pipeline.lifecycle import bring_down, bring_up
from cdcsync.pipeline.settings import CHANGE_FORMATS, StackSettings
from cdcsync.pipeline.status_report import status_lines
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.reports import render_report
from cdcsync.sink.http_address import parse_listen_address


def local_stack(change_format: str | None = None) -> StackSettings:
    """The local stack's settings, said as the target (up, down, demo and stack always use it);
    ``change_format`` (``--format``) overrides the environment's and the recorded one."""
    settings = StackSettings.from_env()
    if change_format is not None:
        settings = dataclasses.replace(settings, change_format=change_format)
    say_target(f"local stack ({settings.home})")
    return settings


def _step(what: str, seconds: float) -> None:
    click.echo(f"  {what}  [{seconds:.1f}s]")


format_option = click.option(
    "--format",
    "change_format",
    type=click.Choice(CHANGE_FORMATS),
    default=None,
    help="The format connectors write: json, or avro through the schema registry (started with it). "
    "Default: CDCSYNC_CHANGE_FORMAT, else the format the stack was last brought up in, else json. "
    "A running stack switches in place: same connectors, slots and offsets.",
)


@click.command()
@click.option("--demo-data/--no-demo-data", default=True, help="Load the demo data set into empty source databases.")
@click.option("--catch-up-timeout", type=float, default=300.0, help="Seconds to wait for the calendar to catch up.")
@format_option
def up(demo_data: bool, catch_up_timeout: float, change_format: str | None) -> None:
    """Start the local stack, source schemas, connectors and the background sink; return once caught up.

    Ports and the state directory come from CDCSYNC_HOME, CDCSYNC_PG_PORT, CDCSYNC_KAFKA_PORT,
    CDCSYNC_KAFKA_CONTROLLER_PORT and CDCSYNC_CONNECT_PORT; the roles' password from CDCSYNC_STACK_PASSWORD.
    """
    settings = local_stack(change_format)
    click.echo(f"cdcsync up ({settings.home}, {settings.change_format})")
    bring_up(settings, _step, demo_data=demo_data, catch_up_timeout=catch_up_timeout)
    click.echo('ready: eval "$(cdcsync stack env)" to reach it; cdcsync status shows lag and freshness')


@click.command()
def down() -> None:
    """Stop the background sink and every part of the local stack this project started."""
    for part, was_running in bring_down(local_stack()):
        click.echo(f"  {part}: {'stopped' if was_running else 'was not running'}")


@click.command()
@click.option(
    "--group", envvar="CDCSYNC_SINK_GROUP", show_envvar=True, default="cdcsync-calendar-sink", help="The sink's group."
)
@click.option(
    "--sink-http",
    envvar="CDCSYNC_SINK_HTTP",
    show_envvar=True,
    metavar="HOST:PORT",
    help="The sink whose /metrics to read. Default on the local stack: its background sink.",
)
def status(group: str, sink_http: str | None) -> None:
    """The connectors, their initial snapshots and slots, and the sink's lag and freshness per topic partition.

    With the local stack (--local), its parts first.
    """
    try:
        address = parse_listen_address(sink_http) if sink_http else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sink-http / CDCSYNC_SINK_HTTP") from None
    targets = command_targets(("CONNECT_URL", "KAFKA_BOOTSTRAP_SERVERS", "CDCSYNC_SINK_DB_URL"))
    for line in status_lines(targets, group, address):
        click.echo(line)


@click.command()
@click.option("--duration", type=float, default=30.0, help="Seconds to write changes for.")
@click.option("--rate", type=float, default=20.0, help="Changes per second written into the services.")
@click.option("--seed", type=int, default=7, help="Seed of the change stream.")
@format_option
def demo(duration: float, rate: float, seed: int, change_format: str | None) -> None:
    """Run `up`, write realistic changes into the services while showing the calendar follow, then summarize.

    The stack is left running; `cdcsync down` stops it.
    """
    settings = local_stack(change_format)
    click.echo(f"cdcsync up ({settings.home}, {settings.change_format})")
    bring_up(settings, _step)
    click.echo(
        f"writing ~{rate:.0f} changes/s into the course, attendance and assignment databases for {duration:.0f}s"
    )
    summary = run_demo(Targets.local_stack(settings), duration, rate, seed, click.echo)
    for line in summary.lines():
        click.echo(line)
    if not summary.verify.clean:
        for line in render_report(summary.verify, 10):
            click.echo(line)
        raise VerifyMismatch("the calendar differs from the rules after the demo")
    click.echo("the stack is still running: cdcsync status | cdcsync verify | cdcsync down")
