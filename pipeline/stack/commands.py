"""``cdcsync stack up|down|status|env``: one thin function per verb."""

from __future__ import annotations

import dataclasses
import shlex
import time

import click

from cdcsync.pipeline.cli_options import say_target
from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import CHANGE_FORMATS, StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.parts import PartStatus
from cdcsync.pipeline.stack.registry import LocalRegistry

_SETTINGS_HELP = (
    "Settings come from the environment: CDCSYNC_HOME (state directory, default ./.cdcsync), "
    "CDCSYNC_PG_PORT (15432), CDCSYNC_KAFKA_PORT (19092), CDCSYNC_KAFKA_CONTROLLER_PORT (19093), "
    "CDCSYNC_CONNECT_PORT (18083), CDCSYNC_STACK_PASSWORD, CDCSYNC_POSTGRES (auto|embedded|system), "
    "CDCSYNC_CHANGE_FORMAT (json|avro; avro adds the schema registry), CDCSYNC_REGISTRY_PORT (18081)."
)


@click.group(
    "stack",
    help=f"The local development stack (PostgreSQL, Kafka, Kafka Connect + Debezium) without Docker, "
    f"bound to 127.0.0.1.\n\n{_SETTINGS_HELP}",
)
def stack() -> None:
    pass


@stack.command("up")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=180.0,
    envvar="CDCSYNC_STACK_TIMEOUT",
    show_envvar=True,
    help="Seconds each part may take to become healthy.",
)
@click.option(
    "--format",
    "change_format",
    type=click.Choice(CHANGE_FORMATS),
    default=None,
    help="The change format the stack is for (default: CDCSYNC_CHANGE_FORMAT, else the format it was last "
    "brought up in, else json); avro also starts the schema registry.",
)
def up(timeout: float, change_format: str | None) -> None:
    """Start PostgreSQL, Kafka and Kafka Connect (and, for Avro, the schema registry); a no-op for parts running."""
    started = time.monotonic()
    settings = _settings()
    if change_format is not None:
        settings = dataclasses.replace(settings, change_format=change_format)
        settings.record_change_format()
    LocalStack(settings).up(timeout, on_ready=_echo_ready)
    click.echo(f'stack up in {time.monotonic() - started:.1f}s; use it with: eval "$(cdcsync stack env)"')


@stack.command("down")
def down() -> None:
    """Stop every part that `stack up` started, in reverse order; nothing else is touched."""
    for name, was_running in LocalStack(_settings()).down():
        click.echo(f"{name:<9} {'stopped' if was_running else 'was not running'}")


@stack.command("status")
def status() -> None:
    """Show each part; exits 3 if any part is not running and healthy."""
    statuses = LocalStack(_settings()).status()
    for part in statuses:
        click.echo(f"{part.name:<9} {'up' if part.running else 'DOWN':<5} {part.detail}  [log: {part.log_file}]")
    down_parts = [part.name for part in statuses if not part.running]
    if down_parts:
        raise StackError("stack", f"not running: {', '.join(down_parts)}; start it with `cdcsync stack up`")


@stack.command("env")
def env() -> None:
    """Print `export KEY=value` lines for the running stack: eval "$(cdcsync stack env)".

    SCHEMA_REGISTRY_URL is printed only while the schema registry runs.
    The lines hold the stack's password (they are for eval); nothing else cdcsync prints does.
    """
    settings = _settings()
    exports = StackEndpoints(settings).exports()
    if LocalRegistry(settings).is_running():
        exports["SCHEMA_REGISTRY_URL"] = settings.registry_url
    for key, value in exports.items():
        click.echo(f"export {key}={shlex.quote(value)}")


def _settings() -> StackSettings:
    settings = StackSettings.from_env()
    say_target(f"local stack ({settings.home})")
    return settings


def _echo_ready(part: PartStatus, seconds: float) -> None:
    click.echo(f"{part.name:<9} ready in {seconds:5.1f}s  {part.detail}")
