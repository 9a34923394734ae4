"""The ``cdcsync`` command line: the one place where errors become exit codes.

Exit codes: 0 ok; 1 a check found a difference (verify) or an unexpected error;
2 bad configuration; 3 the local stack failed; 4 Kafka Connect refused a request.
"""

from __future__ import annotations

import logging
import sys

import click

from cdcsync.pipeline.commands import demo, down, status, up
from cdcsync.pipeline.connectors_commands import connectors
from cdcsync.pipeline.dead_letter_commands import dlq
from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.resync_commands import resync_command
from cdcsync.pipeline.sink_commands import sink
from cdcsync.pipeline.sources_commands import snapshot, sources
from cdcsync.pipeline.stack.commands import stack
from cdcsync.pipeline.verification.commands import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """cdcsync keeps a calendar read model in sync with three service databases through Debezium."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


for command in (up, down, status, demo, verify, stack, connectors, sink, dlq, sources, snapshot, resync_command):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CdcsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Unexpected: one line by default, the traceback with -v.
        logging.getLogger("cdcsync").debug("unexpected error", exc_info=True)
        click.echo(f"error: {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
        sys.exit(1)
