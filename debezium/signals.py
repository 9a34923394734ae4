"""Debezium's source signal channel: one signal table per service database, and the snapshot signal.

Each connector names its table in ``signal.data.collection`` as ``<schema>.<table>``
(the PostgreSQL format). The table lives in its own schema, ``cdcsync_signal``, so
the services' ``public`` schemas stay exactly as the services made them.

Debezium reads signals from the WAL (the table is in the connector's publication)
and, for incremental snapshots, writes its open/close window watermarks into the
same table through its own connection: its role needs INSERT there, and SELECT
for its initial snapshot, which reads every captured table. Whoever triggers a
snapshot needs USAGE on the schema and INSERT on the table.

``trigger_incremental_snapshot`` is the one function that writes a signal; ``cdcsync
snapshot`` and resync both call it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cdcsync.debezium.connector_spec import ConnectorSpec

SIGNAL_SCHEMA = "cdcsync_signal"
SIGNAL_TABLE = "debezium_signal"
SIGNAL_COLLECTION_KEY = "signal.data.collection"
# Column widths of the table Debezium's documentation gives; a signal must fit them.
MAX_ID, MAX_TYPE, MAX_DATA = 42, 32, 2048
# The id of a snapshot signal for every row of its table (no --where). Debezium's notifications carry the
# signal id but not the filter, and only a whole-table snapshot can stand in for an interrupted initial one.
WHOLE_TABLE_SIGNAL_PREFIX = "full-"


@dataclass(frozen=True)
class Signal:
    """One row of a signal table: ``data`` is the JSON payload Debezium parses."""

    id: str
    type: str
    data: str | None

    def __post_init__(self) -> None:
        for name, value, limit in (("id", self.id, MAX_ID), ("type", self.type, MAX_TYPE)):
            if not value or len(value) > limit:
                raise ValueError(f"signal {name} must be 1 to {limit} characters, got {len(value)}")
        if self.data is not None and len(self.data) > MAX_DATA:
            raise ValueError(f"signal data is {len(self.data)} characters; the signal table holds at most {MAX_DATA}")


def execute_snapshot_signal(table: str, where: str | None = None, signal_id: str | None = None) -> Signal:
    """An ``execute-snapshot`` signal for an incremental snapshot of ``table`` (``schema.table``). Pure.

    ``where`` becomes the table's ``additional-conditions`` filter: a SQL condition
    Debezium appends to its chunk queries, run with the connector's role.
    """
    if table.count(".") != 1 or not all(table.split(".")):
        raise ValueError(f"{table!r} is not schema.table")
    data: dict[str, object] = {"data-collections": [table], "type": "incremental"}
    if where is not None:
        if not where.strip():
            raise ValueError("--where is empty: leave it out to snapshot every row")
        # Debezium matches data-collection as a regular expression against schema.table.
        data["additional-conditions"] = [{"data-collection": table, "filter": where.strip()}]
    whole_table = WHOLE_TABLE_SIGNAL_PREFIX if where is None else ""
    return Signal(
        id=signal_id or f"{whole_table}{uuid.uuid4()}",
        type="execute-snapshot",
        data=json.dumps(data, separators=(",", ":")),
    )


def is_whole_table_signal(signal_id: str) -> bool:
    """True for the id ``execute_snapshot_signal`` gives a snapshot of every row of its table. Pure."""
    return signal_id.startswith(WHOLE_TABLE_SIGNAL_PREFIX)


def signal_table(spec: ConnectorSpec) -> str | None:
    """The connector's signal table as ``schema.table``, or None when it has none."""
    value = spec.config.get(SIGNAL_COLLECTION_KEY, "").strip()
    return value or None


def _identifier(table: str) -> sql.Identifier:
    schema, name = table.split(".", 1)
    return sql.Identifier(schema, name)


def find_captured_table(specs: Sequence[ConnectorSpec], qualified: str) -> tuple[ConnectorSpec, str]:
    """``SERVICE.TABLE`` (or ``SERVICE.SCHEMA.TABLE``) -> the connector capturing it and ``schema.table``.

    SERVICE is a connector's database; TABLE is looked up in its ``table.include.list``,
    in ``public`` unless a schema is given. Raises ``ValueError`` saying what exists.
    """
    service, _, table = qualified.partition(".")
    by_service = {spec.config["database.dbname"]: spec for spec in specs}
    if not table or service not in by_service:
        choices = ", ".join(f"{db}.{t.split('.', 1)[1]}" for db, s in sorted(by_service.items()) for t in s.tables)
        raise ValueError(f"{qualified!r} is not SERVICE.TABLE of a connector; captured tables: {choices}")
    spec = by_service[service]
    wanted = table if "." in table else f"public.{table}"
    if wanted not in spec.tables:
        raise ValueError(
            f"{wanted} is not in {spec.name}'s table.include.list ({', '.join(spec.tables)}): "
            "only captured tables can be snapshotted"
        )
    return spec, wanted


def ensure_signal_table(admin_url: str, spec: ConnectorSpec, debezium_role: str) -> bool:
    """Create ``spec``'s signal table and schema unless they exist, and grant the connector role. Idempotent.

    ``admin_url`` connects to the connector's database as a role that may create a
    schema there. Returns True when the table was created.
    """
    table = signal_table(spec)
    if table is None:
        return False
    schema = sql.Identifier(table.split(".", 1)[0])
    role = sql.Identifier(debezium_role)
    with psycopg.connect(admin_url, connect_timeout=10) as conn, conn.transaction():
        # Concurrent set-ups would race on CREATE ... IF NOT EXISTS; one at a time per database.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdcsync signal table'))")
        existed = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone() == (True,)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} "
                "(id varchar({}) PRIMARY KEY, type varchar({}) NOT NULL, data varchar({}))"
            ).format(_identifier(table), MAX_ID, MAX_TYPE, MAX_DATA)
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
        conn.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(_identifier(table), role))
    return not existed


def send_signal(url: str, spec: ConnectorSpec, signal: Signal) -> None:
    """Insert ``signal`` into ``spec``'s signal table through ``url`` (a role with INSERT there).

    Refuses a URL that points at another database than the connector's: the signal
    would reach the wrong connector, or none.
    """
    table = signal_table(spec)
    if table is None:
        raise ValueError(f"{spec.name} has no {SIGNAL_COLLECTION_KEY}: it cannot receive signals")
    with psycopg.connect(url, connect_timeout=10) as conn:
        (database,) = conn.execute("SELECT current_database()").fetchone() or ("?",)
        if database != spec.config["database.dbname"]:
            raise ValueError(
                f"the signal URL points at database {database!r}, but {spec.name} reads "
                f"{spec.config['database.dbname']!r}"
            )
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, %s, %s)").format(_identifier(table)),
            (signal.id, signal.type, signal.data),
        )


def trigger_incremental_snapshot(url: str, spec: ConnectorSpec, table: str, where: str | None = None) -> str:
    """Ask ``spec``'s connector to re-read ``table`` (rows matching ``where``) as 'r' events; the signal id.

    Returns once the signal is committed; Debezium picks it up from the WAL and
    snapshots in chunks while streaming goes on (``snapshot_notifications`` tells
    when it is done).
    """
    if table not in spec.tables:
        raise ValueError(f"{table} is not captured by {spec.name}")
    signal = execute_snapshot_signal(table, where)
    send_signal(url, spec, signal)
    return signal.id
