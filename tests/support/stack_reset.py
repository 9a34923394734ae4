"""The test stack starts every session from a known state.

By default whatever an earlier session left under the test home is stopped, and the home is emptied:
the parts by their pid files, the test sinks (``run/test-sink*.pid``) and a background sink, then any
process still listening on a test port whose command line names the test home (one whose pid file was
lost). A process of anyone else on a test port is never signalled: the session fails, naming it. The
resolved jars (``jvm``) are kept: a cache that ``JvmArtifacts`` checks against its stamp, not state.

With ``CDCSYNC_KEEP_TEST_STACK=1`` a running stack is reused when it is fit, and wiped the same way
when it is poisoned: a part down, a shipped connector missing, not RUNNING or FAILED, a change topic
missing, or a calendar differing from the rules (the session that kept it ended with the calendar
caught up, so a difference means lost changes, not lag; no calendar yet is fine).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import psutil
import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cdcsync.pipeline.errors import CdcsyncError, StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.background_sink import BackgroundSink
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.processes import ManagedProcess
from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.bucketed import verify_bucketed
from cdcsync.pipeline.verification.reports import render_report
from cdcsync.pipeline.verification.source_reader import CalendarMissing
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.support.pipeline_guard import (
    interrupted_snapshot_problems,
    shipped_connector_problems,
    shipped_connector_states,
)

logger = logging.getLogger(__name__)

TEST_SINK = "test-sink"  # the pid file name of the sink the integration fixtures start
TEST_AVRO_SINK = "test-sink-avro"  # the sink of the Avro pipeline the integration fixtures start
KEPT = ("jvm",)  # what a wipe leaves in the home
_STOP_TIMEOUT_S = 30.0


def test_ports(settings: StackSettings) -> tuple[int, ...]:
    return (settings.postgres_port, settings.kafka_port, settings.kafka_controller_port, settings.connect_port)


def stop_leftovers(settings: StackSettings) -> list[str]:
    """Stop everything an earlier session left running under ``settings.home``; what was stopped."""
    stopped = [name for name in (TEST_SINK, TEST_AVRO_SINK) if ManagedProcess(name, settings.home).stop()]
    if BackgroundSink(settings.home).stop():
        stopped.append("sink")
    stopped += [name for name, was_running in LocalStack(settings).down() if was_running]
    for process in _listeners(settings):
        if not _names_home(process, settings.home):
            ports = ", ".join(map(str, test_ports(settings)))
            raise StackError(
                "test stack",
                f"pid {process.pid} ({' '.join(_cmdline(process))[:200]}) listens on a test port but is not "
                f"the test stack's: stop it, or give the tests other ports than {ports}",
            )
        stopped.append(f"pid {process.pid} without a pid file")
        process.terminate()
        _, alive = psutil.wait_procs([process], timeout=_STOP_TIMEOUT_S)
        for survivor in alive:
            survivor.kill()
        psutil.wait_procs(alive, timeout=10)
    return stopped


def wipe_home(home: Path) -> None:
    """Empty ``home``, keeping only the entries in ``KEPT``."""
    if not home.is_dir():
        return
    for entry in home.iterdir():
        if entry.name in KEPT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def kept_stack_problems(settings: StackSettings) -> list[str]:
    """Why the stack under ``settings.home`` may not be reused, one line each; [] if it is fit."""
    down = [f"{part.name} not running ({part.detail})" for part in LocalStack(settings).status() if not part.running]
    if down:
        return down
    targets = Targets.local_stack(settings)
    states = shipped_connector_states(targets.connect_url)
    problems = shipped_connector_problems(states) + interrupted_snapshot_problems(targets)
    problems += [
        f"{name} is {state.state}, not RUNNING"
        for name, state in states.items()
        if state is not None and not state.running and not state.failed
    ]
    try:
        topics = AdminClient({"bootstrap.servers": targets.kafka_bootstrap_servers}).list_topics(timeout=10).topics
    except KafkaException as exc:
        return [*problems, f"Kafka does not answer ({exc})"]
    problems += [f"topic {t} missing" for t in (x.default_topic() for x in SOURCE_TABLES) if t not in topics]
    try:
        report = verify_bucketed(targets).report
    except CalendarMissing:  # no sink ran yet: the sink fixture creates it and catches up
        return problems
    if not report.clean:
        problems += render_report(report, 3)
    return problems


def reset_test_stack(settings: StackSettings, keep: bool) -> bool:
    """Make the test home a known state; True if a running, fit stack is reused (only when ``keep``)."""
    if keep:
        try:
            problems = kept_stack_problems(settings)
        except (CdcsyncError, psycopg.Error) as exc:
            problems = [str(exc)]
        if not problems:
            logger.info("reusing the kept test stack under %s", settings.home)
            return True
        logger.warning("the kept test stack is not fit, starting afresh: %s", "; ".join(problems))
    stopped = stop_leftovers(settings)
    if stopped:
        logger.warning("stopped what an earlier session left running: %s", ", ".join(stopped))
    wipe_home(settings.home)
    return False


def _listeners(settings: StackSettings) -> list[psutil.Process]:
    """The processes listening on a test port, in stop order: Connect's first, PostgreSQL's last."""
    order = test_ports(settings)[::-1]
    by_port = {
        c.laddr.port: c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in order and c.pid is not None
    }
    processes: dict[int, psutil.Process] = {}
    for pid in (by_port[port] for port in order if port in by_port):
        try:
            processes.setdefault(pid, psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return list(processes.values())


def _names_home(process: psutil.Process, home: Path) -> bool:
    """Whether the command line names ``home`` or a path inside it (a config file, a data directory)."""
    inside = f"{home}{os.sep}"
    return any(arg == str(home) or inside in arg or arg.endswith(f"={home}") for arg in _cmdline(process))


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []
