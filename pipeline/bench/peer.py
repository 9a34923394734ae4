"""What the bench needs of a pipeline it measures: the ``Peer`` protocol, and the context it starts in.

cdcsync is one peer (``pipeline.bench.cdcsync_peer``); the Debezium JDBC sink connector and Flink SQL
are others (``pipeline.bench.peers``). The bench owns the sources: three service databases of its own
with their change topics, on the stack's servers. A peer reads them (the topics, or the databases
themselves) and writes into its own scratch database, which the bench created empty for it.

A peer's life in one run: ``start`` -> ``wait_ready`` (its initial load is complete) -> the bench
drives changes and polls ``visible_query`` in the target database -> ``stop``. ``rss_bytes`` is
sampled by the bench while the peer works; ``stats`` goes into the JSON as it is.

Each peer other than cdcsync is a class in a module under ``cdcsync.pipeline.bench.peers``, named in
``PEER_CLASSES`` and made with no arguments. The bench imports it by name: one missing from the build is
reported as such, like any peer that cannot run.

A peer that cannot run here raises ``PeerUnavailable`` (from any method) with the exact reason; the
bench reports that reason in the table and the JSON instead of numbers. One whose target stops changing
short of its goal raises ``PeerStalled`` (``ProgressWatch``) instead of waiting out the load's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from psycopg import sql

from cdcsync.pipeline.settings import StackSettings

# The peers beside cdcsync: the name the bench's --peers option takes -> "module:class" of a Peer made with no
# arguments.
PEER_CLASSES: Mapping[str, str] = {
    "debezium-jdbc": "cdcsync.pipeline.bench.peers.jdbc_sink:JdbcSinkPeer",
    "flink-sql": "cdcsync.pipeline.bench.peers.flink_sql:FlinkSqlPeer",
}


class PeerUnavailable(Exception):
    """This peer cannot run here; ``reason`` says exactly why (shown in the table and the JSON)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


STALL_S = 240.0  # no change in a peer's target for this long, short of its goal: it has stalled


class PeerStalled(Exception):
    """A peer's target stopped changing short of its goal (the JSON and the table say where)."""


@dataclass
class ProgressWatch:
    """Raises ``PeerStalled`` once the count ``note`` is given has not changed for ``stall_s`` short of the goal."""

    what: str
    stall_s: float = STALL_S
    _last: int | None = None
    _goal: int | None = None
    _since: float = 0.0

    def reached(self) -> str:
        """How far the count got, for a failure's reason: "X of Y rows"."""
        if self._last is None or self._goal is None:
            return "no count taken"
        return f"{self._last:,} of {self._goal:,} rows"

    def note(self, count: int, goal: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._goal = goal
        if count != self._last:
            self._last, self._since = count, now
        elif count != goal and now - self._since >= self.stall_s:
            raise PeerStalled(f"{self.what} stalled at {self.reached()}: no change for {now - self._since:.0f}s")


@dataclass(frozen=True, repr=False)  # URLs hold the stack's password: no generated repr
class SourceTopic:
    """One captured source table and the change topic Debezium writes it to."""

    service: str  # course | attendance | assignment
    table: str  # courses | lectures | enrollments | attendance_windows | assignments
    topic: str


@dataclass(frozen=True, repr=False)
class PeerContext:
    """Where a peer's inputs and output are.

    - ``stack``: the local stack's settings (ports, home, password), for peers that start JVM parts;
    - ``source_urls``: service -> libpq URL of the bench's source database (as the admin role,
      which may create replication slots and publications);
    - ``source_databases``: service -> database name (for CDC connectors that name a database);
    - ``topics``: the five change topics (JsonConverter with ``schemas.enable=true``, or Avro with ``--format avro``);
    - ``kafka_bootstrap`` / ``connect_url``: the stack's Kafka and Kafka Connect;
    - ``target_url``: libpq URL of an empty database of the peer's own, as the admin role;
    - ``target_database``: its name;
    - ``workdir``: a directory of the peer's own for files, logs and downloads (kept after the run);
    - ``run_id``: unique per bench run (``[a-z0-9_]``), for names the peer creates (groups, connectors).
    """

    stack: StackSettings
    source_urls: Mapping[str, str]
    source_databases: Mapping[str, str]
    topics: tuple[SourceTopic, ...]
    kafka_bootstrap: str
    connect_url: str
    target_url: str
    target_database: str
    workdir: Path
    run_id: str
    options: Mapping[str, str] = field(default_factory=dict)  # bench options a peer may read (e.g. "smoke": "1")

    def topic(self, table: str) -> str:
        return next(t.topic for t in self.topics if t.table == table)


class Peer(Protocol):
    """A pipeline under measurement. See the module docstring for its life in one run."""

    name: str  # shown in the table: "cdcsync", "Debezium JDBC sink", "Flink SQL"

    def start(self, ctx: PeerContext) -> None:
        """Start consuming the sources into ``ctx.target_url``; returns without waiting."""

    def wait_ready(self, timeout: float) -> None:
        """Block until the initial load is complete (every source row reflected); TimeoutError past ``timeout``."""

    def visible_query(self) -> sql.Composable:
        """A query on the target database with two placeholders, ``%(lecture_id)s`` and ``%(title)s``, that
        returns a row once the lecture's new title is visible there (the probe polls it)."""

    def target_rows(self) -> int:
        """How many rows the peer's target holds now (the initial load's rows/s is computed from it)."""

    def stop(self) -> None:
        """Stop everything the peer started, and remove what it created outside its target and workdir."""

    def rss_bytes(self) -> int | None:
        """Resident memory of the peer's own processes now (None if it has none of its own)."""

    def stats(self) -> Mapping[str, Any]:
        """Anything worth keeping in the JSON: versions, settings used, counters."""
