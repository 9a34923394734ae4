"""A distributed Kafka Connect worker on 127.0.0.1 with the Debezium PostgreSQL plugin.

Runs ``org.apache.kafka.connect.cli.ConnectDistributed`` from the pinned jars.
Connector configs hold ``${env:VAR}`` placeholders only: the worker resolves
them through ``EnvVarConfigProvider`` from its own environment, which gets
``StackEndpoints.connect_worker_env()``, so secrets never reach a file or Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import requests

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.stack.jvm_part import JvmPart
from cdcsync.pipeline.stack.parts import PartStatus

logger = logging.getLogger(__name__)

PART = "connect"
WORKER_MAIN = "org.apache.kafka.connect.cli.ConnectDistributed"
POSTGRES_CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
GROUP_ID = "cdcsync-connect"
HEAP_MAX = "768m"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


def worker_properties(settings: StackSettings, plugin_path: Path) -> dict[str, str | int | bool]:
    """The distributed worker's config; its internal topics have replication 1 (one broker)."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": GROUP_ID,
        "config.storage.topic": f"{GROUP_ID}-configs",
        "offset.storage.topic": f"{GROUP_ID}-offsets",
        "status.storage.topic": f"{GROUP_ID}-status",
        "config.storage.replication.factor": 1,
        "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1,
        "offset.storage.partitions": 1,
        "status.storage.partitions": 1,
        "key.converter": JSON_CONVERTER,
        "value.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": False,
        "value.converter.schemas.enable": False,
        "listeners": f"http://{settings.host}:{settings.connect_port}",
        "rest.advertised.host.name": settings.host,
        "rest.advertised.port": settings.connect_port,
        "plugin.path": str(plugin_path),
        # Every plugin here ships ServiceLoader manifests; skipping the
        # reflective scan saves ~6 s of a 2-core start.
        "plugin.discovery": "service_load",
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        # Source offsets (Debezium's LSN) are flushed every 10s rather than 60s, so a
        # restarted worker replays less, and a slot trails its confirmed changes (the
        # heartbeat's included) by at most that. compose sets the same.
        "offset.flush.interval.ms": 10000,
        "topic.creation.enable": True,
        # Connectors may set their own producer's settings (producer.override.linger.ms, for
        # latency); the default policy differs across Connect versions, so it is said here.
        "connector.client.config.override.policy": "All",
    }


def lists_connector(plugins: object, connector_class: str) -> bool:
    """Whether a ``GET /connector-plugins`` body lists ``connector_class``."""
    if not isinstance(plugins, list):
        return False
    return any(isinstance(plugin, dict) and plugin.get("class") == connector_class for plugin in plugins)


class LocalConnect(JvmPart):
    """The stack's Kafka Connect worker. Construction touches nothing; ``start`` does the work.

    ``start`` returns once the REST API lists the Debezium PostgreSQL connector
    and the worker has joined its group (``GET /health``).
    """

    name = PART
    title = "Kafka Connect"
    main_class = WORKER_MAIN
    heap_max = HEAP_MAX
    config_name = "worker.properties"
    # Quiet the plugin scanner's per-jar warnings and the full config dump of every client.
    log_levels: ClassVar[Mapping[str, str]] = {
        "org.reflections": "ERROR",
        "org.apache.kafka.clients.admin.AdminClientConfig": "WARN",
        "org.apache.kafka.clients.consumer.ConsumerConfig": "WARN",
        "org.apache.kafka.clients.producer.ProducerConfig": "WARN",
    }

    @property
    def _address(self) -> str:
        return self._settings.connect_url

    def _ports(self) -> tuple[int, ...]:
        return (self._settings.connect_port,)

    def _properties(self) -> Mapping[str, str | int | bool]:
        return worker_properties(self._settings, self._artifacts.plugin_path)

    def _extra_env(self) -> Mapping[str, str]:
        """What the connector configs' ``${env:VAR}`` placeholders resolve to."""
        return StackEndpoints(self._settings).connect_worker_env()

    def _healthy(self) -> bool:
        try:
            self._get("/")
            plugins = self._get("/connector-plugins")
            healthy = requests.get(f"{self._address}/health", timeout=5).ok
        except (requests.RequestException, ValueError):
            return False
        if healthy and not lists_connector(plugins, POSTGRES_CONNECTOR_CLASS):
            raise StackError(
                PART,
                f"the worker does not list {POSTGRES_CONNECTOR_CLASS}; check {self._artifacts.debezium_plugin}",
                self.log_file,
            )
        return healthy

    def _running_status(self, pid: int) -> PartStatus:
        url = self._address
        try:
            root = self._get("/")
            has_debezium = lists_connector(self._get("/connector-plugins"), POSTGRES_CONNECTOR_CLASS)
        except (requests.RequestException, ValueError) as exc:
            return PartStatus(
                PART, False, f"pid {pid} runs but {url} does not answer ({type(exc).__name__})", self.log_file
            )
        if not has_debezium:
            return PartStatus(PART, False, f"{url} does not list {POSTGRES_CONNECTOR_CLASS}", self.log_file)
        version = root.get("version", "?") if isinstance(root, dict) else "?"
        detail = f"{url} (pid {pid}, Kafka Connect {version}, Debezium PostgreSQL plugin loaded)"
        return PartStatus(PART, True, detail, self.log_file)

    def _get(self, path: str) -> object:
        """The JSON body of a GET; raises ``requests.RequestException`` or ``ValueError`` (not JSON)."""
        response = requests.get(f"{self._address}{path}", timeout=5)
        response.raise_for_status()
        body: object = response.json()
        return body
