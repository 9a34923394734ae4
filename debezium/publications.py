"""Publications the connectors read, created ahead of them by a role that may.

Debezium's role has REPLICATION and SELECT only: it may not create a
publication, nor add tables it does not own. The connectors therefore run with
``publication.autocreate.mode=disabled``: Debezium uses the publication as it
finds it (and fails to start without one). It must hold exactly the tables the
connector streams: ``table.include.list``, the signal table (Debezium reads
signals from the WAL) and the heartbeat table (see ``debezium.heartbeat``). A
captured table missing from it would be snapshotted but never streamed, so
``cdcsync sources check``, which ``connectors apply`` runs first, compares them.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from cdcsync.debezium.connector_spec import ConnectorSpec
from cdcsync.debezium.heartbeat import ensure_heartbeat_table, heartbeat_table
from cdcsync.debezium.signals import ensure_signal_table, signal_table


def publication_tables(spec: ConnectorSpec) -> tuple[str, ...]:
    """``schema.table`` of every table Debezium expects in ``spec``'s publication, sorted."""
    extra = (signal_table(spec), heartbeat_table(spec))
    return tuple(sorted({*spec.tables, *(table for table in extra if table is not None)}))


def _table_list(spec: ConnectorSpec) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(*table.split(".", 1)) for table in publication_tables(spec))


def create_publication_statement(spec: ConnectorSpec) -> sql.Composed:
    """``CREATE PUBLICATION`` with exactly the tables Debezium expects; run it as the owner of the tables."""
    return sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
        sql.Identifier(spec.publication_name), _table_list(spec)
    )


def set_publication_tables_statement(spec: ConnectorSpec) -> sql.Composed:
    """``ALTER PUBLICATION ... SET TABLE`` to exactly the tables Debezium expects."""
    return sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(spec.publication_name), _table_list(spec))


def ensure_publication(owner_url: str, spec: ConnectorSpec) -> bool:
    """Create ``spec``'s publication, or set its tables to exactly the expected ones; True if anything changed.

    ``owner_url`` connects to the connector's database as its owner or an admin.
    The tables (the signal and heartbeat tables included) must exist. A ``FOR ALL TABLES``
    publication is left alone: ``cdcsync sources check`` reports it.
    """
    with psycopg.connect(owner_url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute("SELECT puballtables FROM pg_publication WHERE pubname = %s", (spec.publication_name,))
        row = found.fetchone()
        if row is None:
            conn.execute(create_publication_statement(spec))
            return True
        if row[0]:
            return False
        current = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
            (spec.publication_name,),
        )
        if {name for (name,) in current} == set(publication_tables(spec)):
            return False
        conn.execute(set_publication_tables_statement(spec))
        return True


def prepare_capture(owner_url: str, spec: ConnectorSpec, connector_role: str) -> bool:
    """What ``spec``'s connector needs in its database before it starts; True if the publication changed.

    In order, since a publication can only list tables that exist: the signal table,
    the heartbeat table (when the spec runs the heartbeat action query), then the
    publication. Idempotent; ``owner_url`` as in ``ensure_publication``.
    """
    ensure_signal_table(owner_url, spec, connector_role)
    if heartbeat_table(spec) is not None:
        ensure_heartbeat_table(owner_url, connector_role)
    return ensure_publication(owner_url, spec)
