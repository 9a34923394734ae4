"""`cdcsync connectors` operations against the real Kafka Connect and Debezium of the test stack.

Every scenario uses connectors of its own (``own_connectors``): copies of course.json on a
database of their own, under their own name, slot, publication and topic prefix, removed
afterwards with all they left behind. The shipped connectors are never touched, so they
stay RUNNING for the tests that follow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaException

from cdcsync.debezium.connect_client import ConnectClient, ConnectorNotFound
from cdcsync.debezium.output import MASK
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import Targets
from tests.integration.conftest import topic_values, until
from tests.support.cli_runs import Run, run_cdcsync
from tests.support.own_connector import OwnConnector, OwnConnectors

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pipeline: Targets) -> Callable[..., Run]:
    """``ops("get", ...)`` runs ``cdcsync connectors get ... --connect-url <test stack>``."""
    monkeypatch.setenv("CDCSYNC_CONFIG", "/nonexistent/cdcsync-contexts.toml")  # no user's contexts
    return lambda *args: run_cdcsync(monkeypatch, capsys, "connectors", *args, "--connect-url", pipeline.connect_url)


@pytest.fixture
def client(pipeline: Targets) -> Iterator[ConnectClient]:
    with ConnectClient(pipeline.connect_url) as connect:
        yield connect


def _failed(client: ConnectClient, name: str) -> bool | None:
    try:
        return True if client.connector_status(name).failed else None
    except ConnectorNotFound:  # just created: no status yet
        return None


def _events(targets: Targets, topic: str) -> list[dict[str, Any]]:
    """Every change event in ``topic`` (tombstones left out); none while the topic does not exist yet."""
    try:
        return [json.loads(value) for value in topic_values(targets, topic) if value]
    except KafkaException:  # the connector has not created the topic yet
        return []


def _seed_courses(connector: OwnConnector, count: int = 5) -> int:
    """``count`` courses in the connector's database, for its snapshot to read; returns ``count``."""
    connector.execute(
        *(("INSERT INTO courses (id, title) VALUES (%s, %s)", (i, f"course {i}")) for i in range(1, count + 1))
    )
    return count


def _snapshot_reads(targets: Targets, connector: OwnConnector, expected: int) -> int | None:
    reads = [event["op"] for event in _events(targets, connector.topic("courses"))].count("r")
    return reads if reads >= expected else None


def test_dry_run_rejects_bad_values_per_field_and_creates_nothing(
    ops: Callable[..., Run], own_connectors: OwnConnectors, client: ConnectClient
) -> None:
    # Only dry-run, never started: its database needs no publication (whose set-up would refuse the heartbeat value).
    bad = own_connectors.make(publication=False, config={"snapshot.mode": "bogus", "heartbeat.interval.ms": "often"})
    run = ops("apply", "-f", str(bad.file), "--dry-run", "--skip-preflight")
    assert run.code == 9, run
    assert f"{bad.name}: invalid" in run.stdout
    assert "  snapshot.mode: The 'snapshot.mode' value is invalid" in run.stdout
    assert "  heartbeat.interval.ms: " in run.stdout
    assert "nothing was applied" in run.stderr
    good = own_connectors.make()
    run = ops("apply", "-f", str(good.file), "--dry-run", "--skip-preflight")
    assert (run.code, run.stdout.strip()) == (0, f"{good.name}: would be created"), run
    assert not {bad.name, good.name} & set(client.list_connectors())


def test_failed_connector_is_restarted_once_its_cause_is_fixed(
    ops: Callable[..., Run], own_connectors: OwnConnectors, client: ConnectClient
) -> None:
    connector = own_connectors.make(publication=False)  # missing, and its role may not create it
    refused = ops("apply", "-f", str(connector.file))
    assert refused.code == 1, refused
    assert f"publication {connector.spec.publication_name}" in refused.stderr
    assert connector.name not in client.list_connectors()

    assert ops("apply", "-f", str(connector.file), "--skip-preflight").stdout == f"{connector.name}: created\n"
    until("its task to fail", lambda: _failed(client, connector.name), timeout=90)
    got = json.loads(ops("get", connector.name, "-o", "json").stdout)
    assert [task["state"] for task in got[0]["tasks"]] == ["FAILED"]
    assert "Publication autocreation is disabled" in got[0]["tasks"][0]["trace"]
    waited = ops("apply", "-f", str(connector.file), "--skip-preflight", "--wait", "--timeout", "60")
    assert waited.code == 11, waited  # unchanged and FAILED: nothing would restart it
    assert f"{connector.name} task 0 FAILED" in waited.stderr

    connector.create_publication()
    restarted = ops("restart", connector.name, "--failed-only", "--wait", "--timeout", "120")
    assert restarted.code == 0, restarted
    assert client.connector_status(connector.name).running


