"""The Kafka Connect client's pure logic: HTTP answer -> exception, retries, status parsing."""

from __future__ import annotations

import pytest

from debezium.commands import format_table, status_rows, trace_summary
from debezium.connect_client import (
    ConnectClient,
    ConnectorNotFound,
    ConnectorState,
    ConnectRequestFailed,
    ConnectUnreachable,
    RebalanceInProgress,
    backoff_delays,
    error_for_response,
    is_retryable,
    validation_errors,
)
from pipeline.errors import ConnectError


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_is_no_error(status: int) -> None:
    assert error_for_response("GET", "/connectors", status, "") is None


def test_404_is_not_found() -> None:
    error = error_for_response("GET", "/connectors/cdcsync-course/config", 404, "Connector cdcsync-course not found")
    assert isinstance(error, ConnectorNotFound)
    assert not is_retryable(error)


def test_409_is_a_rebalance_and_retried() -> None:
    error = error_for_response("PUT", "/connectors/x/config", 409, "Cannot complete request momentarily")
    assert isinstance(error, RebalanceInProgress)
    assert is_retryable(error)


@pytest.mark.parametrize("status", [400, 401, 405, 500, 503])
def test_other_errors_keep_status_and_message_and_are_not_retried(status: int) -> None:
    error = error_for_response("PUT", "/connectors/x/config", status, "Connector configuration is invalid")
    assert isinstance(error, ConnectRequestFailed)
    assert error.status == status
    assert "Connector configuration is invalid" in str(error)
    assert not is_retryable(error)


def test_every_client_error_is_a_connect_error_with_its_exit_code() -> None:
    for error in (ConnectUnreachable("http://127.0.0.1:1"), ConnectorNotFound("x"), RebalanceInProgress("GET", "/")):
        assert isinstance(error, ConnectError)
        assert error.exit_code == 4


def test_unreachable_message_says_what_to_do() -> None:
    message = str(ConnectUnreachable("http://127.0.0.1:18083"))
    assert message == "Kafka Connect not reachable at http://127.0.0.1:18083: is it running? (cdcsync stack up)"


def test_backoff_doubles_up_to_a_cap() -> None:
    assert backoff_delays(6) == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delays(1) == []


def test_constructor_makes_no_network_call() -> None:
    client = ConnectClient("http://127.0.0.1:1/")
    assert client.base_url == "http://127.0.0.1:1"
    client.close()


STATUS = {
    "name": "cdcsync-course",
    "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:18083"},
    "tasks": [{"id": 0, "state": "FAILED", "worker_id": "127.0.0.1:18083", "trace": "org.x.Boom: no\n\tat y"}],
    "type": "source",
}


def test_status_parsing_and_running_needs_every_task_running() -> None:
    state = ConnectorState.from_json(STATUS)
    assert state.state == "RUNNING"
    assert state.tasks[0].state == "FAILED"
    assert state.tasks[0].trace is not None
    assert not state.running
    healthy = ConnectorState.from_json({**STATUS, "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "w"}]})
    assert healthy.running
    assert not ConnectorState.from_json({**STATUS, "tasks": []}).running


def test_status_table_has_one_row_per_task() -> None:
    states = [
        ConnectorState.from_json(STATUS),
        ConnectorState.from_json({"name": "cdcsync-attendance", "connector": {"state": "UNASSIGNED", "worker_id": ""}}),
    ]
    rows = status_rows(states)
    assert rows == [
        ("cdcsync-attendance", "UNASSIGNED", "-", "-", ""),
        ("cdcsync-course", "RUNNING", "0", "FAILED", "127.0.0.1:18083"),
    ]
    table = format_table(("CONNECTOR", "STATE", "TASK", "TASK STATE", "WORKER"), rows).splitlines()
    assert table[0].split() == ["CONNECTOR", "STATE", "TASK", "TASK", "STATE", "WORKER"]
    assert len(table) == 3


def test_validation_errors_keep_only_properties_with_errors() -> None:
    body = {
        "name": "io.debezium.connector.postgresql.PostgresConnector",
        "error_count": 1,
        "configs": [
            {"value": {"name": "database.password", "value": "[hidden]", "errors": []}},
            {"value": {"name": "database.hostname", "value": "127.0.0.1", "errors": ["Error while validating"]}},
        ],
    }
    assert validation_errors(body) == {"database.hostname": ("Error while validating",)}
    assert validation_errors({"configs": []}) == {}


def test_trace_summary_names_the_root_cause() -> None:
    trace = (
        "org.apache.kafka.connect.errors.ConnectException: Unable to create filtered publication cdcsync_course\n"
        "\tat io.debezium.X.y(X.java:1)\n"
        "Caused by: org.postgresql.util.PSQLException: ERROR: permission denied for database course\n"
        "\t... 16 more\n"
    )
    assert trace_summary(trace) == (
        "org.apache.kafka.connect.errors.ConnectException: Unable to create filtered publication cdcsync_course"
        " (Caused by: org.postgresql.util.PSQLException: ERROR: permission denied for database course)"
    )
    assert trace_summary("Boom\n\tat a.b") == "Boom"
