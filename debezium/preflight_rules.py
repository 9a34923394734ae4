"""The preflight's rules: facts read from the source databases in, problems with their fix out. Pure.

``source_preflight`` reads the facts as each connector's own role; everything
that decides whether a fact is a problem lives here and is tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from cdcsync.debezium.heartbeat import HEARTBEAT_PRIVILEGES, create_heartbeat_table_statement, grant_heartbeat_statement
from cdcsync.debezium.preflight_report import Problem, SlotHealth, format_bytes

# What a table is to the connector: a captured service table, its signal table, its heartbeat table.
TableKind = Literal["captured", "signal", "heartbeat"]
# The privileges the connector's role needs on each kind of table, and why.
_NEEDS: dict[TableKind, tuple[tuple[str, ...], str]] = {
    "captured": (("SELECT",), "Debezium snapshots it"),
    "signal": (("SELECT", "INSERT"), "Debezium writes snapshot watermarks into it"),
    "heartbeat": (
        HEARTBEAT_PRIVILEGES,
        "Debezium's heartbeat.action.query upserts it; without that, a quiet database's slot keeps the server's WAL",
    ),
}


@dataclass(frozen=True)
class ServerFacts:
    server: str  # host:port
    wal_level: str
    max_replication_slots: int
    max_wal_senders: int
    wal_senders_in_use: int
    slots: tuple[SlotHealth, ...]


@dataclass(frozen=True)
class TableFacts:
    name: str  # schema.table
    exists: bool
    has_primary_key: bool = False
    replica_identity: str = "d"  # pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex)
    can_select: bool = False  # SELECT on the table and USAGE on its schema
    can_insert: bool = False
    can_update: bool = False
    kind: TableKind = "captured"


@dataclass(frozen=True)
class PublicationFacts:
    exists: bool
    all_tables: bool = False
    tables: frozenset[str] = frozenset()
    publishes_all_operations: bool = True  # insert, update, delete and truncate


@dataclass(frozen=True)
class SourceFacts:
    """What one connector's role sees of its database."""

    connector: str
    database: str
    role: str
    slot_name: str
    publication_name: str
    superuser: bool
    replication: bool  # REPLICATION, or membership in rds_replication
    tables: tuple[TableFacts, ...]  # table.include.list, then the signal and heartbeat tables
    expected_publication_tables: frozenset[str]
    publication: PublicationFacts
    server: ServerFacts
    create_publication_sql: str
    set_publication_tables_sql: str


def evaluate(sources: Sequence[SourceFacts], wal_warning_bytes: int) -> list[Problem]:
    """Every problem in ``sources``; server-wide ones once per server."""
    problems: list[Problem] = []
    for source in sources:
        problems.extend(_role(source))
        problems.extend(_tables(source))
        problems.extend(_publication(source))
    servers: dict[str, list[SourceFacts]] = {}
    for source in sources:
        servers.setdefault(source.server.server, []).append(source)
    for on_server in servers.values():
        problems.extend(_server(on_server, wal_warning_bytes))
    return problems


def _role(s: SourceFacts) -> Iterator[Problem]:
    subject = f"{s.connector} (role {s.role})"
    if s.superuser:
        yield Problem(
            "warning",
            "least_privilege",
            subject,
            "the connector connects as a superuser",
            f"give it a role WITH LOGIN REPLICATION and SELECT on its tables (see {s.database}'s grants)",
        )
    elif not s.replication:
        yield Problem(
            "error",
            "replication_privilege",
            subject,
            "the role may not open a replication connection (no REPLICATION, not in rds_replication)",
            f"ALTER ROLE {s.role} WITH REPLICATION (on RDS: GRANT rds_replication TO {s.role})",
        )


