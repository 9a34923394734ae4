"""Shared fixtures. Databases come from CDCSYNC_TEST_ADMIN_URL (a role that may
create databases), else from the local stack's admin role."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pipeline.settings import StackSettings
from pipeline.stack.endpoints import StackEndpoints


def _admin_url() -> str:
    return os.environ.get("CDCSYNC_TEST_ADMIN_URL") or StackEndpoints(StackSettings.from_env()).admin_url()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new empty database, dropped afterwards; yields its URL (admin role)."""
    admin = _admin_url()
    name = f"cdcsync_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL for tests: set CDCSYNC_TEST_ADMIN_URL or run `cdcsync stack up` ({exc})")
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
