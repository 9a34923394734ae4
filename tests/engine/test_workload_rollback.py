"""The workload's deliberate rollback when the server goes away first (the fault suite's PostgreSQL restarts)."""

from __future__ import annotations

import random

import psycopg
import pytest

from cdcsync.pipeline.sources.setup import SERVICE_TABLES
from cdcsync.pipeline.sources.workload import ChangeWorkload

pytestmark = pytest.mark.postgres


def test_a_rollback_the_lost_connection_cannot_run_is_a_connection_error(fresh_database: str) -> None:
    """The server discarded the transaction with the session: an ``OperationalError``, as for any other lost
    connection, never psycopg's ``Rollback`` escaping the workload."""
    urls = dict.fromkeys(SERVICE_TABLES, fresh_database)
    with (
        ChangeWorkload(urls, random.Random(1), rollback_rate=1.0) as work,
        pytest.raises(psycopg.OperationalError, match="attendance: the connection was lost"),
        work._transaction("attendance") as conn,
        psycopg.connect(fresh_database, autocommit=True) as admin,
    ):
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
