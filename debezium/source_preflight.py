"""``check_sources``: connect to each connector's source database as its own role and report problems.

What is checked (the rules are in ``preflight_rules``): wal_level; headroom in
max_replication_slots and max_wal_senders; the role's REPLICATION (or
rds_replication) and its SELECT on every captured table, SELECT and INSERT on
the signal table, SELECT, INSERT and UPDATE on the heartbeat table; the
publication against table.include.list plus the signal and heartbeat tables;
primary keys and replica identity; every replication slot on the
server, active or not, with the WAL it retains.

Read-only: nothing is created or changed. A database that cannot be reached is
reported as a problem, never raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg.rows import TupleRow

from cdcsync.debezium.connector_spec import PLACEHOLDER_KEYS, ConnectorSpec
from cdcsync.debezium.heartbeat import heartbeat_table
from cdcsync.debezium.preflight_report import (
    DEFAULT_WAL_WARNING_BYTES,
    PreflightReport,
    Problem,
    SlotHealth,
    parse_size,
    sorted_problems,
)
from cdcsync.debezium.preflight_rules import PublicationFacts, ServerFacts, SourceFacts, TableFacts, TableKind, evaluate
from cdcsync.debezium.publications import (
    create_publication_statement,
    publication_tables,
    set_publication_tables_statement,
)
from cdcsync.debezium.signals import signal_table
from cdcsync.debezium.source_connection import SourceConnection, source_connection
from cdcsync.errors import CdcsyncError, ConfigError

WAL_WARNING_ENV = "CDCSYNC_SLOT_WAL_WARNING"
_CONNECT_TIMEOUT_S = 5
_PLACEHOLDER_NAME = re.compile(r"\$\{env:([A-Za-z0-9_]+)\}")

Connection = psycopg.Connection[TupleRow]

# The WAL position a slot's retention is measured from; a standby has no current insert position.
SLOTS_QUERY = """
SELECT slot_name, slot_type, database, plugin, active,
       pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
           restart_lsn)::bigint,
       wal_status
FROM pg_replication_slots
ORDER BY slot_name
"""

_SERVER_QUERY = """
SELECT current_setting('wal_level'),
       current_setting('max_replication_slots')::int,
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int
"""

_ROLE_QUERY = """
SELECT r.rolname, r.rolsuper, r.rolreplication,
       EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(r.oid, g.oid, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""

_TABLE_QUERY = """
SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p'),
       c.relreplident::text,
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'),
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'INSERT'),
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'UPDATE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
"""


class PreflightFailed(CdcsyncError):
    """The preflight found errors (or warnings under ``--strict``); exit code 1, like a failed verify."""

    exit_code = 1


def wal_warning_threshold(env: Mapping[str, str] | None = None) -> int:
    """``CDCSYNC_SLOT_WAL_WARNING`` (e.g. ``512MiB``) in bytes, default 1 GiB."""
    raw = (os.environ if env is None else env).get(WAL_WARNING_ENV)
    if not raw:
        return DEFAULT_WAL_WARNING_BYTES
    try:
        return parse_size(raw)
    except ValueError as exc:
        raise ConfigError(WAL_WARNING_ENV, str(exc), "set it to a size such as 1GiB or 512MiB") from None


def check_sources(
    specs: Sequence[ConnectorSpec], env: Mapping[str, str], *, wal_warning_bytes: int | None = None
) -> PreflightReport:
    """Check every source database ``specs`` read; the report holds every problem found. Read-only.

    ``env`` resolves the connectors' ``${env:VAR}`` placeholders, as the Connect worker would.
    """
    threshold = wal_warning_threshold(env) if wal_warning_bytes is None else wal_warning_bytes
    facts: list[SourceFacts] = []
    problems: list[Problem] = []
    for spec in specs:
        try:
            target = source_connection(spec, env)
        except ConfigError as exc:
            problems.append(Problem("error", "placeholder", spec.name, str(exc), "see the message"))
            continue
        try:
            with psycopg.connect(target.conninfo(), connect_timeout=_CONNECT_TIMEOUT_S, autocommit=True) as conn:
                facts.append(_read_facts(conn, spec, target))
        except psycopg.OperationalError as exc:
            problems.append(_unreachable(spec, target, exc))
        except psycopg.Error as exc:  # a catalog query refused: report it, check the other sources
            problems.append(
                Problem("error", "query", spec.name, f"reading {target.describe()} failed: {exc}", "see the message")
            )
    problems.extend(evaluate(facts, threshold))
    slots = {(s.server, s.slot_name): s for f in facts for s in f.server.slots}
    return PreflightReport(
        problems=sorted_problems(problems),
        slots=list(slots.values()),
        checked=[spec.name for spec in specs],
        wal_warning_bytes=threshold,
    )


def read_slots(conn: Connection, server: str) -> tuple[SlotHealth, ...]:
    """Every replication slot on ``conn``'s server with the WAL it retains (the preflight's and status's query)."""
    return tuple(
        SlotHealth(
            server=server,
            slot_name=name,
            slot_type=slot_type,
            database=database,
            plugin=plugin,
            active=bool(active),
            retained_bytes=None if retained is None else int(retained),
            wal_status=wal_status,
        )
        for name, slot_type, database, plugin, active, retained, wal_status in conn.execute(SLOTS_QUERY)
    )


def slot_health(specs: Sequence[ConnectorSpec], env: Mapping[str, str]) -> list[SlotHealth]:
    """The slots of every server ``specs`` read from, connecting as the connectors' roles (``env`` as in check_sources).

    Raises ``psycopg.OperationalError`` or ``ConfigError`` when a server cannot be reached.
    """
    by_server: dict[str, SourceConnection] = {}
    for spec in specs:
        target = source_connection(spec, env)
        by_server.setdefault(target.server, target)
    slots: list[SlotHealth] = []
    for server, target in sorted(by_server.items()):
        with psycopg.connect(target.conninfo(), connect_timeout=_CONNECT_TIMEOUT_S, autocommit=True) as conn:
            slots.extend(read_slots(conn, server))
    return slots


def _unreachable(spec: ConnectorSpec, target: SourceConnection, exc: psycopg.OperationalError) -> Problem:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    variables = sorted({v for key in PLACEHOLDER_KEYS for v in _PLACEHOLDER_NAME.findall(spec.config[key])})
    return Problem(
        "error",
        "connection",
        spec.name,
        f"cannot connect to {target.describe()}: {reason}",
        f"start PostgreSQL (cdcsync stack up), or export {', '.join(variables)} as the Connect worker has them",
    )


def _one(conn: Connection, query: LiteralString) -> tuple[Any, ...]:
    row = conn.execute(query).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query.split()[0:3]}")
    return row


