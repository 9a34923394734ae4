"""Errors that end a command, each carrying the exit code that the CLI maps it to.

The CLI turns these into a one-line message and an exit code in one place
(``pipeline.cli.main``); library code raises them and never calls ``sys.exit``.

Exit codes (the one table; the Kafka Connect errors are in ``debezium.connect_errors``,
the sink's in ``sink.errors``, which ``SinkStopped`` carries out of ``cdcsync sink run``):

====  ==========================================================================  ================================
code  meaning                                                                     raised as
====  ==========================================================================  ================================
0     ok
1     verify found a difference, the source preflight found errors, or an         ``VerifyMismatch``,
      unexpected error (one line; the traceback with ``-v``)                      ``PreflightFailed``
2     bad configuration: a setting, a connector file, a context, a URL;           ``ConfigError``,
      sink: an Avro message and no SCHEMA_REGISTRY_URL                            ``SchemaRegistryNotConfigured``
3     the local stack failed                                                      ``StackError``
4     Kafka Connect refused a request (any other HTTP error, with its message)    ``ConnectError``
5     Kafka Connect not reachable: connection refused, unknown host, TLS failed   ``ConnectUnreachable``
6     Kafka Connect rejected the credentials (HTTP 401) or the user (403)         ``ConnectUnauthorized``
7     no such connector or plugin (HTTP 404)                                      ``ConnectorNotFound``
8     conflict: still rebalancing after the retries (HTTP 409), or the            ``RebalanceInProgress``,
      connector is not in the state the command needs (offsets reset: STOPPED)    ``ConnectorStateConflict``
9     the plugin rejects a connector config (apply --dry-run, or HTTP 400)        ``ConnectorConfigInvalid``
10    timed out: no answer within --request-timeout, or not in the wanted         ``ConnectTimeout``
      state within --timeout (--wait)
11    a connector or task FAILED while --wait waited for RUNNING                  ``ConnectorFailed``
12    an initial snapshot was interrupted and Debezium will not redo it: the      ``InitialSnapshotInterrupted``
      connector, the tables, the cause and the fix (cdcsync snapshot --incomplete)
20    sink: the calendar database refused its login (password, role, database)   ``CalendarLoginRefused``
21    sink: its schema cannot be migrated (privileges, conflicting objects)       ``CalendarSchemaNotMigratable``
22    sink: Kafka rejected its credentials or denies it a topic or the group      ``KafkaAccessDenied``
23    sink: Kafka refused a dead letter for good (offsets not advanced)           ``DeadLetterWriteFailed``
24    sink: an Avro message names a schema id the registry does not know          ``UnknownSchemaId``
      (offsets not advanced)
25    sink: the schema registry refused its credentials (401) or access (403)     ``SchemaRegistryAccessDenied``
130   interrupted (Ctrl-C) or a confirmation declined
====  ==========================================================================  ================================
"""

from __future__ import annotations

from pathlib import Path

from cdcsync.errors import CdcsyncError, ConfigError

__all__ = ["CdcsyncError", "ConfigError", "SinkStopped", "StackError", "VerifyMismatch"]


class StackError(CdcsyncError):
    """A part of the local stack failed to start or stop."""

    exit_code = 3

    def __init__(self, part: str, reason: str, log_file: Path | None = None) -> None:
        where = f" (log: {log_file})" if log_file is not None else ""
        super().__init__(f"{part}: {reason}{where}")
        self.part = part
        self.reason = reason
        self.log_file = log_file


class VerifyMismatch(CdcsyncError):
    """The calendar differs from what the rules derive from the sources."""

    exit_code = 1


class SinkStopped(CdcsyncError):
    """The sink daemon met an error retrying cannot fix; the exit code is that error's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