def test_delete_and_recreate_resumes_from_the_stored_position_without_a_new_snapshot(
    ops: Callable[..., Run], own_connectors: OwnConnectors, pipeline: Targets, client: ConnectClient
) -> None:
    connector = own_connectors.make()
    courses = _seed_courses(connector)
    created = ops("apply", "-f", str(connector.file), "--wait", "--timeout", "120")
    assert created.code == 0, created
    until("the snapshot", lambda: _snapshot_reads(pipeline, connector, courses), timeout=90)
    assert ops("apply", "-f", str(connector.file)).stdout == f"{connector.name}: unchanged\n"

    assert ops("delete", connector.name).code == 0
    until("the connector to be gone", lambda: None if connector.name in client.list_connectors() else True)
    until("its slot to be released", connector.released_slot)
    course_id = 1000
    # Committed while no connector reads the slot.
    connector.execute(("INSERT INTO courses (id, title) VALUES (%s, %s)", (course_id, "written while deleted")))
    again = ops("apply", "-f", str(connector.file), "--wait", "--timeout", "120")
    assert again.stdout.startswith(f"{connector.name}: created\n"), again

    def insert_seen() -> list[dict[str, Any]] | None:
        events = _events(pipeline, connector.topic("courses"))
        return events if any((e.get("after") or {}).get("id") == course_id for e in events) else None

    events = until("the change written while it was deleted", insert_seen, timeout=90)
    ops_seen = [e["op"] for e in events]
    assert ops_seen.count("r") == courses, "a re-created connector must not snapshot again"
    assert [e["op"] for e in events if (e.get("after") or {}).get("id") == course_id] == ["c"]


def test_stop_offsets_reset_and_resume_takes_a_new_snapshot_and_keeps_the_slot(
    ops: Callable[..., Run], own_connectors: OwnConnectors, pipeline: Targets
) -> None:
    connector = own_connectors.make()
    courses = _seed_courses(connector)
    assert ops("apply", "-f", str(connector.file), "--wait", "--timeout", "120").code == 0
    until("the snapshot", lambda: _snapshot_reads(pipeline, connector, courses), timeout=90)

    refused = ops("offsets", "reset", connector.name, "--yes")
    assert refused.code == 8, refused
    assert "is RUNNING, not STOPPED" in refused.stderr

    stopped = ops("stop", connector.name, "--wait", "--timeout", "60")
    assert stopped.code == 0, stopped
    assert json.loads(ops("get", connector.name, "-o", "json").stdout)[0]["state"] == "STOPPED"
    stored = json.loads(ops("offsets", "get", connector.name, "-o", "json").stdout)
    assert stored["offsets"][0]["partition"] == {"server": connector.spec.topic_prefix}
    assert isinstance(stored["offsets"][0]["offset"]["lsn"], int)
    slot_before = until("the slot to be released", connector.released_slot)

    reset = ops("offsets", "reset", connector.name, "--yes")
    assert reset.code == 0, reset
    assert "takes a new snapshot" in reset.stdout
    assert json.loads(ops("offsets", "get", connector.name, "-o", "json").stdout)["offsets"] == []
    assert connector.slot() == slot_before  # neither dropped nor moved by the reset

    resumed = ops("resume", connector.name, "--wait", "--timeout", "120")
    assert resumed.code == 0, resumed
    until("a second snapshot", lambda: _snapshot_reads(pipeline, connector, 2 * courses), timeout=90)
    assert connector.slot() is not None


def test_describe_and_get_mask_literal_secrets_and_show_placeholders(
    ops: Callable[..., Run], own_connectors: OwnConnectors, client: ConnectClient
) -> None:
    connector = own_connectors.make()
    _seed_courses(connector)  # its snapshot writes to its courses topic
    literal = f"literal-secret-{uuid.uuid4().hex}"
    # A definition file may not hold a literal secret, so this one goes straight to Connect.
    client.put_connector_config(connector.name, {**connector.spec.config, "database.sslpassword": literal})

    described = ops("describe", connector.name)
    as_json = ops("get", connector.name, "-o", "json")
    as_yaml = ops("describe", connector.name, "-o", "yaml")
    for run in (described, as_json, as_yaml):
        assert run.code == 0, run
        assert literal not in run.stdout + run.stderr
        assert StackSettings.from_env().password not in run.stdout  # resolved only inside the worker
    config = json.loads(as_json.stdout)[0]["config"]
    assert config["database.sslpassword"] == MASK
    assert config["database.password"] == "${env:CDCSYNC_DEBEZIUM_PASSWORD}"
    assert ["database.sslpassword", MASK] in [line.split() for line in described.stdout.splitlines()]
    topic = connector.topic("courses")
    until("its topic", lambda: True if topic in client.connector_topics(connector.name) else None, 90)
    described = ops("describe", connector.name)
    assert f"  {topic}" in described.stdout
    assert "Worker:  127.0.0.1:" in described.stdout
