"""The heartbeat table: what lets a quiet database's replication slot advance.

WAL is shared by every database of a server, but a logical slot only decodes its
own database. When a captured database sees no writes while another one is busy,
its connector receives nothing, confirms nothing, and the slot holds the server's
WAL from its ``confirmed_flush_lsn`` on. Debezium's ``heartbeat.action.query`` runs
a statement in the captured database every ``heartbeat.interval.ms``; cdcsync's
upserts the one row of ``cdcsync_signal.debezium_heartbeat``. That transaction
reaches the connector, which records its commit LSN in its offset; the next
heartbeat record carries that offset to Kafka, and once Connect flushes offsets
(``offset.flush.interval.ms``) Debezium confirms the LSN to the slot. So an idle
slot trails the server's WAL by at most about two heartbeat intervals plus one
offset flush interval.

The table must be in the connector's publication: pgoutput (PostgreSQL 15+) sends
nothing for a transaction that changed no published table. It is *not* in
``table.include.list``: Debezium drops its changes (no change topic) but still
confirms the transaction's commit. Because Debezium's filtered publication mode
would then try to ALTER the publication (its role may not), the connectors run
with ``publication.autocreate.mode=disabled`` and use the publication as created.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from cdcsync.debezium.connector_spec import ConnectorSpec, ConnectorSpecError
from cdcsync.debezium.signals import SIGNAL_SCHEMA

HEARTBEAT_TABLE = f"{SIGNAL_SCHEMA}.debezium_heartbeat"
HEARTBEAT_QUERY_KEY = "heartbeat.action.query"
HEARTBEAT_INTERVAL_KEY = "heartbeat.interval.ms"
# The statement the connectors run, as written in their JSON; it writes HEARTBEAT_TABLE.
# An upsert keeps the table at one row and recreates that row if someone deletes it;
# ON CONFLICT needs SELECT besides INSERT and UPDATE.
HEARTBEAT_QUERY = (
    "INSERT INTO cdcsync_signal.debezium_heartbeat (id, beat_at) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
)
HEARTBEAT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE")


def heartbeat_table(spec: ConnectorSpec) -> str | None:
    """``schema.table`` the spec's heartbeat writes, or None when it runs no action query.

    Raises ``ConnectorSpecError`` for an action query other than ``HEARTBEAT_QUERY``
    (its table would be missing from the publication and the preflight) or one that
    never runs (no positive ``heartbeat.interval.ms``).
    """
    query = spec.config.get(HEARTBEAT_QUERY_KEY, "").strip()
    if not query:
        return None
    if query != HEARTBEAT_QUERY:
        raise ConnectorSpecError(
            spec.name,
            f"config.{HEARTBEAT_QUERY_KEY}",
            "is not cdcsync's heartbeat statement, whose table the publication and preflight cover",
            f"set it to {HEARTBEAT_QUERY!r}, or remove it",
        )
    interval = spec.config.get(HEARTBEAT_INTERVAL_KEY, "")
    if not interval.isdigit() or int(interval) <= 0:
        raise ConnectorSpecError(
            spec.name,
            f"config.{HEARTBEAT_INTERVAL_KEY}",
            f"is {interval or 'unset'}, so the heartbeat action query never runs",
            "set it to a positive number of milliseconds, e.g. 10000",
        )
    return HEARTBEAT_TABLE


def _identifier() -> sql.Identifier:
    return sql.Identifier(*HEARTBEAT_TABLE.split(".", 1))


def create_heartbeat_table_statement() -> sql.Composed:
    """``CREATE TABLE`` for the heartbeat table: one row, its last beat."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (id smallint PRIMARY KEY CHECK (id = 1), beat_at timestamptz NOT NULL)"
    ).format(_identifier())


def grant_heartbeat_statement(role: str) -> sql.Composed:
    """The grants the connector's role needs for ``HEARTBEAT_QUERY``, and nothing more."""
    return sql.SQL("GRANT {} ON {} TO {}").format(
        sql.SQL(", ").join(sql.SQL(p) for p in HEARTBEAT_PRIVILEGES), _identifier(), sql.Identifier(role)
    )


def ensure_heartbeat_table(admin_url: str, debezium_role: str) -> bool:
    """Create the heartbeat table (and its schema) unless it exists, and grant ``debezium_role``. Idempotent.

    ``admin_url`` connects to the connector's database as a role that may create a
    schema there. Returns True when the table was created.
    """
    schema = sql.Identifier(SIGNAL_SCHEMA)
    with psycopg.connect(admin_url, connect_timeout=10) as conn, conn.transaction():
        # Same lock as the signal table's set-up: both create the schema.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cdcsync signal table'))")
        existed = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HEARTBEAT_TABLE,)).fetchone() == (True,)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(create_heartbeat_table_statement())
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(debezium_role)))
        conn.execute(grant_heartbeat_statement(debezium_role))
    return not existed
