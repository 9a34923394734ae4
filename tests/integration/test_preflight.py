"""`cdcsync sources check` against real PostgreSQL: the shipped sources pass, and the preflight catches a
table without a primary key, a missing grant and an idle slot retaining WAL.

The broken cases live in a throwaway database of the test stack (``fresh_database``) with a throwaway
connector definition; the shipped services' tables are never touched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.debezium.heartbeat import HEARTBEAT_TABLE
from cdcsync.debezium.publications import prepare_capture
from cdcsync.debezium.source_preflight import check_sources
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.sources_commands import sources
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, SERVICE_DATABASES, SINK_ROLE, StackEndpoints
from cdcsync.pipeline.targets import Targets
from tests.conftest import _TestStack

pytestmark = pytest.mark.integration


def _worker_env() -> dict[str, str]:
    """What the test stack's Connect worker resolves placeholders from."""
    return Targets.local_stack(StackSettings.from_env()).placeholder_env()


KIB = 1024


@dataclass(frozen=True)
class Throwaway:
    """A database with a keyed and a key-less table, its signal and heartbeat tables and publication, and a
    connector for them."""

    admin_url: str
    spec: ConnectorSpec
    directory: Path  # holds the connector's JSON, for --connectors-dir

    @property
    def database(self) -> str:
        return self.spec.config["database.dbname"]

    def execute(self, statement: sql.SQL | sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture
def throwaway(pipeline: Targets, fresh_database: str, tmp_path: Path) -> Iterator[Throwaway]:
    database = psycopg.conninfo.conninfo_to_dict(fresh_database)["dbname"]
    assert isinstance(database, str)
    name = f"cdcsync_t_{uuid.uuid4().hex[:10]}"
    shipped = load_connector_specs()[0]
    config = {
        **shipped.config,
        "database.dbname": database,
        "topic.prefix": name,
        "slot.name": name,
        "publication.name": name,
        "table.include.list": "public.keyed,public.keyless",
    }
    spec = ConnectorSpec(name, config)
    (tmp_path / "throwaway.json").write_text(json.dumps({"name": name, "config": config}), encoding="utf-8")
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.keyed (id bigint PRIMARY KEY, note text)")
        conn.execute("CREATE TABLE public.keyless (note text)")
        conn.execute(
            sql.SQL("GRANT SELECT ON public.keyed, public.keyless TO {}").format(sql.Identifier(DEBEZIUM_ROLE))
        )
    prepare_capture(fresh_database, spec, DEBEZIUM_ROLE)
    yield Throwaway(fresh_database, spec, tmp_path)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (name,)
        )
    # fresh_database drops the database, its publication and its tables.


def _problems(report_json: dict[str, object], check: str) -> list[dict[str, str]]:
    problems = report_json["problems"]
    assert isinstance(problems, list)
    return [p for p in problems if p["check"] == check]


