"""The sink's connection to the calendar database: opened lazily, opened again after it drops.

Every psycopg error leaves this module as a decision (``sink.errors``):
``CalendarDatabaseUnavailable`` (retry), a ``SinkCannotContinue``, or, for
anything else, the error itself (a bug, not an outage).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sink.calendar_writer import BatchResult, CalendarWriter
from sink.change_batch import ChangeBatch
from sink.errors import CalendarDatabaseUnavailable, CalendarSchemaNotMigratable, database_failure
from sink.offset_store import OffsetStore, TopicPartition
from sink.schema import migrate

logger = logging.getLogger(__name__)

APPLICATION_NAME = "cdcsync-sink"

# A dead peer (a crashed host, a half-open connection) is noticed within about 30 s
# instead of the kernel's hours: keepalives while idle, a user timeout while sending.
# Defaults: what the URL sets wins.
_CONNECT_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


class CalendarDatabase:
    """One autocommit connection and its ``CalendarWriter``. Nothing connects in the constructor."""

    def __init__(self, url: str, offsets: OffsetStore) -> None:
        self._url = url
        self._offsets = offsets
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._writer: CalendarWriter | None = None
        self._connected_once = False

    def connect(self) -> None:
        """Open a new connection and migrate the schema on it (idempotent, safe to repeat)."""
        self.close()
        with self._decided(first_connect=not self._connected_once):
            params = {**_CONNECT_DEFAULTS, **conninfo_to_dict(self._url), "application_name": APPLICATION_NAME}
            conn = psycopg.connect(make_conninfo("", **params), autocommit=True)
        self._connected_once = True
        self._conn = conn
        with self._decided():
            try:
                migrate(conn)
            except psycopg.Error as exc:
                if database_failure(exc) is None:
                    self.close()
                    raise CalendarSchemaNotMigratable(f"{type(exc).__name__}: {exc}".strip()) from exc
                raise
        self._writer = CalendarWriter(conn, self._offsets)

    def load_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The stored next offset of each given partition that has one."""
        conn, _ = self._session()
        with self._decided():
            return self._offsets.load(conn, partitions)

    def apply(self, batch: ChangeBatch) -> BatchResult:
        """All or nothing. After ``CalendarDatabaseUnavailable`` the outcome is unknown (a lost
        COMMIT may have succeeded): reconnect and re-read the stored offsets before going on."""
        _, writer = self._session()
        with self._decided():
            return writer.apply(batch)

    def check(self) -> None:
        """A round trip, so that an idle sink notices a lost connection (and says so) before its next batch."""
        conn, _ = self._session()
        with self._decided():
            conn.execute("SELECT 1")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._writer = None

    def _session(self) -> tuple[psycopg.Connection[tuple[object, ...]], CalendarWriter]:
        if self._conn is None or self._writer is None or self._conn.closed:
            raise CalendarDatabaseUnavailable("not connected to the calendar database")
        return self._conn, self._writer

    @contextmanager
    def _decided(self, first_connect: bool = False) -> Iterator[None]:
        """psycopg errors out as decisions; a connection that failed is closed, to be opened anew."""
        try:
            yield
        except psycopg.Error as exc:
            decision = database_failure(exc, first_connect=first_connect)
            if decision is None:
                raise
            self.close()
            raise decision from exc