def _read_facts(conn: Connection, spec: ConnectorSpec, target: SourceConnection) -> SourceFacts:
    wal_level, max_slots, max_senders, senders = _one(conn, _SERVER_QUERY)
    role, superuser, replication, rds_replication = _one(conn, _ROLE_QUERY)
    kinds: dict[str, TableKind] = {name: "captured" for name in spec.tables}
    extra: tuple[tuple[str | None, TableKind], ...] = (
        (signal_table(spec), "signal"),
        (heartbeat_table(spec), "heartbeat"),
    )
    for name, kind in extra:
        if name is not None:
            kinds[name] = kind
    tables = tuple(_table_facts(conn, name, kind) for name, kind in kinds.items())
    publication = _publication_facts(conn, spec.publication_name)
    return SourceFacts(
        connector=spec.name,
        database=target.dbname,
        role=role,
        slot_name=spec.slot_name,
        publication_name=spec.publication_name,
        superuser=superuser,
        replication=replication or rds_replication,
        tables=tables,
        expected_publication_tables=frozenset(publication_tables(spec)),
        publication=publication,
        server=ServerFacts(
            server=target.server,
            wal_level=wal_level,
            max_replication_slots=max_slots,
            max_wal_senders=max_senders,
            wal_senders_in_use=senders,
            slots=read_slots(conn, target.server),
        ),
        create_publication_sql=create_publication_statement(spec).as_string(conn),
        set_publication_tables_sql=set_publication_tables_statement(spec).as_string(conn),
    )


def _table_facts(conn: Connection, name: str, kind: TableKind) -> TableFacts:
    schema, _, table = name.partition(".")
    row = conn.execute(_TABLE_QUERY, (schema, table)).fetchone()
    if row is None:
        return TableFacts(name=name, exists=False, kind=kind)
    has_key, identity, can_select, can_insert, can_update = row
    return TableFacts(
        name=name,
        exists=True,
        has_primary_key=has_key,
        replica_identity=identity,
        can_select=can_select,
        can_insert=can_insert,
        can_update=can_update,
        kind=kind,
    )


def _publication_facts(conn: Connection, name: str) -> PublicationFacts:
    row = conn.execute(
        "SELECT puballtables, pubinsert AND pubupdate AND pubdelete AND pubtruncate FROM pg_publication"
        " WHERE pubname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return PublicationFacts(exists=False)
    tables = conn.execute(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s", (name,)
    ).fetchall()
    return PublicationFacts(
        exists=True, all_tables=row[0], tables=frozenset(t for (t,) in tables), publishes_all_operations=row[1]
    )
