"""LocalPostgres on real binaries, in a temporary CDCSYNC home on free ports.

Starts the server, bootstraps it, checks what each role can and cannot do, creates the source
schemas, loads the demo data twice, runs the change workload and stops. ``CDCSYNC_POSTGRES``
(auto | embedded | system) picks the binaries, as for the stack. Tests in this module share one
server and run in file order: the demo data is checked before the workload changes it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources.demo_data import generate_demo_data, load_demo_data
from cdcsync.pipeline.sources.setup import SERVICE_TABLES, ensure_source_schemas
from cdcsync.pipeline.sources.workload import AppliedChange, ChangeWorkload
from cdcsync.pipeline.stack.endpoints import (
    CALENDAR_DATABASE,
    DEBEZIUM_ROLE,
    READER_ROLE,
    SERVICE_DATABASES,
    SINK_ROLE,
    StackEndpoints,
    service_role,
)
from cdcsync.pipeline.stack.postgres import LocalPostgres

pytestmark = pytest.mark.integration

ALL_DATABASES = (*SERVICE_DATABASES, CALENDAR_DATABASE)
REACHABLE = {
    **{service_role(s): {s} for s in SERVICE_DATABASES},
    DEBEZIUM_ROLE: set(SERVICE_DATABASES),
    SINK_ROLE: {CALENDAR_DATABASE},
    READER_ROLE: {CALENDAR_DATABASE},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: every pytest session resets /tmp/pytest-of-<user> to mode 0700, which
    # would lock out the unprivileged user the server runs as when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix="cdcsync-it-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(home: Path) -> StackSettings:
    return StackSettings(
        home=home,
        postgres_port=_free_port(),
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        connect_port=_free_port(),
        password=f"it-{uuid.uuid4().hex}'\"",
        postgres_binaries=os.environ.get("CDCSYNC_POSTGRES") or "auto",
    )


@pytest.fixture(scope="module")
def endpoints(settings: StackSettings) -> StackEndpoints:
    return StackEndpoints(settings)


@pytest.fixture(scope="module")
def postgres(settings: StackSettings) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(settings)
    started = time.monotonic()
    pg.start(timeout=120)
    print(f"first start (with initdb) took {time.monotonic() - started:.2f}s using {pg.binaries}")
    try:
        pg.bootstrap()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def service_urls(endpoints: StackEndpoints) -> dict[str, str]:
    return {s: endpoints.service_url(s) for s in SERVICE_DATABASES}


def test_start_is_idempotent_and_status_reports_the_address(postgres: LocalPostgres, settings: StackSettings) -> None:
    postgres.start(timeout=30)
    status = postgres.status()
    assert status.running
    assert f"127.0.0.1:{settings.postgres_port}" in status.detail
    assert status.log_file == settings.home / "logs" / "postgres.log"
    assert (settings.home / "postgres" / "data" / "PG_VERSION").exists()


def test_server_is_ready_for_logical_decoding_on_loopback_only(
    postgres: LocalPostgres, endpoints: StackEndpoints
) -> None:
    with psycopg.connect(endpoints.admin_url()) as conn:

        def show(name: str) -> str:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            assert row is not None
            return str(row[0])

        assert show("wal_level") == "logical"
        assert int(show("max_replication_slots")) >= 10
        assert int(show("max_wal_senders")) >= 10
        assert show("listen_addresses") == "127.0.0.1"
        assert show("unix_socket_directories") == ""
        assert show("password_encryption") == "scram-sha-256"


def test_bootstrap_is_idempotent(postgres: LocalPostgres) -> None:
    postgres.bootstrap()


def test_a_wrong_password_is_refused(postgres: LocalPostgres, endpoints: StackEndpoints) -> None:
    url = endpoints.service_url("course").replace(":it-", ":wrong-it-", 1)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()


def test_a_changed_stack_password_is_reported(postgres: LocalPostgres, settings: StackSettings) -> None:
    with pytest.raises(StackError, match="refuses the admin login"):
        LocalPostgres(dataclasses.replace(settings, password="not-the-one")).start(timeout=10)


@pytest.mark.parametrize("role", sorted(REACHABLE))
def test_each_role_reaches_only_its_own_databases(
    postgres: LocalPostgres, endpoints: StackEndpoints, role: str
) -> None:
    for database in (*ALL_DATABASES, "postgres"):
        if database in REACHABLE[role]:
            with psycopg.connect(endpoints.url(role, database), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        else:
            with pytest.raises(psycopg.OperationalError, match="permission denied"):
                psycopg.connect(endpoints.url(role, database), connect_timeout=5).close()


def test_only_debezium_may_replicate(postgres: LocalPostgres, endpoints: StackEndpoints) -> None:
    with psycopg.connect(endpoints.admin_url()) as conn:
        rows = conn.execute(
            "SELECT rolname, rolreplication, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
            " WHERE rolname = ANY(%s) ORDER BY rolname",
            (list(REACHABLE),),
        ).fetchall()
    assert {r[0] for r in rows} == set(REACHABLE)
    for name, replication, superuser, createdb, createrole in rows:
        assert replication == (name == DEBEZIUM_ROLE)
        assert not (superuser or createdb or createrole)


def test_sink_creates_schemas_and_temp_tables_in_calendar_only(
    postgres: LocalPostgres, endpoints: StackEndpoints
) -> None:
    schema = f"it_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(endpoints.sink_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {}.t (id bigint PRIMARY KEY)").format(sql.Identifier(schema)))
        conn.execute("CREATE TEMP TABLE scratch (id bigint)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.t (id bigint)")
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.parametrize(
    "statement",
    ["CREATE TABLE public.t (id bigint)", "CREATE TEMP TABLE t (id bigint)", "CREATE SCHEMA reader_owned"],
)
def test_calendar_reader_cannot_create_anything(
    postgres: LocalPostgres, endpoints: StackEndpoints, statement: str
) -> None:
    with (
        psycopg.connect(endpoints.calendar_reader_url, autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute(statement.encode())


def test_source_schemas_are_created_once(postgres: LocalPostgres, service_urls: dict[str, str]) -> None:
    assert all(ensure_source_schemas(s, url) for s, url in service_urls.items())
    assert not any(ensure_source_schemas(s, url) for s, url in service_urls.items())
    with psycopg.connect(service_urls["course"]) as conn:
        owners = conn.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    assert owners == [(t, service_role("course")) for t in sorted(SERVICE_TABLES["course"])]


def test_demo_data_loads_once_and_exactly(
    postgres: LocalPostgres, endpoints: StackEndpoints, service_urls: dict[str, str]
) -> None:
    for service, url in service_urls.items():
        ensure_source_schemas(service, url)
    assert load_demo_data(service_urls)
    assert not load_demo_data(service_urls)
    demo = generate_demo_data()
    expected = {e.table: e for entries in demo.tables_by_service().values() for e in entries}
    for service, tables in SERVICE_TABLES.items():
        # Debezium's role reads what the service wrote (default privileges cover tables created later).
        with psycopg.connect(endpoints.url(DEBEZIUM_ROLE, service)) as conn:
            for table in tables:
                columns = sql.SQL(", ").join(map(sql.Identifier, expected[table].columns))
                query = sql.SQL("SELECT {} FROM {} ORDER BY 1, 2").format(columns, sql.Identifier(table))
                assert conn.execute(query).fetchall() == sorted(expected[table].rows), table
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(tables[0])))


def test_large_descriptions_are_stored_out_of_line(postgres: LocalPostgres, endpoints: StackEndpoints) -> None:
    with psycopg.connect(endpoints.admin_url("assignment")) as conn:
        row = conn.execute(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'assignments'"
        ).fetchone()
        assert row is not None
        toasted = conn.execute(sql.SQL("SELECT count(DISTINCT chunk_id) FROM {}").format(sql.SQL(row[0]))).fetchone()
    large = [a for a in generate_demo_data().assignments if a.description and len(a.description) > 4096]
    assert toasted is not None
    assert toasted[0] == len(large)


def test_workload_applies_committed_changes_to_every_service(
    postgres: LocalPostgres, service_urls: dict[str, str]
) -> None:
    with ChangeWorkload(service_urls, random.Random(7)) as workload:
        changes = [workload.apply_next() for _ in range(400)]
    assert {c.service for c in changes} == set(SERVICE_DATABASES)
    assert len({c.action for c in changes}) >= 20
    with psycopg.connect(service_urls["course"]) as conn:
        row = conn.execute("SELECT count(*) FROM courses").fetchone()
    assert row is not None
    assert row[0] > 0


def _reset_to_demo_data(service_urls: dict[str, str]) -> None:
    for service, tables in SERVICE_TABLES.items():
        with psycopg.connect(service_urls[service]) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    assert load_demo_data(service_urls)


def test_workload_repeats_itself_for_one_seed_and_starting_state(
    postgres: LocalPostgres, service_urls: dict[str, str]
) -> None:
    def run() -> list[AppliedChange]:
        _reset_to_demo_data(service_urls)
        with ChangeWorkload(service_urls, random.Random(11)) as workload:
            return [workload.apply_next() for _ in range(150)]

    assert run() == run()


def _contents(service_urls: dict[str, str]) -> dict[str, str]:
    """An md5 of each service table's rows."""
    digests = {}
    for service, tables in SERVICE_TABLES.items():
        with psycopg.connect(service_urls[service]) as conn:
            for table in tables:
                query = sql.SQL("SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {} t")
                row = conn.execute(query.format(sql.Identifier(table))).fetchone()
                assert row is not None
                digests[table] = str(row[0])
    return digests


