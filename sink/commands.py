"""``cdcsync sink ...``: run the sink daemon in the foreground, or manage the background one."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from pipeline.errors import SinkStopped
from pipeline.settings import StackSettings
from pipeline.targets import Targets
from sink.background import BackgroundSink
from sink.consumer_loop import SinkDaemon
from sink.errors import SinkCannotContinue
from sink.sink_state import STATE_FILE_ENV

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
def run(bootstrap_servers: str | None, db_url: str | None, group: str | None, state_file: Path | None) -> None:
    """Consume the change topics and keep the calendar equal to the rules, until SIGTERM or SIGINT.

    Without options, the local stack's Kafka and calendar database are used. Outages of
    Kafka or the calendar database are waited out (reconnecting with backoff); only what
    retrying cannot fix ends it, with the exit codes 2 and 20-23 (see the README).
    """
    targets = Targets.resolve()
    overrides = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CDCSYNC_SINK_DB_URL": db_url,
        "CDCSYNC_SINK_GROUP": group,
    }
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
    was_running = BackgroundSink(StackSettings.from_env().home).stop()
    click.echo("sink: stopped" if was_running else "sink: was not running")
