"""Peer: Flink SQL computes the calendar itself, from ``postgres-cdc`` sources into a JDBC upsert sink.

The job (``flink_calendar`` holds its statements, ``flink_job`` runs them) is a local mini-cluster: the
Flink venv's python (``make bench-peers``) starts PyFlink's gateway JVM with a modest heap, which runs
the job in-process. Both run in a session of their own, so ``stop`` ends the pair with one signal.

Each source table gets a replication slot of its own (``bflink_<run>_<table>``, cluster-wide names),
and each source database a publication of its own that lists only its captured tables (created
here; Flink CDC would otherwise create ``dbz_publication FOR ALL TABLES``). ``stop`` drops both once
the job is gone. The target is ``calendar.calendar_entries`` (the rule columns) in the scratch database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from cdcsync.pipeline.bench.peer import PeerContext, PeerUnavailable, ProgressWatch
from cdcsync.pipeline.bench.peers import flink_calendar as fc
from cdcsync.pipeline.bench.peers.artifacts import FLINK_CDC_VERSION, FLINK_VERSION, PeerArtifacts, flink_python
from cdcsync.pipeline.bench.process_memory import session_pids, session_rss
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.sink.calendar_columns import KEY_COLUMN_NAMES, RULE_COLUMNS

NAME = "Flink SQL"
HEAP = "-Xmx1g"  # the state is in RocksDB, off the heap; the heap holds the sources' queues and sink buffers
JOB_SCRIPT = Path(__file__).with_name("flink_job.py")
_STOP_TIMEOUT_S = 30.0
_SLOT_DROP_TIMEOUT_S = 60.0
LOG4J = """\
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = FileAppender
appender.file.name = FileAppender
appender.file.type = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-40c %x - %m%n
"""


def end_session(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group of ``process`` (the driver and its gateway JVM), SIGKILL to what
    outlives ``_STOP_TIMEOUT_S``; returns once none of the session is left."""

    def gone() -> bool:
        return process.poll() is not None and not session_pids(process.pid)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            wait_until(gone, _STOP_TIMEOUT_S, "the Flink processes to exit")
            return
    raise RuntimeError(f"the Flink processes {session_pids(process.pid)} outlived SIGKILL")


def database(url: str) -> fc.Database:
    info = conninfo_to_dict(url)
    return fc.Database(
        str(info.get("host", "127.0.0.1")),
        int(str(info.get("port", 5432))),
        str(info["user"]),
        str(info.get("password", "")),
        str(info["dbname"]),
    )