def test_the_shipped_connectors_pass_their_preflight(pipeline: Targets) -> None:
    report = check_sources(load_connector_specs(), _worker_env())
    assert not report.has_errors, "\n".join(report.lines())
    assert {s.slot_name for s in report.slots} >= {f"cdcsync_{service}" for service in SERVICE_DATABASES}
    result = CliRunner().invoke(sources, ["check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_a_table_without_a_primary_key(throwaway: Throwaway) -> None:
    report = check_sources([throwaway.spec], _worker_env())
    assert [(p.severity, p.check, p.subject) for p in report.problems] == [
        ("error", "replica_identity", f"{throwaway.database}.public.keyless")
    ], "\n".join(report.lines())
    assert "REPLICA IDENTITY FULL" in report.problems[0].fix

    throwaway.execute(sql.SQL("ALTER TABLE public.keyless REPLICA IDENTITY FULL"))
    report = check_sources([throwaway.spec], _worker_env())
    assert [(p.severity, p.check) for p in report.problems] == [("warning", "primary_key")]
    assert not report.has_errors


def test_a_missing_grant(throwaway: Throwaway) -> None:
    throwaway.execute(sql.SQL("ALTER TABLE public.keyless ADD PRIMARY KEY (note)"))
    throwaway.execute(sql.SQL("REVOKE SELECT ON public.keyed FROM {}").format(sql.Identifier(DEBEZIUM_ROLE)))
    result = CliRunner().invoke(sources, ["check", "--json", "--connectors-dir", str(throwaway.directory)])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert _problems(document, "table_privilege") == [
        {
            "severity": "error",
            "check": "table_privilege",
            "subject": f"{throwaway.database}.public.keyed",
            "message": f"role {DEBEZIUM_ROLE} lacks SELECT (Debezium snapshots it)",
            "fix": f"GRANT USAGE ON SCHEMA public TO {DEBEZIUM_ROLE}; GRANT SELECT ON public.keyed TO {DEBEZIUM_ROLE}",
        }
    ]

    throwaway.execute(sql.SQL("GRANT SELECT ON public.keyed TO {}").format(sql.Identifier(DEBEZIUM_ROLE)))
    assert not check_sources([throwaway.spec], _worker_env()).has_errors


def test_a_heartbeat_table_the_role_cannot_write_or_that_is_gone(throwaway: Throwaway) -> None:
    throwaway.execute(sql.SQL("ALTER TABLE public.keyless ADD PRIMARY KEY (note)"))
    assert not check_sources([throwaway.spec], _worker_env()).problems
    heartbeat = sql.Identifier(*HEARTBEAT_TABLE.split("."))
    throwaway.execute(sql.SQL("REVOKE UPDATE ON {} FROM {}").format(heartbeat, sql.Identifier(DEBEZIUM_ROLE)))
    (problem,) = check_sources([throwaway.spec], _worker_env()).problems
    assert (problem.check, problem.subject) == ("table_privilege", f"{throwaway.database}.{HEARTBEAT_TABLE}")
    assert problem.message.startswith(f"role {DEBEZIUM_ROLE} lacks UPDATE (Debezium's heartbeat.action.query")
    assert problem.fix.endswith(f"GRANT UPDATE ON {HEARTBEAT_TABLE} TO {DEBEZIUM_ROLE}")

    throwaway.execute(sql.SQL("DROP TABLE {}").format(heartbeat))  # which also drops it from the publication
    result = CliRunner().invoke(sources, ["check", "--json", "--connectors-dir", str(throwaway.directory)])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    (missing,) = _problems(document, "heartbeat_table")
    assert missing["subject"] == f"{throwaway.database}.{HEARTBEAT_TABLE}"
    (unpublished,) = _problems(document, "publication")
    assert unpublished["message"].startswith(f"lacks {HEARTBEAT_TABLE}")

    # The fixes the preflight prints, run as the owner in the order given, are the whole repair.
    for fix in (missing["fix"], unpublished["fix"]):
        throwaway.execute(sql.SQL(fix.split(": ", 1)[1]))
    assert not check_sources([throwaway.spec], _worker_env()).problems


def test_an_idle_slot_retaining_wal(throwaway: Throwaway) -> None:
    throwaway.execute(sql.SQL("ALTER TABLE public.keyless ADD PRIMARY KEY (note)"))
    slot = throwaway.spec.slot_name
    with psycopg.connect(throwaway.admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        conn.execute("INSERT INTO public.keyed SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")

    directory = ["--connectors-dir", str(throwaway.directory)]
    below = CliRunner().invoke(sources, ["check", "--json", *directory, "--wal-warning", "10GiB"])
    assert below.exit_code == 0, below.output
    assert not any(p["subject"].startswith(f"slot {slot} ") for p in _problems(json.loads(below.stdout), "slot"))

    over = CliRunner().invoke(sources, ["check", "--json", *directory, "--wal-warning", "1KiB"])
    assert over.exit_code == 0, over.output  # warnings only
    document = json.loads(over.stdout)
    (warning,) = [p for p in _problems(document, "slot") if p["subject"].startswith(f"slot {slot} ")]
    assert warning["severity"] == "warning"
    assert warning["message"].startswith("idle and retains ")
    assert f"pg_drop_replication_slot('{slot}')" in warning["fix"]
    (seen,) = [s for s in document["slots"] if s["slot_name"] == slot]
    assert seen["active"] is False and seen["over_threshold"] is True and seen["retained_bytes"] >= KIB

    strict = CliRunner().invoke(sources, ["check", *directory, "--wal-warning", "1KiB", "--strict"])
    assert strict.exit_code == 1
    assert f"WARNING slot: slot {slot} " in strict.output


def test_an_unreachable_database_is_a_problem_not_a_traceback(throwaway: Throwaway) -> None:
    report = check_sources([throwaway.spec], env={**_worker_env(), "CDCSYNC_PG_PORT": "1025"})
    assert [(p.severity, p.check) for p in report.problems] == [("error", "connection")]
    assert "CDCSYNC_PG_PORT" in report.problems[0].fix


def test_roles_are_least_privilege(pipeline: Targets, test_stack: _TestStack) -> None:
    endpoints = StackEndpoints(test_stack.settings)
    debezium = DEBEZIUM_ROLE
    with psycopg.connect(endpoints.admin_url(), autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = %s",
            (debezium,),
        ).fetchone()
        assert role == (False, False, False, False, True)
        for database in ("calendar", "postgres"):
            assert conn.execute(
                "SELECT has_database_privilege(%s, %s, 'CONNECT')", (debezium, database)
            ).fetchone() == (False,)
        for database in SERVICE_DATABASES:
            assert conn.execute(
                "SELECT has_database_privilege(%s, %s, 'CONNECT')", (SINK_ROLE, database)
            ).fetchone() == (False,)
    for spec in load_connector_specs():
        database = spec.config["database.dbname"]
        with psycopg.connect(endpoints.admin_url(database), autocommit=True) as conn:
            assert conn.execute(
                "SELECT has_database_privilege(%s, current_database(), 'CREATE')", (debezium,)
            ).fetchone() == (False,)
            for table in spec.tables:
                privileges = conn.execute(
                    "SELECT p, has_table_privilege(%s, %s, p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', "
                    "'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p",
                    (debezium, table),
                ).fetchall()
                assert [p for p, granted in privileges if granted] == ["SELECT"], table
            signals = conn.execute(
                "SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p "
                "WHERE has_table_privilege(%s, 'cdcsync_signal.debezium_signal', p)",
                (debezium,),
            ).fetchall()
            assert sorted(p for (p,) in signals) == ["INSERT", "SELECT"]
            heartbeat = conn.execute(
                "SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p "
                "WHERE has_table_privilege(%s, %s, p)",
                (debezium, HEARTBEAT_TABLE),
            ).fetchall()
            assert sorted(p for (p,) in heartbeat) == ["INSERT", "SELECT", "UPDATE"]
            assert conn.execute(
                "SELECT has_schema_privilege(%s, 'cdcsync_signal', 'CREATE')"
                " OR has_schema_privilege(%s, 'public', 'CREATE')",
                (debezium, debezium),
            ).fetchone() == (False,)
            owner = conn.execute(
                "SELECT pg_get_userbyid(pubowner) FROM pg_publication WHERE pubname = %s", (spec.publication_name,)
            ).fetchone()
            assert owner is not None and owner[0] != debezium
