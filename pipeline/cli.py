"""The ``cdcsync`` command line: the one place where errors become exit codes.

Exit codes: 0 ok; 1 a check found a difference (verify) or an unexpected error;
2 bad configuration; 3 the local stack failed; 4 Kafka Connect refused a request
(the whole table is in ``pipeline.errors``).

Global options choose the target (``--local`` / ``--profile``, see ``pipeline.targets``)
and the log format (``pipeline.logs``).
"""

from __future__ import annotations

import logging
import os
import sys

import click

from cdcsync import __version__
from cdcsync.pipeline.bench.commands import bench
from cdcsync.pipeline.commands import demo, down, status, up
from cdcsync.pipeline.connectors_commands import connectors
from cdcsync.pipeline.dead_letter_commands import dlq
from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.logs import LOG_FORMATS, Redactor, configure_logging, say, secrets_in
from cdcsync.pipeline.resync_commands import resync_command
from cdcsync.pipeline.sink_commands import sink
from cdcsync.pipeline.sources_commands import snapshot, sources
from cdcsync.pipeline.stack.commands import stack
from cdcsync.pipeline.targets import PROFILE_ENV, Profile
from cdcsync.pipeline.verification.commands import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, "--version", prog_name="cdcsync", message="%(prog)s %(version)s")
@click.option(
    "--profile",
    type=click.Choice([p.value for p in Profile]),
    default=Profile.ENV.value,
    envvar=PROFILE_ENV,
    show_envvar=True,
    help="env: every target from its variable (COURSE_DB_URL, KAFKA_BOOTSTRAP_SERVERS, CONNECT_URL, ...), "
    "none assumed; local: the local stack under CDCSYNC_HOME. up, down, demo and stack always use the local stack.",
)
@click.option("--local", is_flag=True, help="Point the command at the local stack: --profile local.")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    envvar="CDCSYNC_LOG_FORMAT",
    show_envvar=True,
    help="text for people; json: one JSON object per line (time, level, logger, message).",
)
@click.option("-v", "--verbose", is_flag=True, envvar="CDCSYNC_VERBOSE", show_envvar=True, help="Log at DEBUG level.")
@click.pass_context
def cli(ctx: click.Context, profile: str, local: bool, log_format: str, verbose: bool) -> None:
    """cdcsync keeps a calendar read model in sync with three service databases through Debezium.

    Every command says on stderr which target it uses ("target: ...").
    """
    configure_logging(log_format, verbose, os.environ)
    ctx.obj = Profile.LOCAL if local else Profile(profile)


for command in (up, down, status, demo, bench, verify, stack, connectors, sink, dlq, sources, snapshot, resync_command):
    cli.add_command(command)


def main() -> None:
    redact = Redactor(secrets_in(os.environ))
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CdcsyncError as exc:
        say(redact(f"error: {exc}"), logging.ERROR)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Unexpected: one line by default, the traceback with -v.
        logging.getLogger("cdcsync").debug("unexpected error", exc_info=True)
        say(redact(f"error: {type(exc).__name__}: {exc} (run with -v for the traceback)"), logging.ERROR)
        sys.exit(1)
