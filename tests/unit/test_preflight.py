"""Source preflight, pure parts: placeholder resolution, the rules, and the report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import psycopg
import pytest
import yaml

from cdcsync.debezium.change_format import REGISTRY_URL_PLACEHOLDER_VARIABLE
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.debezium.heartbeat import HEARTBEAT_TABLE
from cdcsync.debezium.preflight_report import (
    PreflightReport,
    Problem,
    SlotHealth,
    format_bytes,
    parse_size,
    slot_lines,
    sorted_problems,
)
from cdcsync.debezium.preflight_rules import PublicationFacts, ServerFacts, SourceFacts, TableFacts, evaluate
from cdcsync.debezium.source_connection import (
    UnresolvedPlaceholder,
    placeholder_variables,
    resolve_placeholders,
    source_connection,
)
from cdcsync.debezium.source_preflight import wal_warning_threshold
from cdcsync.pipeline import status_report
from cdcsync.pipeline.errors import ConfigError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.targets import Targets

GIB = 1 << 30
SERVER = "127.0.0.1:15432"


# -- placeholders ------------------------------------------------------------------------------------


def test_placeholders_resolve_from_the_environment() -> None:
    env = {"HOST": "db.internal", "PORT": "5433"}
    assert resolve_placeholders("k", "${env:HOST}:${env:PORT}", env) == "db.internal:5433"
    assert resolve_placeholders("k", "literal", env) == "literal"


def test_an_unset_placeholder_names_the_key_and_the_variable() -> None:
    with pytest.raises(UnresolvedPlaceholder) as caught:
        resolve_placeholders("cdcsync-course: database.user", "${env:NOPE}", {})
    assert caught.value.variable == "NOPE"
    assert "cdcsync-course: database.user" in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_local_profile_resolves_placeholders_as_the_local_worker_does() -> None:
    spec = load_connector_specs()[0]
    local = Targets.local_stack(StackSettings.from_env({"CDCSYNC_PG_PORT": "35432"}))
    connection = source_connection(spec, local.placeholder_env())
    assert (connection.host, connection.port, connection.user) == ("127.0.0.1", 35432, "cdcsync_debezium")


def test_the_env_profile_resolves_placeholders_from_the_environment_only() -> None:
    spec = load_connector_specs()[0]
    env = {
        "CDCSYNC_PG_HOST": "pg.example",
        "CDCSYNC_PG_PORT": "5432",
        "CDCSYNC_DEBEZIUM_USER": "dbz",
        "CDCSYNC_DEBEZIUM_PASSWORD": "s3cret",
    }
    remote = source_connection(spec, Targets.environment(env).placeholder_env(placeholder_variables([spec])))
    assert (remote.host, remote.port, remote.dbname) == ("pg.example", 5432, spec.config["database.dbname"])
    assert "s3cret" not in repr(remote)
    assert "s3cret" not in remote.describe()
    assert "password=s3cret" in remote.conninfo()
    with pytest.raises(ConfigError) as missing:
        Targets.environment({"CDCSYNC_PG_HOST": "pg.example"}).placeholder_env(placeholder_variables([spec]))
    assert missing.value.key == "CDCSYNC_DEBEZIUM_PASSWORD, CDCSYNC_DEBEZIUM_USER, CDCSYNC_PG_PORT"
    assert "--local" in str(missing.value)


def test_without_the_local_fallback_a_placeholder_must_be_set() -> None:
    with pytest.raises(UnresolvedPlaceholder, match=r"\$\{env:CDCSYNC_[A-Z_]+\} is not set"):
        source_connection(load_connector_specs()[0], {})


def test_a_resolved_port_must_be_a_number() -> None:
    spec = load_connector_specs()[0]
    config = {**spec.config, "database.port": "${env:SOME_PORT}"}
    with pytest.raises(ConfigError, match=r"database\.port"):
        source_connection(dataclasses.replace(spec, config=config), {"SOME_PORT": "x"})


# -- sizes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1GiB", GIB), ("512 MiB", 512 << 20), ("2048", 2048), ("1.5kib", 1536), ("1GB", 10**9), ("3b", 3)],
)
def test_sizes_parse(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "1 parsec", "-5", "0"])
def test_bad_sizes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_the_threshold_comes_from_its_variable() -> None:
    assert wal_warning_threshold({}) == GIB
    assert wal_warning_threshold({"CDCSYNC_SLOT_WAL_WARNING": "64MiB"}) == 64 << 20
    with pytest.raises(ConfigError, match="CDCSYNC_SLOT_WAL_WARNING"):
        wal_warning_threshold({"CDCSYNC_SLOT_WAL_WARNING": "lots"})


def test_bytes_format() -> None:
    assert [format_bytes(n) for n in (None, 0, 1023, 1536, 40 << 20, 3 * GIB)] == [
        "-",
        "0 B",
        "1023 B",
        "1.5 KiB",
        "40.0 MiB",
        "3.0 GiB",
    ]


# -- the rules ---------------------------------------------------------------------------------------


def _slot(name: str, *, active: bool = True, retained: int | None = 1 << 20, database: str = "course") -> SlotHealth:
    return SlotHealth(SERVER, name, "logical", database, "pgoutput", active, retained, "reserved")


def _healthy(**changes: object) -> SourceFacts:
    facts = SourceFacts(
        connector="cdcsync-course",
        database="course",
        role="cdcsync_debezium",
        slot_name="cdcsync_course",
        publication_name="cdcsync_course",
        superuser=False,
        replication=True,
        tables=(
            TableFacts("public.lectures", exists=True, has_primary_key=True, can_select=True),
            TableFacts(
                "cdcsync_signal.debezium_signal",
                exists=True,
                has_primary_key=True,
                can_select=True,
                can_insert=True,
                kind="signal",
            ),
            TableFacts(
                HEARTBEAT_TABLE,
                exists=True,
                has_primary_key=True,
                can_select=True,
                can_insert=True,
                can_update=True,
                kind="heartbeat",
            ),
        ),
        expected_publication_tables=frozenset({"public.lectures", "cdcsync_signal.debezium_signal", HEARTBEAT_TABLE}),
        publication=PublicationFacts(
            exists=True, tables=frozenset({"public.lectures", "cdcsync_signal.debezium_signal", HEARTBEAT_TABLE})
        ),
        server=ServerFacts(SERVER, "logical", 10, 10, 1, (_slot("cdcsync_course"),)),
        create_publication_sql='CREATE PUBLICATION "cdcsync_course" FOR TABLE ...',
        set_publication_tables_sql='ALTER PUBLICATION "cdcsync_course" SET TABLE ...',
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def _with_table(table: TableFacts) -> SourceFacts:
    healthy = _healthy()
    return dataclasses.replace(healthy, tables=(table, *healthy.tables[1:]))


def _server(**changes: object) -> SourceFacts:
    return _healthy(server=dataclasses.replace(_healthy().server, **changes))  # type: ignore[arg-type]


def _checks(*sources: SourceFacts, threshold: int = GIB) -> list[tuple[str, str]]:
    return sorted((p.severity, p.check) for p in evaluate(sources, threshold))


def test_a_healthy_source_has_no_problem() -> None:
    assert evaluate([_healthy()], GIB) == []


def test_wal_level_must_be_logical() -> None:
    problems = evaluate([_server(wal_level="replica")], GIB)
    assert [(p.severity, p.check) for p in problems] == [("error", "wal_level")]
    assert "wal_level = logical" in problems[0].fix


def test_slot_headroom_counts_the_slots_still_to_create() -> None:
    # The connector's slot exists: 10 of 10 used is no headroom, but not an error.
    full = _server(slots=(*(_slot(f"s{i}") for i in range(9)), _slot("cdcsync_course")), wal_senders_in_use=0)
    assert _checks(full) == [("warning", "replication_slots")]
    # Its slot does not exist yet and every slot is taken: it cannot start.
    taken = _server(slots=tuple(_slot(f"s{i}") for i in range(10)), wal_senders_in_use=0)
    problems = evaluate([taken], GIB)
    assert ("error", "replication_slots") in [(p.severity, p.check) for p in problems]
    assert any("10 of max_replication_slots=10 in use" in p.message for p in problems)


def test_wal_sender_headroom_counts_connectors_not_yet_streaming() -> None:
    idle_slot = _server(slots=(_slot("cdcsync_course", active=False),), wal_senders_in_use=10)
    assert _checks(idle_slot) == [("error", "wal_senders")]
    assert _checks(_server(wal_senders_in_use=10)) == [("warning", "wal_senders")]


def test_server_problems_are_reported_once_per_server() -> None:
    attendance = _server(wal_level="replica")
    attendance = dataclasses.replace(attendance, connector="cdcsync-attendance", slot_name="cdcsync_course")
    problems = sorted_problems(evaluate([_server(wal_level="replica"), attendance], GIB))
    assert [p.check for p in problems] == ["wal_level"]


def test_the_role_needs_replication() -> None:
    problems = evaluate([_healthy(replication=False)], GIB)
    assert [(p.severity, p.check) for p in problems] == [("error", "replication_privilege")]
    assert "WITH REPLICATION" in problems[0].fix and "rds_replication" in problems[0].fix


def test_a_superuser_connector_is_a_warning() -> None:
    assert _checks(_healthy(superuser=True, replication=False)) == [("warning", "least_privilege")]


def test_select_on_every_captured_table() -> None:
    problems = evaluate([_with_table(TableFacts("public.lectures", exists=True, has_primary_key=True))], GIB)
    assert [(p.check, p.subject) for p in problems] == [("table_privilege", "course.public.lectures")]
    assert (
        problems[0].fix
        == "GRANT USAGE ON SCHEMA public TO cdcsync_debezium; GRANT SELECT ON public.lectures TO cdcsync_debezium"
    )


def test_the_signal_table_needs_insert_and_must_exist() -> None:
    healthy = _healthy()
    no_insert = dataclasses.replace(healthy.tables[1], can_insert=False)
    problems = evaluate([dataclasses.replace(healthy, tables=(healthy.tables[0], no_insert))], GIB)
    assert [p.check for p in problems] == ["table_privilege"]
    assert "INSERT" in problems[0].message and "watermarks" in problems[0].message
    missing = TableFacts("cdcsync_signal.debezium_signal", exists=False, kind="signal")
    assert _checks(dataclasses.replace(healthy, tables=(healthy.tables[0], missing))) == [("error", "signal_table")]


def test_the_heartbeat_table_must_exist_with_its_grants() -> None:
    healthy = _healthy()
    read_only = dataclasses.replace(healthy.tables[2], can_insert=False, can_update=False)
    problems = evaluate([dataclasses.replace(healthy, tables=(*healthy.tables[:2], read_only))], GIB)
    assert [(p.check, p.subject) for p in problems] == [("table_privilege", f"course.{HEARTBEAT_TABLE}")]
    assert "lacks INSERT and UPDATE" in problems[0].message and "heartbeat.action.query" in problems[0].message
    assert problems[0].fix == (
        "GRANT USAGE ON SCHEMA cdcsync_signal TO cdcsync_debezium; "
        f"GRANT INSERT, UPDATE ON {HEARTBEAT_TABLE} TO cdcsync_debezium"
    )

    missing = TableFacts(HEARTBEAT_TABLE, exists=False, kind="heartbeat")
    problems = evaluate([dataclasses.replace(healthy, tables=(*healthy.tables[:2], missing))], GIB)
    assert [(p.severity, p.check) for p in problems] == [("error", "heartbeat_table")]
    assert "fails the task" in problems[0].message
    assert "CREATE TABLE IF NOT EXISTS" in problems[0].fix
    assert 'GRANT SELECT, INSERT, UPDATE ON "cdcsync_signal"."debezium_heartbeat" TO "cdcsync_debezium"' in (
        problems[0].fix
    )


def test_a_missing_captured_table() -> None:
    assert _checks(_with_table(TableFacts("public.lectures", exists=False))) == [("error", "table")]


@pytest.mark.parametrize(
    ("has_key", "identity", "expected"),
    [
        (True, "d", []),
        (True, "f", []),
        (False, "d", [("error", "replica_identity")]),
        (False, "n", [("error", "replica_identity")]),
        (True, "n", [("error", "replica_identity")]),
        (False, "f", [("warning", "primary_key")]),
        (False, "i", [("warning", "primary_key")]),
    ],
)
def test_primary_keys_and_replica_identity(has_key: bool, identity: str, expected: list[tuple[str, str]]) -> None:
    table = TableFacts("public.lectures", True, has_primary_key=has_key, replica_identity=identity, can_select=True)
    assert _checks(_with_table(table)) == expected


def test_a_missing_publication_says_how_to_create_it() -> None:
    problems = evaluate([_healthy(publication=PublicationFacts(exists=False))], GIB)
    assert [(p.severity, p.check) for p in problems] == [("error", "publication")]
    assert "CREATE PUBLICATION" in problems[0].fix and "may not create it" in problems[0].message


def test_publication_contents_must_equal_the_captured_tables() -> None:
    publication = PublicationFacts(exists=True, tables=frozenset({"public.lectures", "public.other"}))
    (problem,) = evaluate([_healthy(publication=publication)], GIB)
    assert f"lacks {HEARTBEAT_TABLE}, cdcsync_signal.debezium_signal" in problem.message
    assert "also has public.other" in problem.message
    assert problem.fix.endswith('ALTER PUBLICATION "cdcsync_course" SET TABLE ...')


def test_a_publication_for_all_tables_is_wasteful_and_one_without_deletes_is_refused() -> None:
    # Debezium (publication.autocreate.mode=disabled) streams from it, filtering every other table's changes.
    all_tables = PublicationFacts(exists=True, all_tables=True)
    assert _checks(_healthy(publication=all_tables)) == [("warning", "publication")]
    partial = dataclasses.replace(_healthy().publication, publishes_all_operations=False)
    assert _checks(_healthy(publication=partial)) == [("error", "publication")]


def test_slots_retaining_wal_over_the_threshold_are_warnings() -> None:
    idle = _slot("forgotten", active=False, retained=2 * GIB)
    problems = evaluate([_server(slots=(*_healthy().server.slots, idle))], GIB)
    assert [(p.severity, p.subject) for p in problems] == [("warning", f"slot forgotten ({SERVER})")]
    assert "idle and retains 2.0 GiB" in problems[0].message
    assert "pg_drop_replication_slot('forgotten')" in problems[0].fix
    lagging = _slot("cdcsync_course", retained=GIB)
    assert "lags" in evaluate([_server(slots=(lagging,))], GIB)[0].message
    assert evaluate([_server(slots=(*_healthy().server.slots, idle))], 3 * GIB) == []


def test_a_lost_slot_is_an_error() -> None:
    lost = dataclasses.replace(_slot("cdcsync_course", retained=None), wal_status="lost")
    assert _checks(_server(slots=(lost,))) == [("error", "slot")]


def test_the_connector_slot_must_belong_to_its_database() -> None:
    elsewhere = _slot("cdcsync_course", database="attendance")
    assert _checks(_server(slots=(elsewhere,))) == [("error", "slot")]


# -- the report --------------------------------------------------------------------------------------


def _report() -> PreflightReport:
    problems = [
        Problem("warning", "slot", "slot x", "idle", "drop it"),
        Problem("error", "wal_level", "server s", "replica", "set logical"),
    ]
    return PreflightReport(
        problems=sorted_problems(problems + problems),
        slots=[_slot("x", active=False, retained=2 * GIB)],
        checked=["cdcsync-course"],
        wal_warning_bytes=GIB,
    )


def test_the_report_lists_errors_first_each_with_its_fix() -> None:
    report = _report()
    assert report.has_errors and report.has_warnings
    assert report.lines() == [
        "ERROR   wal_level: server s: replica",
        "        fix: set logical",
        "WARNING slot: slot x: idle",
        "        fix: drop it",
        "preflight: 1 connector source checked: 1 error(s), 1 warning(s)",
    ]
    assert PreflightReport(checked=["a", "b"]).lines() == ["preflight: 2 connector sources ready, no problem found"]
    assert not PreflightReport().has_errors


def test_the_report_as_json() -> None:
    document = json.loads(json.dumps(_report().to_json()))
    assert document["ok"] is False
    assert (document["errors"], document["warnings"]) == (1, 1)
    assert document["problems"][0] == {
        "severity": "error",
        "check": "wal_level",
        "subject": "server s",
        "message": "replica",
        "fix": "set logical",
    }
    assert document["slots"][0]["slot_name"] == "x" and document["slots"][0]["over_threshold"] is True


def test_slot_lines_mark_slots_over_the_threshold() -> None:
    lines = slot_lines([_slot("b"), _slot("a", active=False, retained=2 * GIB)], GIB)
    assert lines[0].split() == ["server", "slot", "state", "retained", "WAL"]
    assert lines[1].split() == [SERVER, "a", "idle", "2.0", "GiB", "!"]
    assert lines[2].split() == [SERVER, "b", "active", "1.0", "MiB"]
    assert slot_lines([], GIB) == ["  no replication slot"]


def test_compose_runs_the_preflight_with_the_connect_workers_placeholders() -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml").read_text())
    worker = compose["services"]["connect"]["environment"]
    preflight = compose["services"]["connectors"]["environment"]
    for variable in StackEndpoints(StackSettings.from_env({})).connect_worker_env():
        if variable == REGISTRY_URL_PLACEHOLDER_VARIABLE:  # the converters' only, not a source connection's
            continue
        assert str(preflight[variable]) == str(worker[variable]), variable


def test_status_shows_slot_health_or_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDCSYNC_SLOT_WAL_WARNING", raising=False)
    idle = [_slot("idle", active=False, retained=2 * GIB)]
    monkeypatch.setattr(status_report, "slot_health", lambda specs, env: idle)
    local = Targets.local_stack(StackSettings.from_env({}))
    lines = status_report.slot_health_section(local)
    assert lines[0] == "replication slots (! = retains at least 1.0 GiB):"
    assert lines[2].split()[-1] == "!"

    def unreachable(specs: object, env: object) -> list[SlotHealth]:
        raise psycopg.OperationalError("connection refused\n\tIs the server running?")

    monkeypatch.setattr(status_report, "slot_health", unreachable)
    assert status_report.slot_health_section(local) == ["replication slots:", "  unavailable: connection refused"]