def _tables(s: SourceFacts) -> Iterator[Problem]:
    for t in s.tables:
        subject = f"{s.database}.{t.name}"
        if not t.exists:
            yield _missing_table(s, t, subject)
            continue
        needed, why = _NEEDS[t.kind]
        granted = {"SELECT": t.can_select, "INSERT": t.can_insert, "UPDATE": t.can_update}
        missing = [p for p in needed if not granted[p]]
        if missing:
            schema = t.name.split(".", 1)[0]
            yield Problem(
                "error",
                "table_privilege",
                subject,
                f"role {s.role} lacks {' and '.join(missing)} ({why})",
                f"GRANT USAGE ON SCHEMA {schema} TO {s.role}; GRANT {', '.join(missing)} ON {t.name} TO {s.role}",
            )
        yield from _replica_identity(subject, t)


def _missing_table(s: SourceFacts, t: TableFacts, subject: str) -> Problem:
    create = "run `cdcsync up` (local stack), or create it as the database owner: "
    if t.kind == "signal":
        return Problem(
            "error",
            "signal_table",
            subject,
            f"the signal table of {s.connector} does not exist",
            f"{create}CREATE TABLE {t.name} "
            "(id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))",
        )
    if t.kind == "heartbeat":
        return Problem(
            "error",
            "heartbeat_table",
            subject,
            f"the heartbeat table of {s.connector} does not exist: Debezium fails the task at the first "
            "heartbeat.action.query that finds no table",
            f"{create}{create_heartbeat_table_statement().as_string(None)}; "
            f"{grant_heartbeat_statement(s.role).as_string(None)}",
        )
    return Problem(
        "error",
        "table",
        subject,
        f"in {s.connector}'s table.include.list but does not exist",
        "create the table, or remove it from table.include.list",
    )


def _replica_identity(subject: str, t: TableFacts) -> Iterator[Problem]:
    if t.has_primary_key and t.replica_identity != "n":
        return
    if t.replica_identity in ("d", "n"):
        identity = "DEFAULT" if t.replica_identity == "d" else "NOTHING"
        reason = "no primary key" if not t.has_primary_key else "a primary key"
        yield Problem(
            "error",
            "replica_identity",
            subject,
            f"{reason} and REPLICA IDENTITY {identity}: updates and deletes carry no key, so they never reach "
            "the pipeline usably (and PostgreSQL refuses them once the table is in a publication)",
            f"add a primary key to {t.name}, or ALTER TABLE {t.name} REPLICA IDENTITY FULL",
        )
    else:
        identity = "FULL" if t.replica_identity == "f" else "USING INDEX"
        yield Problem(
            "warning",
            "primary_key",
            subject,
            f"no primary key (REPLICA IDENTITY {identity}): change events have no key, so Kafka cannot compact "
            "them per row and an incremental snapshot cannot chunk the table",
            f"add a primary key to {t.name}, or set message.key.columns for it in the connector",
        )


def _publication(s: SourceFacts) -> Iterator[Problem]:
    subject = f"{s.database}: publication {s.publication_name}"
    p = s.publication
    if not p.exists:
        yield Problem(
            "error",
            "publication",
            subject,
            f"missing: {s.connector} does not start without it, and its role may not create it",
            f"as the owner of the tables: {s.create_publication_sql}",
        )
        return
    if p.all_tables:
        yield Problem(
            "warning",
            "publication",
            subject,
            "is FOR ALL TABLES: it works, but every table's changes are decoded and sent to the connector",
            f"DROP PUBLICATION {s.publication_name}; then {s.create_publication_sql}",
        )
        return
    missing = sorted(s.expected_publication_tables - p.tables)
    extra = sorted(p.tables - s.expected_publication_tables)
    if missing or extra:
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"also has {', '.join(extra)}"] if extra else []
        )
        yield Problem(
            "error",
            "publication",
            subject,
            f"{'; '.join(parts)}: Debezium streams the tables it publishes, no more and no fewer",
            f"as the owner of the tables: {s.set_publication_tables_sql}",
        )
    if not p.publishes_all_operations:
        yield Problem(
            "error",
            "publication",
            subject,
            "does not publish every insert, update, delete and truncate",
            f"ALTER PUBLICATION {s.publication_name} SET (publish = 'insert, update, delete, truncate')",
        )


