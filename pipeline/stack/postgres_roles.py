"""The local stack's databases and least-privilege roles, created by the admin role on a running server.

Each role may connect only to its own databases (CONNECT is revoked from PUBLIC). A service role
owns the public schema of its database, hence the tables it creates there. The Debezium role may
replicate and read those tables, including ones created later. The sink may create schemas and
temporary tables in the calendar database; the reader may only connect (its SELECT is granted by
the sink's migration). Role passwords are sent as SCRAM verifiers computed by libpq, never in clear.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import (
    CALENDAR_DATABASE,
    DEBEZIUM_ROLE,
    READER_ROLE,
    SERVICE_DATABASES,
    SINK_ROLE,
    StackEndpoints,
    service_role,
)

_DEBEZIUM = sql.Identifier(DEBEZIUM_ROLE)


def bootstrap(settings: StackSettings) -> None:
    """Create or update the roles, databases and grants. Idempotent; the server must be running.

    Every role gets ``settings.password``. Roles and databases are created under an advisory lock,
    so that concurrent calls do not race to create them.
    """
    endpoints = StackEndpoints(settings)
    with psycopg.connect(endpoints.admin_url(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('cdcsync bootstrap'))")  # held until the connection closes
        for role in (*map(service_role, SERVICE_DATABASES), SINK_ROLE, READER_ROLE, DEBEZIUM_ROLE):
            _ensure_role(conn, role, settings.password, replication=role == DEBEZIUM_ROLE)
        _ensure_databases(conn)
    for database in (*SERVICE_DATABASES, CALENDAR_DATABASE):
        with psycopg.connect(endpoints.admin_url(database), autocommit=True, connect_timeout=10) as conn:
            _grant_schema(conn, database)


def _ensure_role(conn: psycopg.Connection[TupleRow], role: str, password: str, *, replication: bool) -> None:
    """Create or update a login role; the password travels as a SCRAM verifier, never in clear."""
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS {} PASSWORD {}").format(
            sql.SQL("ALTER" if exists else "CREATE"),
            sql.Identifier(role),
            sql.SQL("REPLICATION" if replication else "NOREPLICATION"),
            sql.Literal(verifier),
        )
    )


def _ensure_databases(conn: psycopg.Connection[TupleRow]) -> None:
    """Create the missing databases, and grant CONNECT on each only to the roles that use it."""
    existing = {name for (name,) in conn.execute("SELECT datname FROM pg_database")}
    for database in ("postgres", *SERVICE_DATABASES, CALENDAR_DATABASE):
        if database not in existing:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    for service in SERVICE_DATABASES:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
                sql.Identifier(service), sql.Identifier(service_role(service)), _DEBEZIUM
            )
        )
    calendar = sql.Identifier(CALENDAR_DATABASE)
    conn.execute(
        sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO {}").format(calendar, sql.Identifier(SINK_ROLE))
    )
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(calendar, sql.Identifier(READER_ROLE)))


def _grant_schema(conn: psycopg.Connection[TupleRow], database: str) -> None:
    """The public schema of ``database`` (``conn`` is connected to it): its service owns it, Debezium reads it."""
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # already so since PostgreSQL 15
    if database == CALENDAR_DATABASE:
        return
    owner = sql.Identifier(service_role(database))
    conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(_DEBEZIUM))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(_DEBEZIUM))
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            owner, _DEBEZIUM
        )
    )