def test_workload_rolls_back_its_share_of_transactions(postgres: LocalPostgres, service_urls: dict[str, str]) -> None:
    _reset_to_demo_data(service_urls)
    before = _contents(service_urls)
    with ChangeWorkload(service_urls, random.Random(5), rollback_rate=1.0) as workload:
        changes = [workload.apply_next() for _ in range(60)]
    assert all(change.rolled_back for change in changes)
    assert _contents(service_urls) == before
    with ChangeWorkload(service_urls, random.Random(5), rollback_rate=0.5) as workload:
        rolled_back = sum(workload.apply_next().rolled_back for _ in range(60))
    assert 0 < rolled_back < 60
    assert _contents(service_urls) != before


def test_a_port_in_use_is_reported(postgres: LocalPostgres, settings: StackSettings, home: Path) -> None:
    other = LocalPostgres(dataclasses.replace(settings, home=home / "other"))  # same port, another cluster
    with pytest.raises(StackError, match=f"port {settings.postgres_port} in use"):
        other.start(timeout=60)
    assert not other.status().running


def test_stop_then_start_again(postgres: LocalPostgres) -> None:
    assert postgres.stop()
    assert not postgres.status().running
    assert postgres.status().detail == "stopped"
    assert not postgres.stop()
    started = time.monotonic()
    postgres.start(timeout=60)
    print(f"restart took {time.monotonic() - started:.2f}s")
    assert postgres.status().running


def test_an_immediate_stop_is_recovered_at_the_next_start(postgres: LocalPostgres) -> None:
    log_end = postgres.log_file.stat().st_size
    assert postgres.stop(mode="immediate")
    assert not postgres.status().running
    postgres.start(timeout=60)
    assert postgres.status().running
    with postgres.log_file.open("rb") as log:
        log.seek(log_end)
        assert b"automatic recovery in progress" in log.read()