def _server(sources: Sequence[SourceFacts], wal_warning_bytes: int) -> Iterator[Problem]:
    server = sources[0].server
    where = f"server {server.server}"
    if server.wal_level != "logical":
        yield Problem(
            "error",
            "wal_level",
            where,
            f"wal_level is {server.wal_level}, logical decoding needs logical",
            "ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL (RDS: rds.logical_replication = 1)",
        )
    slot_names = {slot.slot_name for slot in server.slots}
    active = {slot.slot_name for slot in server.slots if slot.active}
    new_slots = sum(1 for s in sources if s.slot_name not in slot_names)
    new_senders = sum(1 for s in sources if s.slot_name not in active)
    yield from _headroom(
        where,
        "replication_slots",
        "max_replication_slots",
        used=len(server.slots),
        maximum=server.max_replication_slots,
        needed=new_slots,
    )
    yield from _headroom(
        where,
        "wal_senders",
        "max_wal_senders",
        used=server.wal_senders_in_use,
        maximum=server.max_wal_senders,
        needed=new_senders,
    )
    for source in sources:
        yield from _own_slot(source)
    for slot in server.slots:
        yield from _slot(slot, wal_warning_bytes)


def _headroom(where: str, check: str, setting: str, *, used: int, maximum: int, needed: int) -> Iterator[Problem]:
    free = maximum - used
    usage = f"{used} of {setting}={maximum} in use"
    if free < needed:
        yield Problem(
            "error",
            check,
            where,
            f"{usage}, the connectors need {needed} more",
            f"raise {setting} (ALTER SYSTEM SET {setting} = {used + needed + 2}; restart), or drop unused slots",
        )
    elif free == needed:
        yield Problem(
            "warning",
            check,
            where,
            f"{usage}: no headroom once the connectors run" if needed else f"{usage}: no headroom left",
            f"raise {setting} so a re-created connector or a new one still fits",
        )


def _own_slot(s: SourceFacts) -> Iterator[Problem]:
    for slot in s.server.slots:
        if slot.slot_name == s.slot_name and (slot.database != s.database or slot.plugin != "pgoutput"):
            yield Problem(
                "error",
                "slot",
                f"slot {slot.slot_name}",
                f"{s.connector}'s slot exists for database {slot.database} with plugin {slot.plugin}, "
                f"not {s.database} with pgoutput",
                f"SELECT pg_drop_replication_slot('{slot.slot_name}') if nothing uses it, or rename slot.name",
            )


def _slot(slot: SlotHealth, wal_warning_bytes: int) -> Iterator[Problem]:
    subject = f"slot {slot.slot_name} ({slot.server})"
    if slot.wal_status == "lost":
        yield Problem(
            "error",
            "slot",
            subject,
            "invalidated (wal_status lost): the WAL it needed is gone, it can never stream again",
            f"SELECT pg_drop_replication_slot('{slot.slot_name}'); its connector must then snapshot afresh",
        )
    elif slot.over(wal_warning_bytes):
        retained = format_bytes(slot.retained_bytes)
        mark = format_bytes(wal_warning_bytes)
        if slot.active:
            yield Problem(
                "warning",
                "slot",
                subject,
                f"active but retains {retained} of WAL (warning at {mark}): its consumer lags",
                "check the connector's task and its heartbeat.interval.ms; the WAL is freed as it confirms",
            )
        else:
            yield Problem(
                "warning",
                "slot",
                subject,
                f"idle and retains {retained} of WAL (warning at {mark}); it grows until the disk fills",
                f"resume its connector, or SELECT pg_drop_replication_slot('{slot.slot_name}') if it is abandoned",
            )
