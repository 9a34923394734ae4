"""A single-node Kafka (combined KRaft broker and controller) on 127.0.0.1.

Runs ``kafka.Kafka`` from the pinned jars. Storage under ``<home>/kafka/data``
is formatted once, by ``kafka.tools.StorageTool format``, with a fixed cluster
id; later starts find ``meta.properties`` and reuse the data.

A client that must reach the broker through a proxy (the fault suite's network
faults) needs a listener that advertises the proxy's address: otherwise the
metadata response sends it to the broker directly after bootstrap. Such a
listener is added only when a ``ProxiedListener`` is given.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.jvm import JavaRuntime, JvmArtifacts
from cdcsync.pipeline.stack.jvm_part import JvmPart
from cdcsync.pipeline.stack.parts import PartStatus
from cdcsync.pipeline.stack.processes import port_accepts

logger = logging.getLogger(__name__)

PART = "kafka"
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
# base64url of b"cdcsync-local-st": a fixed, valid 16-byte cluster id, so a
# reformatted data directory is still the same cluster to every client.
CLUSTER_ID = "Y2Rjc3luYy1sb2NhbC1zdA"
NODE_ID = 1
HEAP_MAX = "512m"


@dataclass(frozen=True)
class ProxiedListener:
    """A second plaintext listener on ``port`` that advertises ``proxy_port``, where a proxy to it listens."""

    port: int
    proxy_port: int

    NAME = "PROXIED"


def broker_properties(
    settings: StackSettings, data_dir: Path, proxied: ProxiedListener | None = None
) -> dict[str, str | int | bool]:
    """server.properties of the combined broker+controller; every internal topic has replication 1."""
    host = settings.host
    listeners = [f"PLAINTEXT://{host}:{settings.kafka_port}", f"CONTROLLER://{host}:{settings.kafka_controller_port}"]
    advertised = [f"PLAINTEXT://{host}:{settings.kafka_port}"]
    protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
    if proxied is not None:
        listeners.append(f"{proxied.NAME}://{host}:{proxied.port}")
        advertised.append(f"{proxied.NAME}://{host}:{proxied.proxy_port}")
        protocols.append(f"{proxied.NAME}:PLAINTEXT")
    return {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{host}:{settings.kafka_controller_port}",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(data_dir),
        # Topics are created on purpose (by Connect's topic creation, or by the
        # sink for its dead-letter topic), never by a typo in a consumer.
        "auto.create.topics.enable": False,
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        # Two cores: keep the thread pools small.
        "num.network.threads": 2,
        "num.io.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        "background.threads": 2,
    }


class LocalKafka(JvmPart):
    """The stack's Kafka. Construction touches nothing; ``start`` does the work."""

    name = PART
    title = "Kafka"
    main_class = BROKER_MAIN
    heap_max = HEAP_MAX
    config_name = "server.properties"
    # Per-partition chatter (state changes, loading the 50 offsets partitions) buries what matters.
    log_levels: ClassVar[Mapping[str, str]] = {
        "kafka.request.logger": "WARN",
        "state.change.logger": "WARN",
        "org.apache.kafka.coordinator": "WARN",
    }

    def __init__(
        self, settings: StackSettings, artifacts: JvmArtifacts | None = None, proxied: ProxiedListener | None = None
    ) -> None:
        """``proxied``: a listener for clients that go through a proxy; none by default."""
        super().__init__(settings, artifacts)
        self._proxied = proxied

    @property
    def data_dir(self) -> Path:
        return self._dir / "data"

    @property
    def _address(self) -> str:
        return self._settings.kafka_bootstrap

    def _ports(self) -> tuple[int, ...]:
        extra = () if self._proxied is None else (self._proxied.port,)
        return (self._settings.kafka_port, self._settings.kafka_controller_port, *extra)

    def _properties(self) -> Mapping[str, str | int | bool]:
        return broker_properties(self._settings, self.data_dir, self._proxied)

    def _healthy(self) -> bool:
        """The broker answers a metadata request."""
        return self._topic_count(timeout=2.0) is not None

    def _running_status(self, pid: int) -> PartStatus:
        topics = self._topic_count(timeout=5.0)
        if topics is None:
            return PartStatus(PART, False, f"pid {pid} runs but {self._address} does not answer", self.log_file)
        detail = f"{self._address} (pid {pid}, cluster {CLUSTER_ID}, {topics} topics)"
        return PartStatus(PART, True, detail, self.log_file)

    def _topic_count(self, timeout: float) -> int | None:
        """Topics in a real metadata response, or ``None`` if the broker does not answer."""
        s = self._settings
        if not port_accepts(s.host, s.kafka_port):
            return None  # spares librdkafka's connection-refused log lines while it starts
        # log_level 0: a yes/no probe needs none of librdkafka's retry chatter on stderr.
        admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException:
            return None
        return len(metadata.topics)

    def _prepare(self, java: JavaRuntime) -> None:
        """Format the log directory on first start only (``meta.properties`` marks a formatted one)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "meta.properties").exists():
            return
        argv = java.argv(
            self._artifacts.classpath,
            STORAGE_TOOL_MAIN,
            ["format", "--cluster-id", CLUSTER_ID, "--config", str(self.config_file)],
            heap_max="256m",
            log4j_config=self.log4j_config,
        )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write("\n=== cdcsync: formatting Kafka storage\n")
            log.flush()
            try:
                done = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                )
            except subprocess.TimeoutExpired:
                raise StackError(PART, "formatting the storage took over 120s", self.log_file) from None
        if done.returncode != 0:
            raise StackError(PART, f"formatting the storage failed with exit code {done.returncode}", self.log_file)
