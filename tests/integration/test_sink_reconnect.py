"""The sink outlives its calendar database's connections: killed backends, a database that
refuses connections for a while. It stays up, says it is reconnecting, and resumes exactly
from the offsets it stored: the calendar ends equal to the rules, no offset applied twice.

Its own sink process, consumer group, dead-letter topic and fresh calendar database; it only
reads the shared change topics, while a workload changes the sources.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cdcsync.pipeline.stack.own_connectors import delete_topics
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.calendar_database import APPLICATION_NAME
from cdcsync.sink.sink_state import STATE_FILE_ENV, SinkState, read_state
from tests.integration.conftest import SinkProcess, assert_calendar_matches_rules, assert_ledger_clean, until
from tests.support.background_workload import BackgroundWorkload

ROUNDS = int(os.environ.get("CDCSYNC_BACKEND_KILLS", "5"))


@dataclasses.dataclass
class OwnSink:
    process: SinkProcess
    database: str
    group: str
    state_file: Path

    @property
    def targets(self) -> Targets:
        return self.process.targets

    def applied_batches(self) -> int:
        """Ledger rows of this sink's group (0 before its schema exists)."""
        with psycopg.connect(self.targets.sink_db_url, connect_timeout=5) as conn:
            try:
                row = conn.execute(
                    "SELECT count(*) FROM cdcsync.applied_offset_ranges WHERE group_id = %s", (self.group,)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return int(row[0]) if row else 0

    def terminate_backends(self, admin_url: str) -> int:
        """pg_terminate_backend on this sink's connections only (its database, its application name)."""
        with psycopg.connect(admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (self.database, APPLICATION_NAME),
            ).fetchall()
        return sum(1 for (terminated,) in rows if terminated)


@pytest.fixture
def own_sink(pipeline: Targets, fresh_database: str, tmp_path: Path) -> Iterator[OwnSink]:
    suffix = uuid.uuid4().hex[:10]
    group, dead_letters = f"test-reconnect-{suffix}", f"test-reconnect-dlq-{suffix}"
    targets = pipeline.with_values(CALENDAR_DB_URL=fresh_database, CDCSYNC_SINK_DB_URL=fresh_database)
    state_file = tmp_path / "sink-state.json"
    env = {"CDCSYNC_SINK_GROUP": group, "CDCSYNC_DLQ_TOPIC": dead_letters, STATE_FILE_ENV: str(state_file)}
    process = SinkProcess(targets, tmp_path, env=env)
    process.start()
    try:
        yield OwnSink(process, str(conninfo_to_dict(fresh_database)["dbname"]), group, state_file)
    finally:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)
        delete_topics(pipeline.kafka_bootstrap_servers, lambda topic: topic == dead_letters)


def _admin_url(fresh_database: str) -> str:
    """The same role on the maintenance database: it may terminate backends and alter the fresh one."""
    return make_conninfo(fresh_database, dbname="postgres")


def _reconnecting(state_file: Path) -> SinkState | None:
    state = read_state(state_file)
    return state if state is not None and state.state == "reconnecting" else None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.fault
def test_sink_survives_killed_backends_and_resumes_exactly(own_sink: OwnSink, fresh_database: str) -> None:
    admin = _admin_url(fresh_database)
    until("the sink's first batch", lambda: own_sink.applied_batches() or None, timeout=120)
    terminated = 0
    with BackgroundWorkload(own_sink.targets.source_urls, seed=4242) as workload:
        # First a database that refuses connections for a while: the sink must say it is reconnecting.
        database = sql.Identifier(own_sink.database)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(database))
            try:
                terminated += own_sink.terminate_backends(admin)
                state = until("the state file to say reconnecting", lambda: _reconnecting(own_sink.state_file))
                assert [lost.dependency for lost in state.lost] == ["calendar database"]
                assert "calendar database lost" in state.describe()
            finally:
                conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(database))
        # Then backends killed at arbitrary moments, each time after the sink applied another batch.
        for _ in range(ROUNDS):
            before = until("the sink to be connected", lambda: own_sink.applied_batches() or None)
            until("another applied batch", lambda b=before: own_sink.applied_batches() > b or None)  # type: ignore[misc]
            terminated += own_sink.terminate_backends(admin)
    assert own_sink.process.process is not None and own_sink.process.process.poll() is None, "the sink exited"
    assert workload.applied > 50 and terminated >= ROUNDS
    assert_calendar_matches_rules(own_sink.targets, timeout=180)
    assert_ledger_clean(fresh_database, own_sink.group)
    log = own_sink.process.log_text()
    outages, recoveries = log.count("calendar database unavailable"), log.count("calendar database back after")
    assert 1 <= outages <= terminated and recoveries == outages, (outages, recoveries, terminated)
    assert own_sink.process.stop() == 0
    changes = workload.applied
    print(f"\n{terminated} backends terminated, {outages} outages, {changes} source transactions, ledger clean")


@pytest.mark.integration
def test_a_refused_login_ends_the_sink_with_its_exit_code(pipeline: Targets) -> None:
    wrong = make_conninfo(pipeline.sink_db_url, password="not-the-password")
    env = {**pipeline.sink_process_env(), "CDCSYNC_SINK_DB_URL": wrong}
    result = subprocess.run(
        [sys.executable, "-m", "cdcsync", "sink", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 20, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "sink stopped" in line and "Fix: check the role, password and database name in CDCSYNC_SINK_DB_URL" in line
    assert "not-the-password" not in result.stderr
