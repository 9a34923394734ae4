"""The Flink SQL peer's statements: five ``postgres-cdc`` sources, the calendar rules as one query, a JDBC sink.

The rules of the calendar-domain spec, as far as Flink SQL takes them:

- a user attends a course: ``enrollments`` (status ``active``) joined with ``courses`` (it exists);
- one ``lecture`` row per non-cancelled lecture of an attended course, one ``attendance`` row per window
  of such a lecture, one ``assignment`` row per published assignment: three regular (unbounded-state)
  joins, ``UNION ALL``-ed into one upsert on ``(user_id, entry_key)``; a row whose condition stops
  holding is retracted, and the JDBC sink deletes it.

Where it differs from the spec:

- the sources keep DEFAULT replica identity, so an UPDATE carries no before image: the sources read in
  ``changelog-mode=upsert`` (after images only; Flink adds a ChangelogNormalize per source that keeps
  the last row per key in state, which makes the retractions the joins need). With the default
  ``changelog-mode=all`` Flink CDC needs REPLICA IDENTITY FULL;
- an UPDATE that leaves a TOASTed ``assignments.description`` untouched arrives with Debezium's
  placeholder ``__debezium_unavailable_value``, which Flink writes into ``details`` as it is;
- no ``source_committed_at`` / ``synced_at`` columns (the target holds the rule columns only), and no
  transaction boundaries: a change is applied per sink flush, so a reader may see intermediate states.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from cdcsync.sink.calendar_columns import KEY_COLUMN_NAMES, RULE_COLUMNS

TARGET_TABLE = "calendar.calendar_entries"
# The JDBC sink has no TIMESTAMP_LTZ: it writes TIMESTAMP(6), the UTC wall time (``table.local-time-zone`` and
# the JVM's time zone are UTC), into the target's timestamptz columns.
FLINK_TYPES = {"bigint": "BIGINT", "text": "STRING", "timestamptz": "TIMESTAMP(6)", "numeric(6,2)": "DECIMAL(6, 2)"}

# The source tables, as Flink declares them: (service, table, columns, primary key).
SOURCES: tuple[tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    ("course", "courses", (("id", "BIGINT"), ("title", "STRING")), ("id",)),
    (
        "course",
        "lectures",
        (
            ("id", "BIGINT"),
            ("course_id", "BIGINT"),
            ("title", "STRING"),
            ("starts_at", "TIMESTAMP_LTZ(6)"),
            ("ends_at", "TIMESTAMP_LTZ(6)"),
            ("room", "STRING"),
            ("cancelled", "BOOLEAN"),
        ),
        ("id",),
    ),
    (
        "course",
        "enrollments",
        (("course_id", "BIGINT"), ("user_id", "BIGINT"), ("status", "STRING")),
        ("course_id", "user_id"),
    ),
    (
        "attendance",
        "attendance_windows",
        (
            ("id", "BIGINT"),
            ("lecture_id", "BIGINT"),
            ("opens_at", "TIMESTAMP_LTZ(6)"),
            ("closes_at", "TIMESTAMP_LTZ(6)"),
        ),
        ("id",),
    ),
    (
        "assignment",
        "assignments",
        (
            ("id", "BIGINT"),
            ("course_id", "BIGINT"),
            ("title", "STRING"),
            ("description", "STRING"),
            ("max_score", "DECIMAL(6, 2)"),
            ("opens_at", "TIMESTAMP_LTZ(6)"),
            ("due_at", "TIMESTAMP_LTZ(6)"),
            ("published", "BOOLEAN"),
        ),
        ("id",),
    ),
)
SERVICE_TABLES = {service: tuple(t for s, t, _, _ in SOURCES if s == service) for service, _, _, _ in SOURCES}

# Latency settings, with the documentation they follow (docs/bench-peers.md cites them in full).
CDC_OPTIONS: Mapping[str, str] = {
    "decoding.plugin.name": "pgoutput",
    "scan.startup.mode": "initial",
    "changelog-mode": "upsert",
    "scan.incremental.snapshot.enabled": "true",
    "debezium.poll.interval.ms": "10",  # Debezium's wait between empty polls of its queue (default 500)
    "debezium.publication.autocreate.mode": "disabled",  # the peer creates its own, for these tables only
}
SINK_OPTIONS: Mapping[str, str] = {
    "sink.buffer-flush.interval": "20ms",  # default 1s
    "sink.buffer-flush.max-rows": "1000",  # default 100
    "sink.max-retries": "3",
}
JOB_CONFIG: Mapping[str, str] = {
    "parallelism.default": "1",
    # The incremental snapshot switches to the WAL after a checkpoint; each RocksDB checkpoint flushes every
    # memtable into a small SST file that compaction merges again: at 1s, compaction took 70-80% of a core.
    "execution.checkpointing.interval": "5s",
    "execution.buffer-timeout.interval": "5ms",  # default 100ms; 0 is advised against
    "restart-strategy.type": "none",  # a failure ends the run and is reported, not retried forever
    "table.local-time-zone": "UTC",
    "table.exec.sink.not-null-enforcer": "ERROR",
    # The joins and the ChangelogNormalize per source keep ~1.6M rows in state at 100k source rows: on the heap
    # (the default HashMap backend) that filled a 512MB heap at 465k of 1M calendar rows, then full GCs back to
    # back until OutOfMemoryError. RocksDB keeps the state off the heap, bounded by the managed memory, on disk.
    "state.backend.type": "rocksdb",
    "execution.checkpointing.incremental": "true",
    # Parallelism 1 has no shuffle to reorder a key's changes, the disorder the sink's materializer (a copy of
    # every output row in state, read and rewritten per change) is there for; its docs offer NONE.
    "table.exec.sink.upsert-materialize": "NONE",  # a checkpoint uploads the new SST files, not the whole state
    "taskmanager.memory.managed.size": "256m",  # RocksDB's block cache and write buffers (local default 128m)
}


@dataclass(frozen=True, repr=False)  # holds passwords
class Database:
    host: str
    port: int
    user: str
    password: str
    name: str


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with(options: Mapping[str, str]) -> str:
    return ",\n  ".join(f"{_quote(key)} = {_quote(value)}" for key, value in options.items())


def _create(table: str, body: str, key: str, options: Mapping[str, str]) -> str:
    return f"CREATE TABLE `{table}` (\n  {body},\n  PRIMARY KEY ({key}) NOT ENFORCED\n) WITH (\n  {_with(options)}\n)"


def source_ddl(service: str, table: str, db: Database, slot: str, publication: str) -> str:
    _, _, columns, key = next(s for s in SOURCES if s[:2] == (service, table))
    body = ",\n  ".join(f"`{name}` {kind}" for name, kind in columns)
    options = {
        "connector": "postgres-cdc",
        "hostname": db.host,
        "port": str(db.port),
        "username": db.user,
        "password": db.password,
        "database-name": db.name,
        "schema-name": "public",
        "table-name": table,
        "slot.name": slot,
        "debezium.publication.name": publication,
        **CDC_OPTIONS,
    }
    primary = ", ".join(f"`{k}`" for k in key)
    return (
        f"CREATE TABLE `{table}` (\n  {body},\n  PRIMARY KEY ({primary}) NOT ENFORCED\n) WITH (\n  {_with(options)}\n)"
    )


def sink_ddl(db: Database) -> str:
    body = ",\n  ".join(f"`{c.name}` {FLINK_TYPES[c.sql_type]}" for c in RULE_COLUMNS)
    options = {
        "connector": "jdbc",
        "url": f"jdbc:postgresql://{db.host}:{db.port}/{db.name}",
        "table-name": TARGET_TABLE,
        "username": db.user,
        "password": db.password,
        **SINK_OPTIONS,
    }
    key = ", ".join(f"`{k}`" for k in KEY_COLUMN_NAMES)
    return _create("calendar_entries", body, key, options)


ATTENDS_VIEW = """CREATE TEMPORARY VIEW attends AS
SELECT e.user_id, c.id AS course_id, c.title AS course_title
FROM enrollments AS e JOIN courses AS c ON c.id = e.course_id
WHERE e.status = 'active'"""

CALENDAR_INSERT = """INSERT INTO calendar_entries
SELECT a.user_id, CONCAT('lecture:', CAST(l.id AS STRING)), 'lecture', a.course_id, a.course_title,
       l.title, CAST(l.starts_at AS TIMESTAMP(6)), CAST(l.ends_at AS TIMESTAMP(6)),
       l.room, CAST(NULL AS STRING), CAST(NULL AS DECIMAL(6, 2))