class FlinkSqlPeer:
    """Flink SQL as a bench peer; see the module docstring."""

    name = NAME

    def __init__(self) -> None:
        self._ctx: PeerContext | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started = 0.0
        self._load_seconds: float | None = None
        self._load_rows = 0
        self._first_row_seconds: float | None = None
        self._peak_rss = 0
        self._peak_jvm_rss = 0

    @property
    def ctx(self) -> PeerContext:
        if self._ctx is None:
            raise RuntimeError("the peer was not started")
        return self._ctx

    @property
    def log_file(self) -> Path:
        return self.ctx.workdir / "flink.log"

    @property
    def jvm_log(self) -> Path:
        return self.ctx.workdir / "flink-jvm.log"

    def slot(self, table: str) -> str:
        return f"bflink_{self.ctx.run_id}_{table}"

    @property
    def publication(self) -> str:
        return f"bflink_{self.ctx.run_id}"

    def start(self, ctx: PeerContext) -> None:
        self._ctx = ctx
        python = flink_python()
        artifacts = PeerArtifacts(ctx.stack)
        artifacts.ensure()
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        self._create_target()
        self._create_publications()
        conf_dir = ctx.workdir / "flink-conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "log4j.properties").write_text(LOG4J.replace("{log_file}", str(self.jvm_log)), encoding="utf-8")
        spec = {"config": self.job_config(artifacts), "statements": self._statements(), "insert": fc.CALENDAR_INSERT}
        env = {
            **os.environ,
            "JVM_ARGS": f"-Xms128m {HEAP} -Duser.timezone=UTC",
            "FLINK_LOG_DIR": str(ctx.workdir),
            "LOG4J_PROPERTIES": str(conf_dir / "log4j.properties"),
        }
        self._log = self.log_file.open("ab")
        self._started = time.monotonic()
        self._process = subprocess.Popen(
            [str(python), str(JOB_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ctx.workdir,
            start_new_session=True,
        )
        if self._process.stdin is None:
            raise RuntimeError("the job process has no stdin")
        self._process.stdin.write(json.dumps(spec).encode())
        self._process.stdin.close()

    def job_config(self, artifacts: PeerArtifacts) -> dict[str, str]:
        return {
            **fc.JOB_CONFIG,
            "pipeline.jars": ";".join(jar.resolve().as_uri() for jar in artifacts.flink_jars),
            # The JobManager's memory holds at most 5 MB of a checkpoint; the join state is larger.
            "execution.checkpointing.storage": "filesystem",
            "execution.checkpointing.dir": (self.ctx.workdir / "checkpoints").resolve().as_uri(),
            "state.backend.rocksdb.localdir": str((self.ctx.workdir / "rocksdb").resolve()),
        }

    def wait_ready(self, timeout: float) -> None:
        """Until the target holds as many rows as the rules give; fails at once if the job exits, and once the
        target stops changing short of that (``PeerStalled``)."""
        expected = self.expected_rows()
        progress = ProgressWatch(f"{NAME} (logs: {self.jvm_log}, {self.log_file})")

        def loaded() -> bool:
            self._check_alive()
            self._sample_rss()
            rows = self.target_rows()
            if rows and self._first_row_seconds is None:
                self._first_row_seconds = time.monotonic() - self._started
            progress.note(rows, expected)
            return rows == expected

        try:
            wait_until(loaded, timeout, f"{NAME} to load the {expected:,} calendar rows of the rules", interval=0.5)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; it had {progress.reached()}") from exc
        if self._load_seconds is None:  # the initial load; later calls only wait
            self._load_seconds = time.monotonic() - self._started
            self._load_rows = expected

    def expected_rows(self) -> int:
        """The calendar's row count by the rules, on the sources as they are now."""
        return fc.expected_rows(self.ctx.source_urls)

    def visible_query(self) -> sql.Composable:
        return sql.SQL(
            "SELECT 1 FROM calendar.calendar_entries"
            " WHERE entry_key = 'lecture:' || %(lecture_id)s::text AND title = %(title)s LIMIT 1"
        )

    def target_rows(self) -> int:
        with psycopg.connect(self.ctx.target_url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT count(*) FROM calendar.calendar_entries").fetchone()
        return 0 if row is None else int(row[0])

    def stop(self) -> None:
        """End the job's process session, then drop its slots and publications."""
        if self._ctx is None:
            return
        if self._process is not None:
            end_session(self._process)
        if self._log is not None:
            self._log.close()
        self._drop_slots_and_publications()

    def rss_bytes(self) -> int | None:
        """The resident memory of the job's process session: the gateway JVM and the python that drives it."""
        if self._process is None or self._process.poll() is not None:
            return None
        self._sample_rss()
        return session_rss(self._process.pid)

    def stats(self) -> Mapping[str, Any]:
        rate = self._load_rows / self._load_seconds if self._load_seconds else None
        streaming = None
        if self._load_seconds and self._first_row_seconds is not None and self._load_seconds > self._first_row_seconds:
            streaming = self._load_rows / (self._load_seconds - self._first_row_seconds)
        return {
            "version": f"apache-flink {FLINK_VERSION}, flink-sql-connector-postgres-cdc {FLINK_CDC_VERSION}",
            "job_config": dict(fc.JOB_CONFIG),
            "cdc_options": dict(fc.CDC_OPTIONS),
            "sink_options": dict(fc.SINK_OPTIONS),
            "heap": HEAP,
            "initial_load_rows": self._load_rows,
            "initial_load_seconds": self._load_seconds,
            "initial_load_rows_per_s": rate,  # from start, the JVM's start-up included
            "seconds_to_first_row": self._first_row_seconds,
            "rows_per_s_after_first_row": streaming,
            "peak_rss_bytes": self._peak_rss,  # the JVM and the python that drives it
            "peak_jvm_rss_bytes": self._peak_jvm_rss,
            "log": str(self.log_file) if self._ctx is not None else None,
        }

    # -- internals ---------------------------------------------------------------------------------------

    def _statements(self) -> list[str]:
        statements = []
        for service, table, _, _ in fc.SOURCES:
            db = database(self.ctx.source_urls[service])
            statements.append(fc.source_ddl(service, table, db, self.slot(table), self.publication))
        statements.append(fc.sink_ddl(database(self.ctx.target_url)))
        statements.append(fc.ATTENDS_VIEW)
        return statements

    def _create_target(self) -> None:
        columns = sql.SQL(", ").join(column.definition() for column in RULE_COLUMNS)
        key = sql.SQL(", ").join(map(sql.Identifier, KEY_COLUMN_NAMES))
        with psycopg.connect(self.ctx.target_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS calendar")
            conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS calendar.calendar_entries ({}, PRIMARY KEY ({}))").format(
                    columns, key
                )
            )

    def _create_publications(self) -> None:
        for service, tables in fc.SERVICE_TABLES.items():
            names = sql.SQL(", ").join(sql.Identifier("public", t) for t in tables)
            with psycopg.connect(self.ctx.source_urls[service], autocommit=True, connect_timeout=10) as conn:
                conn.execute(
                    sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(sql.Identifier(self.publication), names)
                )

    def _drop_slots_and_publications(self) -> None:
        prefix = f"bflink_{self.ctx.run_id}_"
        for service in fc.SERVICE_TABLES:
            with psycopg.connect(self.ctx.source_urls[service], autocommit=True, connect_timeout=10) as conn:

                def dropped(conn: psycopg.Connection[Any] = conn) -> bool:
                    rows = conn.execute(
                        "SELECT slot_name, active_pid FROM pg_replication_slots"
                        " WHERE database = current_database() AND starts_with(slot_name, %s)",
                        (prefix,),
                    ).fetchall()
                    for slot, active_pid in rows:
                        if active_pid is None:
                            with contextlib.suppress(psycopg.errors.ObjectInUse):
                                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return not rows

                wait_until(dropped, _SLOT_DROP_TIMEOUT_S, f"the {service} slots of {NAME} dropped", interval=0.5)
                conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(self.publication)))

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise PeerUnavailable(
                f"the Flink job exited with code {self._process.returncode}: {self._last_error()}"
                f" (logs: {self.jvm_log}, {self.log_file})"
            )

    def _last_error(self) -> str:
        lines = []
        for log in (self.jvm_log, self.log_file):
            with contextlib.suppress(FileNotFoundError):
                lines += log.read_text(encoding="utf-8", errors="replace").splitlines()
        causes = [line for line in lines if line.startswith("Caused by") or "Exception:" in line]
        return (causes[-1] if causes else (lines[-1] if lines else "empty log")).strip()[:400]

    def _sample_rss(self) -> None:
        if self._process is not None:
            self._peak_rss = max(self._peak_rss, session_rss(self._process.pid))
            self._peak_jvm_rss = max(self._peak_jvm_rss, session_rss(self._process.pid, "java"))
