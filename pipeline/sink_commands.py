"""``cdcsync sink ...``: run the sink daemon in the foreground, or manage the background one."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from cdcsync.pipeline.cli_options import command_targets, say_target
from cdcsync.pipeline.errors import SinkStopped
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.background_sink import BackgroundSink
from cdcsync.sink.consumer_loop import SinkDaemon
from cdcsync.sink.errors import SinkCannotContinue
from cdcsync.sink.sink_state import STATE_FILE_ENV

logger = logging.getLogger(__name__)


@click.group()
def sink() -> None:
    """The sink daemon: Kafka change topics -> calendar.calendar_entries."""


@sink.command("run")
@click.option(
    "--bootstrap-servers", envvar="KAFKA_BOOTSTRAP_SERVERS", show_envvar=True, help="Kafka bootstrap servers."
)
@click.option(
    "--db-url",
    envvar="CDCSYNC_SINK_DB_URL",
    show_envvar=True,
    help="Calendar database, as a role that owns the calendar and cdcsync schemas.",
)
@click.option("--group", envvar="CDCSYNC_SINK_GROUP", show_envvar=True, help="Consumer group id.")
@click.option(
    "--state-file",
    envvar=STATE_FILE_ENV,
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON file the daemon rewrites on each transition (running, reconnecting: what and since when).",
)
@click.option(
    "--http",
    envvar="CDCSYNC_SINK_HTTP",
    show_envvar=True,
    metavar="HOST:PORT",
    help="Serve /metrics, /livez and /readyz here (e.g. 0.0.0.0:8090). Unset: no HTTP endpoint.",
)
def run(
    bootstrap_servers: str | None, db_url: str | None, group: str | None, state_file: Path | None, http: str | None
) -> None:
    """Consume the change topics and keep the calendar equal to the rules, until SIGTERM or SIGINT.

    Kafka and the calendar database must be given (options or variables), or the local
    stack's used with `cdcsync --local sink run`: a missing one exits 2 at once. Avro change
    events are read through SCHEMA_REGISTRY_URL (with SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO if
    it needs credentials). Outages of Kafka, the calendar database or the schema registry are
    waited out (reconnecting with backoff); only what retrying cannot fix ends it, with the
    exit codes 2 and 20-25 (see the README).
    """
    del bootstrap_servers, db_url  # read through command_targets, which knows where each came from
    targets = command_targets(
        ("KAFKA_BOOTSTRAP_SERVERS", "CDCSYNC_SINK_DB_URL"),
        {"KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers", "CDCSYNC_SINK_DB_URL": "db_url"},
    )
    overrides = {"CDCSYNC_SINK_GROUP": group, "CDCSYNC_SINK_HTTP": http}
    settings = targets.sink_settings(overrides={k: v for k, v in overrides.items() if v})
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s: finishing the current batch and leaving the group", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        stats = SinkDaemon(settings, state_file=state_file).run(stop)
    except SinkCannotContinue as exc:
        raise SinkStopped(f"sink stopped: {exc}. Fix: {exc.fix}", exc.exit_code) from exc
    logger.info(
        "sink stopped after %d batches: %d messages, %d dead letters", stats.batches, stats.messages, stats.dead_letters
    )


@sink.command("stop")
def stop() -> None:
    """Stop the background sink that `cdcsync up` started (SIGTERM; it leaves the group cleanly)."""
    settings = StackSettings.from_env()
    say_target(f"local stack ({settings.home})")
    was_running = BackgroundSink(settings.home).stop()
    click.echo("sink: stopped" if was_running else "sink: was not running")