FROM attends AS a JOIN lectures AS l ON l.course_id = a.course_id
WHERE NOT l.cancelled
UNION ALL
SELECT a.user_id, CONCAT('attendance:', CAST(w.id AS STRING)), 'attendance', a.course_id, a.course_title,
       l.title, CAST(w.opens_at AS TIMESTAMP(6)), CAST(w.closes_at AS TIMESTAMP(6)),
       l.room, CAST(NULL AS STRING), CAST(NULL AS DECIMAL(6, 2))
FROM attends AS a JOIN lectures AS l ON l.course_id = a.course_id
     JOIN attendance_windows AS w ON w.lecture_id = l.id
WHERE NOT l.cancelled
UNION ALL
SELECT a.user_id, CONCAT('assignment:', CAST(s.id AS STRING)), 'assignment', a.course_id, a.course_title,
       s.title, CAST(s.opens_at AS TIMESTAMP(6)), CAST(s.due_at AS TIMESTAMP(6)),
       CAST(NULL AS STRING), s.description, s.max_score
FROM attends AS a JOIN assignments AS s ON s.course_id = a.course_id
WHERE s.published"""


def expected_rows(urls: Mapping[str, str]) -> int:
    """The calendar's row count by the rules, counted per course in each source database."""
    with psycopg.connect(urls["course"], connect_timeout=10) as conn:
        attends: Counter[int] = Counter(
            dict(
                conn.execute(
                    "SELECT e.course_id, count(*) FROM public.enrollments e JOIN public.courses c"
                    " ON c.id = e.course_id WHERE e.status = 'active' GROUP BY 1"
                ).fetchall()
            )
        )
        live: dict[int, int] = dict(
            conn.execute("SELECT id, course_id FROM public.lectures WHERE NOT cancelled").fetchall()
        )
    with psycopg.connect(urls["attendance"], connect_timeout=10) as conn:
        windows = conn.execute("SELECT lecture_id, count(*) FROM public.attendance_windows GROUP BY 1").fetchall()
    with psycopg.connect(urls["assignment"], connect_timeout=10) as conn:
        assignments = conn.execute(
            "SELECT course_id, count(*) FROM public.assignments WHERE published GROUP BY 1"
        ).fetchall()
    per_course: Counter[int] = Counter(live.values())
    for lecture_id, count in windows:
        if lecture_id in live:
            per_course[live[lecture_id]] += count
    for course_id, count in assignments:
        per_course[course_id] += count
    return sum(attends[course] * rows for course, rows in per_course.items())
