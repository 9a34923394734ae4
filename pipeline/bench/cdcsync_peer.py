"""cdcsync as a bench peer: its sink daemon in a subprocess, with a consumer group and calendar database of its own.

Besides the ``Peer`` protocol it offers what only cdcsync's own measurements need: ``pause`` and ``resume``
(the backlog: stop the process, start it again on the same group), ``caught_up`` (its offsets stored in
the calendar database have reached the topics' ends) and ``metrics`` (the daemon's /metrics, parsed).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import psycopg
import requests
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from cdcsync.pipeline.bench.peer import PeerContext, PeerUnavailable
from cdcsync.pipeline.bench.process_memory import rss_bytes
from cdcsync.pipeline.bench.sources import end_offsets
from cdcsync.pipeline.stack.processes import wait_until
from cdcsync.pipeline.targets import PROFILE_ENV
from cdcsync.sink.source_tables import SERVICES

_STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    """A loopback port nobody listens on now (for the sink's /metrics)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CdcsyncPeer:
    """The sink daemon writing ``calendar.calendar_entries`` in the peer's target database."""

    name = "cdcsync"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._extra_env = dict(env or {})  # sink settings the bench passes on (CDCSYNC_SINK_BATCH_MAX, ...)
        self._ctx: PeerContext | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port = free_port()

    @property
    def ctx(self) -> PeerContext:
        if self._ctx is None:
            raise RuntimeError("the cdcsync peer has not been started")
        return self._ctx

    @property
    def group(self) -> str:
        return f"{self.ctx.run_id}-cdcsync"

    @property
    def log_file(self) -> Path:
        return self.ctx.workdir / "sink.log"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/metrics"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, ctx: PeerContext) -> None:
        self._ctx = ctx
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        self.resume()

    def resume(self) -> None:
        """Start the daemon (again): it goes on from the offsets stored in its calendar database."""
        ctx = self.ctx
        env = {
            **{key: value for key, value in os.environ.items() if key != PROFILE_ENV},  # explicit targets only
            "KAFKA_BOOTSTRAP_SERVERS": ctx.kafka_bootstrap,
            "CDCSYNC_SINK_DB_URL": ctx.target_url,
            "CDCSYNC_SINK_GROUP": self.group,
            "CDCSYNC_DLQ_TOPIC": f"{ctx.run_id}.cdcsync.dlq",
            "CDCSYNC_SINK_HTTP": f"127.0.0.1:{self._port}",
            # The run's connectors write <run id>_<service>.public.<table>.
            "CDCSYNC_TOPIC_PREFIXES": ",".join(f"{service}={ctx.run_id}_{service}" for service in SERVICES),
            **self._extra_env,
        }
        self._log = self.log_file.open("ab")
        argv = [sys.executable, "-m", "cdcsync", "sink", "run"]
        self._process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def pause(self) -> None:
        """SIGTERM: the daemon finishes its batch, leaves the group and exits."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            tail = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise PeerUnavailable(f"the sink exited with code {self._process.returncode}: {' | '.join(tail)}")

    def caught_up(self, end_offsets: Mapping[str, int]) -> bool:
        """Whether the offsets the sink stored reach ``end_offsets`` (topic -> high watermark, partition 0)."""
        self.check_alive()
        wanted = {topic: end for topic, end in end_offsets.items() if end > 0}
        stored = self.stored_offsets()
        return stored is not None and all(stored.get(topic, 0) >= end for topic, end in wanted.items())

    def stored_offsets(self) -> dict[str, int] | None:
        """Topic -> the next offset the sink stored (partition 0); None before the daemon created its tables."""
        try:
            with psycopg.connect(self.ctx.target_url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT topic, next_offset FROM cdcsync.consumer_offsets WHERE group_id = %s", (self.group,)
                ).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return None
        return {str(topic): int(offset) for topic, offset in rows}

    def wait_ready(self, timeout: float) -> None:
        ends = end_offsets(self.ctx.kafka_bootstrap, [t.topic for t in self.ctx.topics])
        wait_until(lambda: self.caught_up(ends), timeout, "the cdcsync sink to apply the initial snapshot")

    def visible_query(self) -> sql.Composable:
        return sql.SQL(
            "SELECT 1 FROM calendar.calendar_entries"
            " WHERE entry_key = 'lecture:' || %(lecture_id)s::text AND title = %(title)s LIMIT 1"
        )

    def target_rows(self) -> int:
        with psycopg.connect(self.ctx.target_url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM calendar.calendar_entries").fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        self.pause()

    def rss_bytes(self) -> int | None:
        return None if self._process is None else rss_bytes(self._process.pid)

    def metrics(self) -> dict[str, Any]:
        """The daemon's /metrics: sample name -> value (labels dropped, summed), and histogram buckets by ``le``."""
        text = requests.get(self.metrics_url, timeout=5).text
        values: dict[str, Any] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets = values.setdefault(sample.name, {})
                    buckets[float(sample.labels["le"])] = buckets.get(float(sample.labels["le"]), 0.0) + sample.value
                else:
                    values[sample.name] = values.get(sample.name, 0.0) + sample.value
        return values

    def stats(self) -> Mapping[str, Any]:
        settings = {k: v for k, v in self._extra_env.items() if k.startswith("CDCSYNC_SINK_")}
        return {"group": self.group, "settings": settings, "log": str(self.log_file)}
