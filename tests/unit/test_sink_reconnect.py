"""The sink's decisions about failures, and the shape of its reconnect policy (pure parts)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaError
from psycopg import errors as pg_errors
from tenacity import RetryCallState, Retrying

from sink.errors import (
    CalendarDatabaseUnavailable,
    CalendarLoginRefused,
    KafkaAccessDenied,
    KafkaUnavailable,
    SinkConfigInvalid,
    database_failure,
    kafka_failure,
)
from sink.reconnect import Outages, Reconnector, RetryPolicy
from sink.sink_state import LostDependency, SinkState, read_state


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.CannotConnectNow("the database system is starting up"),
        pg_errors.ReadOnlySqlTransaction("cannot execute CREATE TABLE in a read-only transaction"),
        pg_errors.SerializationFailure("could not serialize access"),
        psycopg.InterfaceError("the connection is closed"),
    ],
)
def test_a_lost_or_restarting_database_is_retried(error: psycopg.Error) -> None:
    assert isinstance(database_failure(error), CalendarDatabaseUnavailable)


def test_rejected_credentials_stop_the_sink() -> None:
    assert isinstance(
        database_failure(pg_errors.InvalidPassword("password authentication failed")), CalendarLoginRefused
    )


@dataclass
class FailedLogin:
    """What libpq knows of a connection attempt the server ended (psycopg's ``exc.pgconn``)."""

    needs_password: bool = False
    used_password: bool = False


@pytest.mark.parametrize("login", [FailedLogin(used_password=True), FailedLogin(needs_password=True)])
def test_a_login_refused_ends_the_first_connection_but_is_retried_after_an_outage(login: FailedLogin) -> None:
    error = psycopg.OperationalError("connection failed", pgconn=login)  # type: ignore[arg-type]
    assert isinstance(database_failure(error, first_connect=True), CalendarLoginRefused)
    assert isinstance(database_failure(error, first_connect=False), CalendarDatabaseUnavailable)


def test_an_unreachable_server_is_retried_even_at_the_first_connection() -> None:
    error = psycopg.OperationalError("connection refused", pgconn=FailedLogin())  # type: ignore[arg-type]
    assert isinstance(database_failure(error, first_connect=True), CalendarDatabaseUnavailable)


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.UndefinedColumn('column "x" does not exist'),
        pg_errors.ProgramLimitExceeded("index row size exceeds maximum"),  # an OperationalError, yet no outage
    ],
)
def test_a_bug_or_a_row_that_cannot_be_written_is_not_an_outage(error: psycopg.Error) -> None:
    assert database_failure(error) is None


@pytest.mark.parametrize(
    "code",
    [KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._MSG_TIMED_OUT, KafkaError.NOT_COORDINATOR],
)
def test_a_broker_down_is_retried(code: int) -> None:
    assert isinstance(kafka_failure(KafkaError(code)), KafkaUnavailable)


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (KafkaError(KafkaError.SASL_AUTHENTICATION_FAILED), KafkaAccessDenied),
        (KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), KafkaAccessDenied),
        (KafkaError(KafkaError._FENCED, fatal=True), KafkaAccessDenied),
        (KafkaError(KafkaError._INVALID_ARG), SinkConfigInvalid),
    ],
)
def test_what_retrying_cannot_fix_stops_the_sink(error: KafkaError, decision: type[Exception]) -> None:
    assert isinstance(kafka_failure(error), decision)


@pytest.mark.parametrize(
    "code", [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._MAX_POLL_EXCEEDED]
)
def test_other_kafka_errors_are_left_to_the_caller(code: int) -> None:
    assert kafka_failure(KafkaError(code)) is None


def _wait(policy: RetryPolicy, attempt: int) -> float:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return policy.wait()(state)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=30.0, jitter_s=1.0)
    for attempt in range(1, 30):
        floor = min(0.5 * 2 ** (attempt - 1), 30.0)
        waits = [_wait(policy, attempt) for _ in range(50)]
        assert all(floor <= w <= min(floor + 1.0, 30.0) for w in waits), (attempt, waits)
    assert len({_wait(policy, 3) for _ in range(50)}) > 1  # jitter: retries of many sinks do not align
    assert _wait(policy, 60) == 30.0


def test_one_line_per_outage_and_one_on_recovery_and_the_state_file_follows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_file = tmp_path / "sink-state.json"
    outages = Outages(state_file)
    outages.running()
    reconnect = Reconnector(RetryPolicy(initial_s=0.001, max_s=0.002, jitter_s=0.001), outages, threading.Event())
    seen: list[SinkState | None] = []

    def connect() -> str:
        seen.append(read_state(state_file))
        if len(seen) < 5:
            raise CalendarDatabaseUnavailable("AdminShutdown: terminating connection")
        return "connected"

    with caplog.at_level(logging.INFO, logger="sink.reconnect"):
        assert reconnect.call(connect, restores="calendar database") == "connected"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0] == "calendar database unavailable, reconnecting with backoff: AdminShutdown: terminating connection"
    assert lines[1].startswith("calendar database back after ") and lines[1].endswith("(4 failures meanwhile)")
    during = seen[-1]
    assert during is not None and during.state == "reconnecting"
    assert [(lost.dependency, lost.error) for lost in during.lost] == [
        ("calendar database", "AdminShutdown: terminating connection")
    ]
    after = read_state(state_file)
    assert after is not None and (after.state, after.lost) == ("running", ())


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()
    reconnect = Reconnector(RetryPolicy(initial_s=60.0, max_s=60.0), Outages(None), stop)

    def down() -> None:
        stop.set()
        raise KafkaUnavailable("_ALL_BROKERS_DOWN: 1/1 brokers are down")

    with pytest.raises(KafkaUnavailable):
        reconnect.call(down, restores="kafka")


def test_the_state_says_what_was_lost_since_when() -> None:
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    state = SinkState(
        1, "reconnecting", since.isoformat(), (LostDependency("kafka", since.isoformat(), "_TRANSPORT: refused"),)
    )
    assert state.describe(since + timedelta(seconds=42)) == (
        "reconnecting: kafka lost 42s ago (since 2026-01-01T12:00:00+00:00): _TRANSPORT: refused"
    )
