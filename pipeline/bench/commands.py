"""``cdcsync bench ...``: measure cdcsync beside its peers on the local stack; a table on stdout, JSON in a file."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from types import FrameType

import click

from cdcsync.debezium.change_format import ChangeFormat
from cdcsync.pipeline.bench.apply_scaling import measure_apply_scaling, render_apply_scaling
from cdcsync.pipeline.bench.freshness import FreshnessPlan
from cdcsync.pipeline.bench.peer import PEER_CLASSES
from cdcsync.pipeline.bench.report import render_freshness, render_stages, render_table, write_json
from cdcsync.pipeline.bench.runner import BenchPlan, machine, peer_names, run_bench
from cdcsync.pipeline.cli_options import say_target
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.stack.postgres import LocalPostgres

_FULL_RATES = "10,300,1000,3000"
_SINK_SETTINGS = ("CDCSYNC_SINK_BATCH_MAX", "CDCSYNC_SINK_BATCH_WAIT_MS")


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@click.group()
def bench() -> None:
    """Benchmarks on the local stack: freshness, backlog and initial load, cdcsync beside its peers."""


@bench.command("run")
@click.option("--smoke", is_flag=True, help="Tiny sizes, one rate, a few seconds; the peers are skipped (make test).")
@click.option(
    "--source-rows",
    type=click.IntRange(min=42),
    help="Source rows (about ten calendar rows each).  [full: 1000000; smoke: 420]",
)
@click.option(
    "--rates", help=f"Load rates for freshness, changes/s, comma-separated.  [full: {_FULL_RATES}; smoke: 50]"
)
@click.option("--seconds-per-rate", type=click.FloatRange(min=1), help="How long each rate runs.  [full: 30; smoke: 3]")
@click.option(
    "--warmup-seconds",
    type=click.FloatRange(min=0),
    help="Per peer, the load at the highest rate, unmeasured, before the first rate (0: none).  [full: 30; smoke: 1]",
)
@click.option("--probe-interval", type=click.FloatRange(min=0.05), default=0.5, help="Seconds between probes.")
@click.option(
    "--probe-timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    help="A probe not visible by then counts as timed out.",
)
@click.option(
    "--backlog",
    "backlog_changes",
    type=click.IntRange(min=0),
    help="Source changes in the backlog (0: none).  [full: 200000; smoke: 200]",
)
@click.option(
    "--peers",
    "peers",
    default=",".join(PEER_CLASSES),
    help=f"Peers beside cdcsync, comma-separated, from: {', '.join(PEER_CLASSES)}; empty for none.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".cdcsync/bench/results.json"),
    help="Where the results go.",
)
@click.option(
    "--cdcsync/--no-cdcsync", "with_cdcsync", default=True, help="Measure cdcsync too (--no-cdcsync: the peers only)."
)
@click.option("--keep", is_flag=True, help="Keep the run's databases, connectors and topics (to look at them).")
@click.option(
    "--format",
    "change_format",
    type=click.Choice([f.value for f in ChangeFormat]),
    default=ChangeFormat.JSON.value,
    show_default=True,
    help="The format the run's connectors write; avro starts the schema registry and measures cdcsync only "
    "(the peers read JSON with schemas: pass --peers '').",
)
def run(  # noqa: PLR0917 - click passes every option positionally
    smoke: bool,
    source_rows: int | None,
    rates: str | None,
    seconds_per_rate: float | None,
    warmup_seconds: float | None,
    probe_interval: float,
    probe_timeout: float,
    backlog_changes: int | None,
    peers: str,
    json_path: Path,
    with_cdcsync: bool,
    keep: bool,
    change_format: str,
) -> None:
    """Run the bench on the local stack under CDCSYNC_HOME (started if it is not running).

    It creates sources of its own (databases, connectors, topics named after the run), runs cdcsync and
    then each peer on them one after the other, prints the side-by-side table and cdcsync's per-stage
    breakdown, writes the JSON, and removes what it created. Nothing here asserts a time.
    cdcsync's sink takes CDCSYNC_SINK_BATCH_MAX and CDCSYNC_SINK_BATCH_WAIT_MS from the environment.
    """
    # SIGTERM, and SIGINT even when started in the background (where the shell ignores it), end the run
    # through its clean-up: every peer stopped, the run's connectors, slots, topics and databases removed.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    stack = StackSettings.from_env()
    say_target(f"local stack ({stack.home})")
    try:
        rate_list = tuple(float(r) for r in (rates or ("50" if smoke else _FULL_RATES)).split(",") if r.strip())
        selected = peer_names([p.strip() for p in peers.split(",") if p.strip()])
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    chosen_format = ChangeFormat(change_format)
    if chosen_format is not ChangeFormat.JSON and selected:
        raise click.BadParameter(
            f"the peers ({', '.join(selected)}) read JSON with schemas: pass --peers '' with --format {change_format}"
        )
    sink_env = {key: os.environ[key] for key in _SINK_SETTINGS if os.environ.get(key)}
    if chosen_format is ChangeFormat.AVRO:
        stack = dataclasses.replace(stack, change_format=chosen_format.value)
        sink_env["SCHEMA_REGISTRY_URL"] = stack.registry_url
    plan = BenchPlan(
        source_rows=source_rows or (420 if smoke else 1_000_000),
        freshness=FreshnessPlan(
            rates=rate_list,
            duration_s=seconds_per_rate or (3.0 if smoke else 30.0),
            probe_interval_s=probe_interval,
            probe_timeout_s=probe_timeout,
            drain_timeout_s=180.0,
            warmup_s=warmup_seconds if warmup_seconds is not None else (1.0 if smoke else 30.0),
        ),
        backlog_changes=backlog_changes if backlog_changes is not None else (200 if smoke else 200_000),
        peers=selected,
        smoke=smoke,
        workdir=json_path.parent.resolve(),
        keep_sources=keep,
        cdcsync=with_cdcsync,
        sink_env=sink_env,
        change_format=chosen_format,
    )
    result = run_bench(stack, plan, lambda line: click.echo(line, err=True))
    write_json(result, json_path)
    click.echo(render_table(result))
    click.echo("\ncommit-to-visible per rate, ms:")
    click.echo(render_freshness(result))
    click.echo()
    click.echo("cdcsync per stage, p50 (p99) ms:")
    click.echo(render_stages(result))
    click.echo(f"\nJSON: {json_path}")


@bench.command("apply")
@click.option(
    "--sizes",
    default="1000000,10000000",
    show_default=True,
    help="Calendar sizes, rows, comma-separated: the same batches are timed on each.",
)
@click.option(
    "--batch",
    "batch_changes",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Changes of the mix in each batch.",
)
@click.option("--batches", type=click.IntRange(min=1), default=10, show_default=True, help="Batches timed per size.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".cdcsync/bench/apply-scaling.json"),
    help="Where the results go.",
)
def apply_scaling(sizes: str, batch_changes: int, batches: int, json_path: Path) -> None:
    """Time the sink's apply of batches of the change mix on calendars of each size (the local stack's
    PostgreSQL, started if it is not running; `cdcsync stack down` stops it).

    A synthetic replica and its calendar are built in a database of their own per size (dropped after),
    so it needs no connector and no Kafka; the sink's own CalendarWriter applies each batch in one
    transaction. Shows whether a batch's cost grows with the batch or with the calendar.
    """
    stack = StackSettings.from_env()
    say_target(f"local stack ({stack.home})")
    try:
        size_list = [int(size) for size in sizes.split(",") if size.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sizes") from None
    postgres = LocalPostgres(stack)  # all it needs: no connector, no Kafka
    postgres.start(timeout=300.0)
    postgres.bootstrap()
    result = measure_apply_scaling(
        StackEndpoints(stack).admin_url(), size_list, batch_changes, batches, lambda line: click.echo(line, err=True)
    )
    result["machine"] = machine()
    write_json(result, json_path)
    click.echo(render_apply_scaling(result))
    click.echo(f"\nJSON: {json_path}")
