"""The databases, roles and URLs of the local stack, derived from its settings.

Role layout (least privilege):
- ``cdcsync_admin``: superuser, used only by ``stack up`` to create databases and roles.
- ``<service>_service``: owns its service's tables; stands in for the service itself.
- ``cdcsync_debezium``: LOGIN REPLICATION plus SELECT on the captured tables.
- ``cdcsync_sink``: owns the ``calendar`` and ``cdcsync`` schemas of the calendar database only.
- ``calendar_reader``: SELECT on the read model.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from cdcsync.debezium.change_format import REGISTRY_URL_PLACEHOLDER_VARIABLE
from cdcsync.pipeline.settings import StackSettings
from cdcsync.sink.source_tables import SERVICES

SERVICE_DATABASES: tuple[str, ...] = SERVICES  # each service's database is named after the service
CALENDAR_DATABASE = "calendar"

ADMIN_ROLE = "cdcsync_admin"
DEBEZIUM_ROLE = "cdcsync_debezium"
SINK_ROLE = "cdcsync_sink"
READER_ROLE = "calendar_reader"


def service_role(service: str) -> str:
    return f"{service}_service"


@dataclass(frozen=True)
class StackEndpoints:
    settings: StackSettings

    def url(self, role: str, database: str) -> str:
        """A libpq URI that psql and psycopg accept as it is."""
        s = self.settings
        return f"postgresql://{role}:{quote(s.password, safe='')}@{s.host}:{s.postgres_port}/{database}"

    def admin_url(self, database: str = "postgres") -> str:
        return self.url(ADMIN_ROLE, database)

    def service_url(self, service: str) -> str:
        return self.url(service_role(service), service)

    @property
    def sink_url(self) -> str:
        return self.url(SINK_ROLE, CALENDAR_DATABASE)

    @property
    def calendar_reader_url(self) -> str:
        return self.url(READER_ROLE, CALENDAR_DATABASE)

    def exports(self) -> dict[str, str]:
        """Exactly the variables the spec names for ``cdcsync stack env``."""
        s = self.settings
        return {
            "COURSE_DB_URL": self.service_url("course"),
            "ATTENDANCE_DB_URL": self.service_url("attendance"),
            "ASSIGNMENT_DB_URL": self.service_url("assignment"),
            "CALENDAR_DB_URL": self.calendar_reader_url,
            "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap,
            "CONNECT_URL": s.connect_url,
        }

    def connect_worker_env(self) -> dict[str, str]:
        """Environment the Connect worker resolves ``${env:...}`` placeholders from.

        Connector definitions hold placeholders only; the password reaches
        Debezium through the worker's environment and is never stored.
        """
        s = self.settings
        return {
            "CDCSYNC_PG_HOST": s.host,
            "CDCSYNC_PG_PORT": str(s.postgres_port),
            "CDCSYNC_DEBEZIUM_USER": DEBEZIUM_ROLE,
            "CDCSYNC_DEBEZIUM_PASSWORD": s.password,
            # Avro connectors' converters reach the registry here; set whatever the format, so a
            # switch between formats re-configures connectors without restarting the worker.
            REGISTRY_URL_PLACEHOLDER_VARIABLE: s.registry_api_url,
        }
