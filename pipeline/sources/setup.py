"""Creates the source services' tables from the spec's DDL, kept verbatim in ``<service>.sql``.

The DDL files are run as they are, never edited to be idempotent: the check for existing tables
and an advisory lock around it make ``ensure_source_schemas`` safe to repeat and to race.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import psycopg

from cdcsync.pipeline.errors import StackError

SERVICE_TABLES: Mapping[str, tuple[str, ...]] = {
    "course": ("courses", "lectures", "enrollments"),
    "attendance": ("attendance_windows",),
    "assignment": ("assignments",),
}


def _tables(service: str) -> tuple[str, ...]:
    try:
        return SERVICE_TABLES[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_TABLES)}") from None


def schema_ddl(service: str) -> str:
    """The spec's DDL for one service, as shipped in the package."""
    _tables(service)
    return resources.files(__package__).joinpath(f"{service}.sql").read_text(encoding="utf-8")


def ensure_source_schemas(service: str, url: str) -> bool:
    """Create the service's tables in schema ``public`` unless they exist; returns whether it created them.

    ``url`` should name the service's own role, so that it owns the tables. Idempotent and safe to
    run concurrently. Raises ``StackError`` when only some of the tables exist.
    """
    tables = _tables(service)
    ddl = schema_ddl(service)
    with psycopg.connect(url, connect_timeout=10) as conn:  # one transaction, committed on exit
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cdcsync source schema {service}",))
        present = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
                (list(tables),),
            )
        }
        if present == set(tables):
            return False
        if present:
            missing = sorted(set(tables) - present)
            raise StackError(
                f"{service} database",
                f"has {', '.join(sorted(present))} but not {', '.join(missing)}: drop the partial schema and retry",
            )
        conn.execute("SET LOCAL search_path = public")
        # Without parameters psycopg sends the file as one simple query, so its statements run in order.
        conn.execute(ddl)
    return True
