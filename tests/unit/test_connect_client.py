"""The Kafka Connect client's pure logic: HTTP answer -> exception (and exit code), retries, status parsing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import cdcsync.pipeline.errors
from cdcsync.debezium.connect_client import (
    BasicAuth,
    ConnectClient,
    ConnectorNotFound,
    ConnectorState,
    ConnectRequestFailed,
    ConnectUnauthorized,
    ConnectUnreachable,
    RebalanceInProgress,
    TlsOptions,
    backoff_delays,
    error_for_response,
    is_retryable,
    validation_errors,
)
from cdcsync.debezium.connect_errors import (
    ConnectError,
    ConnectorConfigInvalid,
    ConnectorFailed,
    ConnectorStateConflict,
    ConnectTimeout,
    subject,
)
from cdcsync.debezium.connector_state import ConnectorInfo


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_is_no_error(status: int) -> None:
    assert error_for_response("GET", "/connectors", status, "") is None


def test_404_is_not_found_and_names_the_connector() -> None:
    error = error_for_response("GET", "/connectors/cdcsync-course/config", 404, "Connector cdcsync-course not found")
    assert isinstance(error, ConnectorNotFound)
    assert str(error) == "connector 'cdcsync-course' not found in Kafka Connect"
    assert not is_retryable(error)


def test_subject_of_a_path() -> None:
    assert subject("/connectors/a%2Fb/status") == "connector 'a/b'"
    assert subject("/connector-plugins/io.X/config/validate") == "plugin 'io.X'"
    assert subject("/connectors") == "/connectors"


def test_409_is_a_rebalance_and_retried() -> None:
    error = error_for_response("PUT", "/connectors/x/config", 409, "Cannot complete request momentarily")
    assert isinstance(error, RebalanceInProgress)
    assert is_retryable(error)


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_credentials_problems_that_say_the_fix(status: int) -> None:
    error = error_for_response("GET", "/connectors", status, "Unauthorized")
    assert isinstance(error, ConnectUnauthorized)
    assert "CONNECT_PASSWORD" in str(error)
    assert not is_retryable(error)


def test_400_on_put_config_is_an_invalid_config() -> None:
    error = error_for_response("PUT", "/connectors/x/config", 400, "The 'snapshot.mode' value is invalid")
    assert isinstance(error, ConnectorConfigInvalid)
    assert "snapshot.mode" in str(error)


@pytest.mark.parametrize("status", [400, 405, 500, 503])
def test_other_errors_keep_status_and_message_and_are_not_retried(status: int) -> None:
    error = error_for_response("DELETE", "/connectors/x/offsets", status, "Connectors must be in the STOPPED state")
    assert isinstance(error, ConnectRequestFailed)
    assert error.status == status
    assert "STOPPED state" in str(error)
    assert not is_retryable(error)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConnectRequestFailed("GET", "/", 500, "boom"), 4),
        (ConnectUnreachable("http://127.0.0.1:1"), 5),
        (ConnectUnauthorized("GET", "/", 401), 6),
        (ConnectorNotFound("x"), 7),
        (RebalanceInProgress("GET", "/"), 8),
        (ConnectorStateConflict("x", "RUNNING", "STOPPED", "stop it"), 8),
        (ConnectorConfigInvalid("bad"), 9),
        (ConnectTimeout("slow"), 10),
        (ConnectorFailed("x FAILED"), 11),
    ],
)
def test_every_client_error_is_a_connect_error_with_its_documented_exit_code(error: ConnectError, code: int) -> None:
    assert isinstance(error, ConnectError)
    assert error.exit_code == code
    assert cdcsync.pipeline.errors.__doc__ is not None
    assert f"\n{code} " in cdcsync.pipeline.errors.__doc__  # documented in the one table


def test_unreachable_message_says_what_to_do() -> None:
    message = str(ConnectUnreachable("http://127.0.0.1:18083"))
    assert message == "Kafka Connect not reachable at http://127.0.0.1:18083: is it running? (cdcsync stack up)"


def test_backoff_doubles_up_to_a_cap() -> None:
    assert backoff_delays(6) == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delays(1) == []


def test_constructor_makes_no_network_call_and_its_repr_hides_the_password() -> None:
    client = ConnectClient("http://127.0.0.1:1/", auth=BasicAuth("ops", "hunter2"))
    assert client.base_url == "http://127.0.0.1:1"
    assert "hunter2" not in repr(client)
    assert "hunter2" not in repr(client.auth)
    client.close()


def test_tls_options_become_requests_arguments() -> None:
    assert TlsOptions().verify is True
    assert TlsOptions().cert is None
    tls = TlsOptions(ca_cert=Path("/ca.pem"), client_cert=Path("/c.pem"), client_key=Path("/k.pem"))
    assert tls.verify == "/ca.pem"
    assert tls.cert == ("/c.pem", "/k.pem")
    assert TlsOptions(client_cert=Path("/both.pem")).cert == "/both.pem"
    assert TlsOptions(ca_cert=Path("/ca.pem"), insecure=True).verify is False


class ScriptedClient(ConnectClient):
    """The client with its transport replaced by scripted answers: the retry loop runs for real."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.slept: list[float] = []
        super().__init__("http://127.0.0.1:1", attempts=4, sleep=self.slept.append)
        self.answers = answers
        self.sent: list[tuple[str, str]] = []

    def _send(self, method: str, path: str, json_body: object, params: Any) -> tuple[int, Any]:
        self.sent.append((method, path))
        status, body = self.answers.pop(0)
        error = error_for_response(method, path, status, str(body))
        if error is not None:
            raise error
        return status, body


