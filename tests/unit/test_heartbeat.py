"""The heartbeat that lets a quiet database's slot advance: the connector settings and their validation."""

from __future__ import annotations

import pytest

from cdcsync.debezium.connector_spec import ConnectorSpec, ConnectorSpecError, load_connector_specs
from cdcsync.debezium.heartbeat import (
    HEARTBEAT_QUERY,
    HEARTBEAT_TABLE,
    create_heartbeat_table_statement,
    grant_heartbeat_statement,
    heartbeat_table,
)
from cdcsync.debezium.publications import publication_tables


def _with(key: str, value: str | None) -> ConnectorSpec:
    """The first shipped connector with ``key`` set to ``value``, or removed when None."""
    spec = load_connector_specs()[0]
    config = {k: v for k, v in spec.config.items() if k != key}
    return ConnectorSpec(spec.name, config if value is None else {**config, key: value})


@pytest.mark.parametrize("spec", load_connector_specs(), ids=lambda s: s.name)
def test_every_connector_beats_into_its_heartbeat_table(spec: ConnectorSpec) -> None:
    assert spec.config["heartbeat.action.query"] == HEARTBEAT_QUERY
    assert heartbeat_table(spec) == HEARTBEAT_TABLE
    # pgoutput sends nothing for a transaction that touched no published table.
    assert HEARTBEAT_TABLE in publication_tables(spec)
    # Not captured: Debezium confirms the heartbeat's commit without producing a change topic for it.
    assert HEARTBEAT_TABLE not in spec.tables
    # Debezium would otherwise ALTER the publication to drop the heartbeat table, which its role may not.
    assert spec.config["publication.autocreate.mode"] == "disabled"
    assert 0 < int(spec.config["heartbeat.interval.ms"]) <= 60_000


def test_the_query_writes_the_heartbeat_table() -> None:
    assert HEARTBEAT_QUERY.startswith(f"INSERT INTO {HEARTBEAT_TABLE} ")


def test_no_action_query_means_no_heartbeat_table() -> None:
    spec = _with("heartbeat.action.query", None)
    assert heartbeat_table(spec) is None
    assert not any(t == HEARTBEAT_TABLE for t in publication_tables(spec))


def test_another_action_query_is_refused_naming_the_key() -> None:
    spec = _with("heartbeat.action.query", "UPDATE elsewhere SET x = now()")
    with pytest.raises(ConnectorSpecError) as caught:
        heartbeat_table(spec)
    assert caught.value.spec_key == "config.heartbeat.action.query"
    assert HEARTBEAT_QUERY in str(caught.value)


@pytest.mark.parametrize("interval", [None, "0", "-5", "soon"])
def test_an_action_query_that_never_runs_is_refused(interval: str | None) -> None:
    spec = _with("heartbeat.interval.ms", interval)
    with pytest.raises(ConnectorSpecError) as caught:
        heartbeat_table(spec)
    assert caught.value.spec_key == "config.heartbeat.interval.ms"


def test_statements() -> None:
    assert create_heartbeat_table_statement().as_string(None) == (
        'CREATE TABLE IF NOT EXISTS "cdcsync_signal"."debezium_heartbeat" '
        "(id smallint PRIMARY KEY CHECK (id = 1), beat_at timestamptz NOT NULL)"
    )
    assert grant_heartbeat_statement("cdcsync_debezium").as_string(None) == (
        'GRANT SELECT, INSERT, UPDATE ON "cdcsync_signal"."debezium_heartbeat" TO "cdcsync_debezium"'
    )
