"""Exception types that carry the sink's decision about a failure.

- ``InvalidMessage``: the message goes to the dead-letter topic; the pipeline continues.
- ``DependencyUnavailable`` (``CalendarDatabaseUnavailable``, ``KafkaUnavailable``,
  ``SchemaRegistryUnavailable``): retrying can fix it; the daemon waits with backoff and resumes
  from the stored offsets.
- ``SinkCannotContinue``: retrying cannot fix it; the daemon stops with ``exit_code``
  (the exit codes are documented in ``pipeline.errors``).

``database_failure`` and ``kafka_failure`` turn a client's error into one of these.
"""

from __future__ import annotations

import psycopg
from confluent_kafka import KafkaError
from psycopg import errors as pg_errors


class InvalidMessage(Exception):
    """The message can never be applied as it is: it goes to the dead-letter topic.

    The pipeline continues past it once the dead letter is durably written.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DependencyUnavailable(Exception):
    """A dependency is down or dropped the connection: retrying can fix it."""

    dependency = "a dependency"


class CalendarDatabaseUnavailable(DependencyUnavailable):
    dependency = "calendar database"


class KafkaUnavailable(DependencyUnavailable):
    dependency = "kafka"


class SchemaRegistryUnavailable(DependencyUnavailable):
    """The schema registry did not answer (refused, timed out) or answered with a server error."""

    dependency = "schema registry"


class SinkCannotContinue(Exception):
    """Retrying cannot fix it: the daemon stops, before any offset moves, with ``exit_code``; ``fix`` says what
    to do. A subclass declares both in its header, so none can fall back to a code the table does not document.
    """

    exit_code = 1
    fix = "see the message"

    def __init_subclass__(cls, *, exit_code: int, fix: str) -> None:
        super().__init_subclass__()
        cls.exit_code = exit_code
        cls.fix = fix


class SinkConfigInvalid(
    SinkCannotContinue, exit_code=2, fix="correct the Kafka settings (KAFKA_BOOTSTRAP_SERVERS, client options)"
):
    """The Kafka client rejects its configuration."""


class CalendarLoginRefused(
    SinkCannotContinue, exit_code=20, fix="check the role, password and database name in CDCSYNC_SINK_DB_URL"
):
    """The calendar database rejected the sink's credentials, role or database name."""


class CalendarSchemaNotMigratable(
    SinkCannotContinue,
    exit_code=21,
    fix="the role in CDCSYNC_SINK_DB_URL must own the calendar and cdcsync schemas and their tables",
):
    """The sink's tables cannot be created or altered (privileges, conflicting objects)."""


class KafkaAccessDenied(
    SinkCannotContinue,
    exit_code=22,
    fix="check the sink's Kafka credentials and its ACLs on the change topics, the dead-letter topic and its group",
):
    """Kafka rejected the sink's credentials or denies it a topic or the group, or the client failed fatally."""


class DeadLetterWriteFailed(
    SinkCannotContinue,
    exit_code=23,
    fix="check the dead-letter topic (CDCSYNC_DLQ_TOPIC): it must exist, accept writes, and take messages this large",
):
    """Kafka refused a dead letter for good: the sink stops rather than skip the message."""


class UnknownSchemaId(
    SinkCannotContinue, exit_code=24, fix="point SCHEMA_REGISTRY_URL at the registry the connectors write to"
):
    """An Avro message names a schema id the registry does not know: this sink reads another registry."""


class SchemaRegistryAccessDenied(
    SinkCannotContinue,
    exit_code=25,
    fix="check SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO (user:password) and that user's read access to the registry",
):
    """The schema registry refused the sink's credentials (HTTP 401) or denies it the schemas (403)."""


class SchemaRegistryNotConfigured(
    SinkCannotContinue,
    exit_code=2,
    fix='set SCHEMA_REGISTRY_URL to the registry the connectors write to (local stack: eval "$(cdcsync stack env)")',
):
    """An Avro message arrived and no schema registry is configured to read it."""


# Server answers that retrying fixes: the server restarting or shutting down, a session
# ended by an administrator or a timeout, a connection limit, a deadlock or serialization
# failure, and a server still read-only after a failover to the same address. Errors with
# no SQLSTATE at all come from the client: the connection was lost or never made.
_RETRYABLE_DATABASE_ERRORS: tuple[type[psycopg.Error], ...] = (
    pg_errors.AdminShutdown,
    pg_errors.CrashShutdown,
    pg_errors.CannotConnectNow,
    pg_errors.QueryCanceled,
    pg_errors.IdleSessionTimeout,
    pg_errors.IdleInTransactionSessionTimeout,
    pg_errors.ConnectionException,
    pg_errors.ConnectionFailure,
    pg_errors.ConnectionDoesNotExist,
    pg_errors.SqlclientUnableToEstablishSqlconnection,
    pg_errors.TooManyConnections,
    pg_errors.InsufficientResources,
    pg_errors.OutOfMemory,
    pg_errors.DiskFull,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.ReadOnlySqlTransaction,
)


def database_failure(
    exc: psycopg.Error, *, first_connect: bool = False
) -> CalendarDatabaseUnavailable | SinkCannotContinue | None:
    """The decision for a psycopg error, or None if it is not the database's fault (a bug: let it raise).

    libpq reports no SQLSTATE for a failed connection attempt, so a refused login is
    recognized by the connection's own state: the server demanded a password none was
    given, or closed the session after the password exchange (wrong password, unknown
    role or database). That ends the sink only at its first connection; after an outage
    the same answer can be a connection limit hit by every client reconnecting at once,
    so it is retried, and ``cdcsync status`` shows the server's message.
    """
    first_line = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    if isinstance(exc, (pg_errors.InvalidAuthorizationSpecification, pg_errors.InvalidPassword)):
        return CalendarLoginRefused(first_line)
    pgconn = getattr(exc, "pgconn", None)
    refused_login = pgconn is not None and exc.sqlstate is None and (pgconn.needs_password or pgconn.used_password)
    if refused_login and first_connect:
        return CalendarLoginRefused(first_line)
    lost = exc.sqlstate is None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    if lost or isinstance(exc, _RETRYABLE_DATABASE_ERRORS):
        return CalendarDatabaseUnavailable(f"{type(exc).__name__}: {first_line}")
    return None


# Errors of a broker that is down, restarting or electing leaders; librdkafka reconnects by itself.
# (_MAX_POLL_EXCEEDED after a long database outage is no broker outage: the consumer just rejoins.)
_TRANSIENT_KAFKA_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)
_KAFKA_ACCESS_DENIED_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
_KAFKA_CONFIG_CODES = frozenset({KafkaError._INVALID_ARG, KafkaError._UNKNOWN_PROTOCOL, KafkaError._SSL})


def kafka_failure(error: KafkaError) -> KafkaUnavailable | SinkCannotContinue | None:
    """The decision for a Kafka client error: retry, stop, or None (neither: the caller decides)."""
    message = f"{error.name()}: {error.str()}"
    if error.fatal() or error.code() in _KAFKA_ACCESS_DENIED_CODES:
        return KafkaAccessDenied(message)
    if error.code() in _KAFKA_CONFIG_CODES:
        return SinkConfigInvalid(f"Kafka client configuration: {message}")
    if error.retriable() or error.code() in _TRANSIENT_KAFKA_CODES:
        return KafkaUnavailable(message)
    return None