def test_409_is_retried_with_backoff_until_it_succeeds() -> None:
    client = ScriptedClient([(409, "rebalancing"), (409, "rebalancing"), (201, {"name": "x"})])
    assert client.put_connector_config("x", {"a": "b"}) is True
    assert client.slept == [0.5, 1.0]
    assert client.sent == [("PUT", "/connectors/x/config")] * 3


def test_409_gives_up_after_the_attempts() -> None:
    client = ScriptedClient([(409, "rebalancing")] * 4)
    with pytest.raises(RebalanceInProgress):
        client.pause_connector("x")
    assert client.slept == [0.5, 1.0, 2.0]


def test_a_500_on_a_read_is_retried_as_connect_answers_reads_during_a_rebalance_so() -> None:
    client = ScriptedClient([(500, "Request cannot be completed because a rebalance is expected"), (200, {"a": "b"})])
    assert client.get_connector_config("x") == {"a": "b"}
    assert client.slept == [0.5]
    writing = ScriptedClient([(500, "boom"), (200, {})])
    with pytest.raises(ConnectRequestFailed):
        writing.pause_connector("x")
    assert writing.slept == []


def test_other_errors_are_not_retried() -> None:
    client = ScriptedClient([(401, "no"), (200, {})])
    with pytest.raises(ConnectUnauthorized):
        client.list_connectors()
    assert client.slept == []


STATUS: Mapping[str, Any] = {
    "name": "cdcsync-course",
    "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:18083"},
    "tasks": [{"id": 0, "state": "FAILED", "worker_id": "127.0.0.1:18083", "trace": "org.x.Boom: no\n\tat y"}],
    "type": "source",
}


def test_status_parsing_and_running_needs_every_task_running() -> None:
    state = ConnectorState.from_json(STATUS)
    assert state.state == "RUNNING"
    assert state.type == "source"
    assert state.tasks[0].state == "FAILED"
    assert state.tasks[0].trace is not None
    assert not state.running
    assert state.failed
    healthy = ConnectorState.from_json({**STATUS, "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "w"}]})
    assert healthy.running
    assert not healthy.failed
    assert not ConnectorState.from_json({**STATUS, "tasks": []}).running


def test_info_takes_type_and_config_from_the_info_document() -> None:
    info = ConnectorInfo.from_json(
        {"name": "x", "config": {"a": 1}, "tasks": [], "type": "source"},
        {"name": "x", "connector": {"state": "STOPPED", "worker_id": "w"}, "tasks": []},
    )
    assert info.name == "x"
    assert info.status.type == "source"
    assert info.status.state == "STOPPED"
    assert dict(info.config) == {"a": "1"}


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
